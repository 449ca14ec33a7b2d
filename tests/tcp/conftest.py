"""Fixtures: an ESTABLISHED connection reached passively, as packetdrill's preamble does."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from refstack.profile import Profile
from refstack.tcp.endpoint import TcpEndpoint
from refstack.wire import SACK_PERMITTED, Mss, TcpOption
from tests.tcp.peer import Peer


@dataclass
class Conn:
    peer: Peer
    ep: TcpEndpoint
    iss: int  # the stack's ISS: its first data byte is iss + 1

    def send(self, data: bytes) -> int:
        sent = self.ep.send(data, self.peer.now)
        self.peer.at(self.peer.now)  # collect what the call put on the wire
        return sent


def establish(
    profile: Profile | None = None, options: list[TcpOption] | None = None, *, win: int = 65535
) -> Conn:
    """SYN <mss 1000> -> SYN,ACK -> ACK: peer seq 1, stack seq iss + 1, no window scaling."""
    peer = Peer(profile)
    listener = peer.listener()
    peer.inject("S", 0, options=options if options is not None else [Mss(1000)])
    iss = peer.expect("S.", ack=1).seq
    peer.inject(".", 1, iss + 1, win=win)
    return Conn(peer, listener.accept(), iss)


@pytest.fixture
def conn() -> Conn:
    return establish()


@pytest.fixture
def sack_conn() -> Conn:
    return establish(options=[Mss(1000), SACK_PERMITTED])
