"""Header prediction changes nothing on the wire: the general path is the oracle.

``TcpEndpoint.predicted_arrives`` takes the segments a connection expects next
without the general steps of RFC 9293 §3.10.7.4.  Its contract is that the outcome
is exactly what those steps give.  Each scenario here runs twice from the same
seeds, once with prediction and once with ``TcpLayer.header_prediction`` off, and
the two runs must put the same frames on the link at the same times and deliver the
same bytes.  The scenarios cover what the fast path must hand back: loss, reordering,
duplicates and corruption (out-of-order queues, D-SACK, recovery, duplicate ACKs),
window updates from a slow reader, Nagle and small writes, timestamps and SACK
on and off, and ECN.
"""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from refstack.clock import VirtualClock
from refstack.impairment import ImpairedLink, Impairment
from refstack.link import Capture, MemoryLink
from refstack.profile import Profile
from refstack.simulation import Simulation
from refstack.stack import Stack
from refstack.tcp.endpoint import TcpEndpoint
from refstack.wire.addresses import ipv4_addr


@dataclasses.dataclass(frozen=True)
class Scenario:
    seed: int
    size: int = 150_000
    impaired: bool = False
    chunk: int = 65536  # bytes per send()
    read: int = 1 << 20  # bytes per recv()
    read_every: int = 1  # recv only on every n-th pump (a slow reader: window updates)
    nodelay: bool = False
    profile: Profile = dataclasses.field(default_factory=Profile)
    rcvbuf: int | None = None


def run(sc: Scenario, *, predict: bool) -> tuple[list[tuple[float, str, bytes]], bytes, bytes, int]:
    """The frames the link carried, the bytes each side received, and how many
    segments took the predicted path."""
    a = Stack(sc.profile, seed=sc.seed, name="a")
    a.add_interface("eth", "198.51.100.1", 24)
    b = Stack(sc.profile, seed=sc.seed + 1000, name="b")
    b.add_interface("eth", "198.51.100.2", 24)
    for stack in (a, b):
        stack.tcp.header_prediction = predict
    clock = VirtualClock()
    sim = Simulation(clock)
    sim.add(a, "a")
    sim.add(b, "b")
    capture = Capture()
    wire = MemoryLink(delay=0.001, rate_bps=1e9, on_frame=capture)
    if sc.impaired:
        impairment = Impairment(sc.seed, loss=0.05, reorder=0.05, duplicate=0.01, corrupt=0.001, delay=0.002)
        sim.connect("a", "b", ImpairedLink(wire, impairment))
    else:
        sim.connect("a", "b", wire)
    listener = b.tcp.endpoint()
    listener.bind(bytes(4), 5001)
    if sc.rcvbuf is not None:
        listener.rcvbuf = sc.rcvbuf
    listener.listen(4)
    client = a.tcp.endpoint()
    client.nodelay = sc.nodelay
    if sc.rcvbuf is not None:
        client.rcvbuf = sc.rcvbuf
    client.connect(ipv4_addr("198.51.100.2"), 5001, clock.now())
    assert sim.run_until(lambda: bool(listener.accept_queue), 120), "handshake did not complete"
    server = listener.accept()
    server.nodelay = sc.nodelay
    data = {s: hashlib.shake_256(f"{s}{sc.seed}".encode()).digest(sc.size) for s in "ab"}
    ends: dict[str, TcpEndpoint] = {"a": client, "b": server}
    sent = {"a": 0, "b": 0}
    got = {"a": bytearray(), "b": bytearray()}
    pumps = [0]

    def pump() -> bool:
        pumps[0] += 1
        for side, ep in ends.items():
            if sent[side] < sc.size and ep.send_space() > 0:
                sent[side] += ep.send(data[side][sent[side] : sent[side] + sc.chunk], clock.now())
            if pumps[0] % sc.read_every == 0:
                while ep.readable:
                    chunk = ep.recv(sc.read)
                    if not chunk:
                        break
                    got["b" if side == "a" else "a"] += chunk
        return len(got["a"]) == sc.size and len(got["b"]) == sc.size

    assert sim.run_until(pump, 3600), f"{sc}: stalled at {len(got['a'])}/{len(got['b'])}"
    frames = [(f.time, f.side, f.frame) for f in capture.frames]
    predicted = a.counters["tcp_rx_predicted"] + b.counters["tcp_rx_predicted"]
    return frames, bytes(got["a"]), bytes(got["b"]), predicted


SCENARIOS = [
    pytest.param(Scenario(seed=1), id="clean"),
    pytest.param(Scenario(seed=2, read=3000, read_every=3, rcvbuf=60_000), id="slow-reader"),
    pytest.param(Scenario(seed=3, size=40_000, chunk=100), id="small-writes-nagle"),
    pytest.param(Scenario(seed=4, size=40_000, chunk=100, nodelay=True), id="small-writes-nodelay"),
    pytest.param(Scenario(seed=5, profile=Profile(tcp_timestamps=False)), id="no-timestamps"),
    pytest.param(Scenario(seed=6, impaired=True, profile=Profile(tcp_sack=False)), id="impaired-no-sack"),
    pytest.param(Scenario(seed=7, profile=Profile(tcp_ecn=1)), id="ecn"),
    *(pytest.param(Scenario(seed=s, impaired=True), id=f"impaired-{s}") for s in range(10, 14)),
]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_prediction_matches_the_general_path(scenario: Scenario) -> None:
    fast_frames, fast_a, fast_b, predicted = run(scenario, predict=True)
    slow_frames, slow_a, slow_b, unpredicted = run(scenario, predict=False)
    assert unpredicted == 0
    assert predicted > 0, "the scenario never took the predicted path"
    assert (fast_a, fast_b) == (slow_a, slow_b)
    assert len(fast_frames) == len(slow_frames)
    for i, (fast, slow) in enumerate(zip(fast_frames, slow_frames, strict=True)):
        assert fast == slow, f"frame {i} differs: predicted {fast!r} vs general {slow!r}"


def test_bulk_takes_the_predicted_path() -> None:
    """On a clean link nearly every segment is predicted (what makes it worth having)."""
    frames, _, _, predicted = run(Scenario(seed=9, size=300_000), predict=True)
    assert predicted >= 0.9 * (len(frames) - 10)
