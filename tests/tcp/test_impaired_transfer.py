"""Two refstacks over an impaired MemoryLink move data byte-exact, both directions.

Impairment as the core issue asks: 5 % loss, reordering, duplication and 0.1 %
corruption (the checksum must catch it), per seed.  The default run moves 200 kB
per direction for 3 seeds; ``--long`` moves 10 MB per direction for 50 seeds.
"""

from __future__ import annotations

import hashlib

import pytest

from refstack.clock import VirtualClock
from refstack.impairment import ImpairedLink, Impairment
from refstack.link import MemoryLink
from refstack.simulation import Simulation
from refstack.stack import Stack
from refstack.tcp.endpoint import TcpEndpoint
from refstack.wire.addresses import ipv4_addr


def transfer(seed: int, size: int) -> None:
    a = Stack(seed=seed, name="a")
    a.add_interface("eth", "198.51.100.1", 24)
    b = Stack(seed=seed + 1000, name="b")
    b.add_interface("eth", "198.51.100.2", 24)
    clock = VirtualClock()
    sim = Simulation(clock)
    sim.add(a, "a")
    sim.add(b, "b")
    impairment = Impairment(seed, loss=0.05, reorder=0.05, duplicate=0.01, corrupt=0.001, delay=0.002)
    sim.connect("a", "b", ImpairedLink(MemoryLink(delay=0.001, rate_bps=1e9), impairment))
    listener = b.tcp.endpoint()
    listener.bind(bytes(4), 5001)
    listener.listen(4)
    client = a.tcp.endpoint()
    client.connect(ipv4_addr("198.51.100.2"), 5001, clock.now())
    assert sim.run_until(lambda: bool(listener.accept_queue), 120), "handshake did not complete"
    server = listener.accept()
    data = {
        "a": hashlib.shake_256(f"a{seed}".encode()).digest(size),
        "b": hashlib.shake_256(f"b{seed}".encode()).digest(size),
    }
    ends: dict[str, TcpEndpoint] = {"a": client, "b": server}
    sent = {"a": 0, "b": 0}
    got = {"a": bytearray(), "b": bytearray()}

    def pump() -> bool:
        for side, ep in ends.items():
            while sent[side] < size:
                try:
                    sent[side] += ep.send(data[side][sent[side] : sent[side] + 65536], clock.now())
                except BlockingIOError:
                    break
            other = "b" if side == "a" else "a"
            while True:
                try:
                    chunk = ep.recv(1 << 20)
                except BlockingIOError:
                    break
                if not chunk:
                    break
                got[other] += chunk
        return len(got["a"]) == size and len(got["b"]) == size

    assert sim.run_until(pump, 3600), f"seed {seed}: stalled at {len(got['a'])}/{len(got['b'])} of {size}"
    assert bytes(got["a"]) == data["a"] and bytes(got["b"]) == data["b"], f"seed {seed}: corrupted"


@pytest.mark.parametrize("seed", range(3))
def test_impaired_transfer_both_directions(seed: int) -> None:
    transfer(seed, 200_000)


@pytest.mark.long
@pytest.mark.parametrize("seed", range(50))
def test_impaired_transfer_10mb_each_way(seed: int) -> None:
    transfer(seed, 10_000_000)
