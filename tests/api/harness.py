"""Two stacks on one wire for the socket API tests: A (10.0.0.1) and B (10.0.0.2)
joined by a 125 ms MemoryLink, one Runtime each, sharing a VirtualDriver, with every
frame captured.  Times are exact: a datagram sent at t=0 arrives at t=0.125."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from refstack import socket as rs
from refstack.clock import VirtualClock
from refstack.link import Capture, MemoryLink
from refstack.runtime import Runtime, VirtualDriver
from refstack.simulation import Simulation
from refstack.stack import Stack
from refstack.wire.ipv4 import Ipv4Packet
from refstack.wire.tcp import TcpSegment

A_IP, B_IP = "10.0.0.1", "10.0.0.2"
DELAY = 0.125
PORT = 8080


@dataclass
class Net:
    sim: Simulation
    driver: VirtualDriver
    a: Runtime
    b: Runtime
    wire: Capture

    def now(self) -> float:
        return self.driver.now()

    def udp(self, rt: Runtime, bind: tuple[str, int] | None = None) -> rs.socket:
        s = rs.socket(rs.AF_INET, rs.SOCK_DGRAM, runtime=rt)
        if bind is not None:
            s.bind(bind)
        return s

    def tcp(self, rt: Runtime) -> rs.socket:
        return rs.socket(rs.AF_INET, rs.SOCK_STREAM, runtime=rt)

    def server(self, backlog: int | None = None, port: int = PORT) -> rs.socket:
        s = self.tcp(self.b)
        s.bind(("", port))
        s.listen(backlog)
        return s

    def connected(self) -> tuple[rs.socket, rs.socket, rs.socket]:
        """(listener, client, accepted), established, at t=0.375."""
        listener = self.server()
        client = self.tcp(self.a)
        client.connect((B_IP, PORT))
        conn, _ = listener.accept()
        return listener, client, conn

    def ip_packets(self) -> list[Ipv4Packet]:
        return [Ipv4Packet(f.frame) for f in self.wire.frames]

    def segments(self) -> list[TcpSegment]:
        return [TcpSegment(p.payload) for p in self.ip_packets()]


def make_net() -> Net:
    sim = Simulation(VirtualClock())
    stack_a, stack_b = Stack(name="a", seed=1), Stack(name="b", seed=2)
    stack_a.add_interface("eth0", A_IP, 24)
    stack_b.add_interface("eth0", B_IP, 24)
    sim.add(stack_a, "a")
    sim.add(stack_b, "b")
    wire = Capture()
    sim.connect("a", "b", MemoryLink(delay=DELAY, on_frame=wire))
    driver = VirtualDriver(sim)
    return Net(sim, driver, Runtime(stack_a, driver), Runtime(stack_b, driver), wire)


def errno_of(excinfo: pytest.ExceptionInfo[BaseException]) -> int | None:
    exc = excinfo.value
    assert isinstance(exc, OSError)
    return exc.errno
