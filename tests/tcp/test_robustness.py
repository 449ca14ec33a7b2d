"""Bad input never crashes the stack: random and mutated segments into live connections.

A seeded stream of segments near (and far from) the connection's sequence space, with
random flags, options and payloads, is injected into a listener and an established
connection that is also sending.  After every segment the TCB invariants must hold;
malformed segments are dropped and counted.  The ``long`` variant runs 200k segments.
"""

from __future__ import annotations

import contextlib
import random

import pytest

from refstack.tcp.endpoint import TcpEndpoint
from refstack.tcp.state import TcpState
from refstack.wire import NOP, SACK_PERMITTED, Mss, Sack, Timestamps, UnknownOption, WindowScale
from tests.tcp.conftest import establish

FLAG_SETS = ["S", ".", "P.", "F.", "R", "R.", "S.", "SF", "FP.", "U.", "", "SR", "F"]


def check_invariants(ep: TcpEndpoint) -> None:
    if ep.state in (TcpState.CLOSED, TcpState.LISTEN):
        return
    assert ep.snd_una <= ep.snd_nxt <= ep.snd_max, (ep.snd_una, ep.snd_nxt, ep.snd_max)
    assert ep._buf_seq >= ep.snd_una - 1
    assert len(ep.rcv_buf) <= ep.rcvbuf + 65536
    assert ep.ooo.bytes_queued <= ep.layer.stack.profile.tcp_rmem[2]
    assert ep.rcv_adv >= ep.rcv_nxt or ep.state == TcpState.SYN_RECEIVED
    assert 0 <= ep.snd_wnd <= 0xFFFF << 14
    assert ep.cc.cwnd >= 1


def random_options(rng: random.Random) -> list:  # type: ignore[type-arg]
    pool = [
        NOP,
        SACK_PERMITTED,
        Mss(rng.randrange(0, 65536)),
        WindowScale(rng.randrange(0, 20)),
        Timestamps(rng.getrandbits(32), rng.getrandbits(32)),
        Sack(((rng.getrandbits(32), rng.getrandbits(32)),)),
        UnknownOption(rng.randrange(9, 254), bytes(rng.randrange(0, 6))),
    ]
    return rng.sample(pool, rng.randrange(0, 3))


def fuzz(seed: int, count: int) -> None:
    rng = random.Random(seed)
    c = establish(options=[Mss(1000), SACK_PERMITTED, Timestamps(1, 0), NOP, WindowScale(7)])
    p, ep = c.peer, c.ep
    peer_seq = 1
    for i in range(count):
        if i % 50 == 0 and ep.state == TcpState.ESTABLISHED:
            with contextlib.suppress(OSError):  # BlockingIOError included
                c.send(bytes(rng.randrange(0, 3000)))
        base_seq = peer_seq if rng.random() < 0.7 else rng.getrandbits(32)
        base_ack = ep.snd_una if rng.random() < 0.7 else rng.getrandbits(32)
        seq = base_seq + rng.randrange(-3000, 3000)
        ack = base_ack + rng.randrange(-3000, 3000)
        flags = rng.choice(FLAG_SETS)
        payload = bytes(rng.randrange(0, 1500)) if rng.random() < 0.4 else b""
        try:
            p.inject(
                flags,
                seq,
                ack,
                win=rng.randrange(0, 65536),
                payload=payload,
                options=random_options(rng),
                sport=p.port if rng.random() < 0.9 else rng.randrange(1, 65536),
            )
        except Exception as e:  # the builder may refuse an impossible option list
            if type(e).__name__ != "WireError":
                raise
        if rng.random() < 0.05:
            p.at(p.now + rng.choice((0.001, 0.05, 0.3, 2.0)))
        p.out.clear()
        check_invariants(ep)
        for conn in list(ep.layer.connections.values()):
            check_invariants(conn)
        if ep.state == TcpState.ESTABLISHED and ep.rcv_buf:
            ep.recv(1 << 20)
        if rng.random() < 0.01 and ep.state == TcpState.ESTABLISHED:
            peer_seq = ep.rcv_nxt - ep.irs
        if rng.random() < 0.003 and ep.state in (TcpState.ESTABLISHED, TcpState.CLOSE_WAIT):
            ep.close(p.now)  # drive the closing states too
        if ep.state == TcpState.CLOSED or i % 300 == 299:  # start over with a fresh connection
            c = establish(options=[Mss(1000), SACK_PERMITTED])
            p, ep = c.peer, c.ep
            peer_seq = 1


@pytest.mark.parametrize("seed", range(4))
def test_random_segments_never_crash(seed: int) -> None:
    fuzz(seed, 3000)


@pytest.mark.long
@pytest.mark.parametrize("seed", range(4))
def test_random_segments_never_crash_long(seed: int) -> None:
    fuzz(seed, 50_000)
