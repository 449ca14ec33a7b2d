"""A scripted remote peer for inject/expect tests of the TCP state machine.

The stack under test is 192.168.0.1 on an IP-only link (packetdrill's defaults);
the peer is 192.0.2.1.  Time is explicit: ``at(t)`` runs the stack's timers up to
``t`` and collects what it sends; nothing sleeps.  Segments are compared on the
fields a test names, and ``expect_nothing`` checks silence explicitly.
"""

from __future__ import annotations

from collections import deque

from refstack.profile import Profile
from refstack.stack import Stack
from refstack.tcp.endpoint import TcpEndpoint
from refstack.wire import (
    ACK,
    Ipv4Packet,
    TcpOption,
    TcpSegment,
    build_ipv4,
    build_tcp,
    flags_str,
    ipv4_addr,
)

LOCAL = ipv4_addr("192.168.0.1")
REMOTE = ipv4_addr("192.0.2.1")
EPSILON = 1e-9
FLAGS = {"S": 0x02, "F": 0x01, "R": 0x04, "P": 0x08, ".": ACK, "U": 0x20}


def flags_of(text: str) -> int:
    value = 0
    for ch in text:
        value |= FLAGS[ch]
    return value


class Peer:
    def __init__(self, profile: Profile | None = None, *, seed: int = 7) -> None:
        self.stack = Stack(profile, seed=seed)
        self.stack.add_interface("tun0", LOCAL, 24)
        self.stack.add_route("192.0.2.0", 24, "tun0")
        self.now = 0.0
        self.out: deque[tuple[float, TcpSegment]] = deque()
        self.port = 40000

    # --- time ----------------------------------------------------------------------
    def at(self, t: float) -> None:
        """Advance to ``t``, running every timer due on the way.  Timers within a
        nanosecond of ``t`` count as due (sums like 0.2 + 0.4 are not exact floats)."""
        assert t >= self.now - EPSILON, (t, self.now)
        while True:
            deadline = self.stack.next_deadline()
            if deadline is None or deadline > t + EPSILON:
                break
            self.now = max(self.now, deadline)
            self._collect(self.stack.poll(self.now))
        self.now = max(self.now, t)
        self._collect(self.stack.poll(self.now))

    def _collect(self, frames: list[bytes]) -> None:
        for frame in frames:
            ip = Ipv4Packet(frame)
            assert ip.protocol == 6, ip
            seg = TcpSegment(ip.payload)
            assert seg.checksum_ok(ip.src, ip.dst)
            self.out.append((self.now, seg))

    # --- inject ----------------------------------------------------------------------
    def inject(
        self,
        flags: str,
        seq: int,
        ack: int = 0,
        *,
        win: int = 65535,
        payload: bytes = b"",
        options: list[TcpOption] | tuple[TcpOption, ...] = (),
        sport: int | None = None,
        dport: int = 8080,
        up: int = 0,
    ) -> None:
        seg = build_tcp(
            REMOTE,
            LOCAL,
            sport or self.port,
            dport,
            seq=seq & 0xFFFFFFFF,
            ack=ack & 0xFFFFFFFF,
            flags=flags_of(flags),
            window=win,
            urgent_pointer=up,
            options=options,
            payload=payload,
        )
        self.stack.receive(build_ipv4(REMOTE, LOCAL, 6, seg), self.now)
        self._collect(self.stack.poll(self.now))

    # --- expect ----------------------------------------------------------------------
    def expect(
        self,
        flags: str,
        *,
        seq: int | None = None,
        ack: int | None = None,
        win: int | None = None,
        payload: bytes | None = None,
        length: int | None = None,
        at: float | None = None,
        options: tuple[TcpOption, ...] | None = None,
        up: int | None = None,
    ) -> TcpSegment:
        """The next segment the stack sent, checked on the fields given."""
        assert self.out, f"expected {flags} at {at if at is not None else self.now}, got nothing"
        when, seg = self.out.popleft()
        assert flags_str(seg.flags) == flags, f"expected {flags}, got {seg!r} at {when}"
        if seq is not None:
            assert seg.seq == seq & 0xFFFFFFFF, f"seq {seg.seq} != {seq & 0xFFFFFFFF}: {seg!r}"
        if ack is not None:
            assert seg.ack == ack & 0xFFFFFFFF, f"ack {seg.ack} != {ack & 0xFFFFFFFF}: {seg!r}"
        if win is not None:
            assert seg.window == win, f"win {seg.window} != {win}: {seg!r}"
        if payload is not None:
            assert seg.payload == payload, seg
        if length is not None:
            assert seg.payload_length == length, f"len {seg.payload_length} != {length}: {seg!r}"
        if at is not None:
            assert abs(when - at) < 1e-6, f"sent at {when}, expected at {at}: {seg!r}"
        if options is not None:
            assert seg.options == options, f"options {seg.options} != {options}"
        if up is not None:
            assert seg.urgent_pointer == up, f"urgent pointer {seg.urgent_pointer} != {up}: {seg!r}"
        return seg

    def expect_nothing(self, until: float | None = None) -> None:
        if until is not None:
            self.at(until)
        assert not self.out, f"expected silence, got {[s for _, s in self.out]}"

    # --- set-ups -----------------------------------------------------------------------
    def listener(self, port: int = 8080, backlog: int = 16) -> TcpEndpoint:
        ep = self.stack.tcp.endpoint()
        ep.bind(bytes(4), port)
        ep.listen(backlog)
        return ep
