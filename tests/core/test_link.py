"""MemoryLink: exact delay and serialization timing, FIFO, MTU drops, counters, full duplex."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from refstack.link import Capture, CapturedFrame, Endpoint, MemoryLink

ZERO_COUNTERS = dict.fromkeys(
    ["frames_sent", "bytes_sent", "frames_delivered", "bytes_delivered", "dropped_mtu"], 0
)


def test_delay_only_arrives_exactly_delay_later() -> None:
    link = MemoryLink(delay=0.125)
    link.send("a", b"hello", 1.0)
    assert link.next_arrival() == 1.125
    assert link.deliverable("b", 1.0) == []
    assert link.deliverable("b", math.nextafter(1.125, 0)) == []
    assert link.deliverable("b", 1.125) == [b"hello"]  # the bound is inclusive
    assert link.next_arrival() is None
    assert link.deliverable("b", 99.0) == []


def test_1500_byte_frames_at_12_mbit_arrive_1_ms_apart() -> None:
    tap = Capture()
    link = MemoryLink(delay=0.01, rate_bps=12e6, on_frame=tap)
    for i in range(4):
        link.send("a", bytes([i]) * 1500, 0.0)  # a burst: back to back on the wire
    assert link.deliverable("b", 1.0) == [bytes([i]) * 1500 for i in range(4)]
    times = [c.time for c in tap.frames]
    assert times == pytest.approx([0.011, 0.012, 0.013, 0.014], abs=1e-12)
    assert [b - a for a, b in itertools.pairwise(times)] == pytest.approx([0.001] * 3, abs=1e-12)


def test_an_idle_wire_starts_serializing_at_once() -> None:
    link = MemoryLink(rate_bps=8000.0)  # one byte per millisecond
    link.send("a", bytes(4), 0.0)  # on the wire 0 .. 0.004
    link.send("a", bytes(2), 1.0)  # the wire has been idle since 0.004
    tap = Capture()
    link.on_frame = tap
    link.deliverable("b", 2.0)
    assert [c.time for c in tap.frames] == pytest.approx([0.004, 1.002], abs=1e-12)


def test_a_small_frame_queues_behind_a_big_one() -> None:
    link = MemoryLink(delay=0.5, rate_bps=8000.0)
    link.send("a", b"B" * 1000, 0.0)  # serialized 0 .. 1.0, arrives 1.5
    link.send("a", b"s", 0.0)  # waits for the wire: 1.0 .. 1.001, arrives 1.501
    assert link.deliverable("b", 1.5) == [b"B" * 1000]
    assert link.next_arrival() == pytest.approx(1.501, abs=1e-12)
    assert link.deliverable("b", 1.501) == [b"s"]


def test_frames_sent_at_one_instant_arrive_in_order() -> None:
    link = MemoryLink(delay=0.25)
    frames = [bytes([i]) for i in range(50)]
    for f in frames:
        link.send("b", f, 3.0)
    assert link.deliverable("a", 3.25) == frames


def test_per_side_isolation_and_full_duplex() -> None:
    link = MemoryLink(delay=0.5, rate_bps=8000.0)
    link.send("a", b"x" * 1000, 0.0)  # a->b: wire busy until 1.0, arrives 1.5
    link.send("b", b"y" * 1000, 0.0)  # b->a has its own wire: also arrives 1.5
    assert link.deliverable("a", 1.0) == []
    assert link.deliverable("a", 1.5) == [b"y" * 1000]
    assert link.deliverable("a", 9.0) == []
    assert link.deliverable("b", 1.5) == [b"x" * 1000]
    assert link.in_flight == 0


def test_next_arrival_is_the_earliest_of_both_ports() -> None:
    link = MemoryLink(delay=1.0)
    assert link.next_arrival() is None
    link.send("a", b"1", 2.0)
    link.send("b", b"2", 0.5)
    assert link.next_arrival() == 1.5
    assert link.deliverable("a", 1.5) == [b"2"]
    assert link.next_arrival() == 3.0


def test_mtu_drops_and_counts_oversized_frames_without_using_the_wire() -> None:
    link = MemoryLink(rate_bps=8000.0, mtu=1500)
    link.send("a", bytes(1501), 0.0)
    link.send("a", bytes(1500), 0.0)  # not delayed by the dropped frame
    link.send("b", bytes(9000), 0.0)
    assert link.next_arrival() == pytest.approx(1.5, abs=1e-12)
    assert link.deliverable("b", 10.0) == [bytes(1500)]
    assert link.deliverable("a", 10.0) == []
    assert link.counters == {
        "frames_sent": 3,
        "bytes_sent": 1501 + 1500 + 9000,
        "frames_delivered": 1,
        "bytes_delivered": 1500,
        "dropped_mtu": 2,
    }


def test_counters_whole() -> None:
    link = MemoryLink(delay=0.1)
    assert link.counters == ZERO_COUNTERS
    link.send("a", b"abc", 0.0)
    link.send("b", b"de", 0.0)
    link.send("a", b"f", 0.0)
    assert link.counters == ZERO_COUNTERS | {"frames_sent": 3, "bytes_sent": 6}
    assert link.in_flight == 3
    link.deliverable("b", 0.1)
    assert link.counters == ZERO_COUNTERS | {
        "frames_sent": 3,
        "bytes_sent": 6,
        "frames_delivered": 2,
        "bytes_delivered": 4,
    }
    counters = link.counters
    counters["frames_sent"] = 99  # a copy: the link's own counters do not move
    assert link.counters["frames_sent"] == 3


def test_tap_sees_each_delivered_frame_at_its_arrival_time_and_port() -> None:
    tap = Capture()
    link = MemoryLink(delay=0.5, on_frame=tap)
    link.send("a", b"ping", 1.0)
    link.send("b", b"pong", 1.25)
    assert tap.frames == []  # nothing is captured before it is delivered
    link.deliverable("b", 2.0)
    link.deliverable("a", 2.0)
    assert tap.frames == [CapturedFrame(1.5, "b", b"ping"), CapturedFrame(1.75, "a", b"pong")]


def test_frames_are_copied_on_send() -> None:
    link = MemoryLink()
    buf = bytearray(b"abc")
    link.send("a", buf, 0.0)  # type: ignore[arg-type]  # bytes-like is accepted
    buf[0] = 0
    assert link.deliverable("b", 0.0) == [b"abc"]


def test_send_refuses_to_go_back_in_time_per_port() -> None:
    link = MemoryLink()
    link.send("a", b"1", 5.0)
    link.send("b", b"2", 1.0)  # the other port has its own history
    with pytest.raises(ValueError, match=r"cannot send at 4\.0: it already sent at 5\.0"):
        link.send("a", b"3", 4.0)


@pytest.mark.parametrize(
    "kwargs",
    [{"delay": -1.0}, {"delay": math.nan}, {"rate_bps": 0.0}, {"rate_bps": -5.0}, {"mtu": 0}],
)
def test_bad_parameters_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        MemoryLink(**kwargs)  # type: ignore[arg-type]


def test_unknown_ports_are_refused() -> None:
    link = MemoryLink()
    with pytest.raises(ValueError, match="ports 'a' and 'b', not 'c'"):
        link.send("c", b"", 0.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        link.deliverable("c", 0.0)  # type: ignore[arg-type]


def test_endpoint_protocol_is_structural() -> None:
    class Quiet:
        def receive(self, frame: bytes, now: float) -> None:
            pass

        def poll(self, now: float) -> list[bytes]:
            return []

        def next_deadline(self) -> float | None:
            return None

    assert isinstance(Quiet(), Endpoint)
    assert not isinstance(object(), Endpoint)


sends = st.lists(
    st.tuples(
        st.sampled_from(["a", "b"]),
        st.integers(min_value=0, max_value=2000),  # frame size
        st.floats(min_value=0.0, max_value=0.01, allow_nan=False),  # gap since the previous send
    ),
    max_size=40,
)


@given(
    sends,
    st.floats(min_value=0.0, max_value=1.0),
    st.one_of(st.none(), st.floats(min_value=1e5, max_value=1e9)),
    st.one_of(st.none(), st.integers(min_value=1, max_value=2000)),
)
def test_arrivals_follow_the_wire_model(
    plan: list[tuple[str, int, float]], delay: float, rate: float | None, mtu: int | None
) -> None:
    """Model: per port, start = max(now, wire free), done = start + 8n/rate, arrival = done + delay."""
    tap = Capture()
    link = MemoryLink(delay=delay, rate_bps=rate, mtu=mtu, on_frame=tap)
    now = 0.0
    free = {"a": 0.0, "b": 0.0}
    expected: dict[str, list[tuple[float, bytes]]] = {"a": [], "b": []}
    dropped = 0
    for i, (side, size, gap) in enumerate(plan):
        now += gap
        frame = i.to_bytes(2, "big") * (size // 2) + bytes(size % 2)
        link.send(side, frame, now)  # type: ignore[arg-type]
        if mtu is not None and size > mtu:
            dropped += 1
            continue
        done = now if rate is None else max(now, free[side]) + size * 8 / rate
        free[side] = done
        expected["b" if side == "a" else "a"].append((done + delay, frame))
    for port in ("a", "b"):
        got = link.deliverable(port, math.inf)
        assert got == [f for _, f in expected[port]]  # FIFO per direction
        times = [c.time for c in tap.frames if c.side == port]
        assert times == pytest.approx([t for t, _ in expected[port]], rel=1e-12, abs=1e-12)
    delivered = len(expected["a"]) + len(expected["b"])
    assert link.counters == {
        "frames_sent": len(plan),
        "bytes_sent": sum(size for _, size, _ in plan),
        "frames_delivered": delivered,
        "bytes_delivered": sum(len(f) for q in expected.values() for _, f in q),
        "dropped_mtu": dropped,
    }
