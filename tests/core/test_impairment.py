"""ImpairedLink: reproducible from its seed, each impairment at its rate and with its meaning."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refstack.impairment import ImpairedLink, Impairment, flip_bit
from refstack.link import Capture, CapturedFrame, MemoryLink

N = 20_000
SPACING = 1e-6  # seconds between sends in the rate runs: far below reorder_delay


def numbered(i: int, size: int = 16) -> bytes:
    """Frame ``i``: its number in the first 4 bytes, then a fixed filler."""
    return i.to_bytes(4, "big") + bytes(k % 256 for k in range(size - 4))


def run(
    link: ImpairedLink, frames: list[bytes], side: str = "a", spacing: float = SPACING
) -> list[CapturedFrame]:
    """Send ``frames`` from ``side`` one every ``spacing`` seconds; return what arrived, in order."""
    tap = Capture()
    link.link.on_frame = tap
    for i, frame in enumerate(frames):
        link.send(side, frame, i * spacing)  # type: ignore[arg-type]
    link.deliverable("b" if side == "a" else "a", math.inf)
    return tap.frames


def within(observed: int, n: int, p: float, sigmas: float = 4.0) -> bool:
    """``observed`` successes of ``n`` trials is within ``sigmas`` standard deviations of ``p``."""
    mean, sd = n * p, math.sqrt(n * p * (1 - p))
    return abs(observed - mean) <= sigmas * sd


def bit_difference(x: bytes, y: bytes) -> int:
    return sum(bin(a ^ b).count("1") for a, b in zip(x, y, strict=True))


# --- determinism ----------------------------------------------------------------------

EVERYTHING = {
    "loss": 0.2,
    "duplicate": 0.2,
    "corrupt": 0.2,
    "reorder": 0.2,
    "reorder_delay": 0.003,
    "delay": 0.01,
    "jitter": 0.002,
}


@settings(max_examples=40)
@given(st.integers(), st.lists(st.integers(min_value=0, max_value=64), max_size=60))
def test_same_seed_same_outcome(seed: int, sizes: list[int]) -> None:
    frames = [numbered(i, 4 + s) for i, s in enumerate(sizes)]
    outcomes = [
        run(ImpairedLink(MemoryLink(rate_bps=1e6), Impairment(seed, **EVERYTHING)), frames, spacing=1e-3)
        for _ in range(2)
    ]
    assert outcomes[0] == outcomes[1]


@settings(max_examples=20)
@given(st.integers(), st.integers())
def test_different_seeds_differ(seed1: int, seed2: int) -> None:
    if seed1 == seed2:
        seed2 += 1
    frames = [numbered(i) for i in range(300)]
    a, b = (
        run(ImpairedLink(MemoryLink(), Impairment(s, **EVERYTHING)), frames, spacing=1e-3)
        for s in (seed1, seed2)
    )
    assert a != b


def test_the_reverse_direction_does_not_disturb_a_direction() -> None:
    imp = Impairment(7, loss=0.3, duplicate=0.3, jitter=0.01)
    frames = [numbered(i) for i in range(200)]
    quiet = run(ImpairedLink(MemoryLink(), imp), frames, spacing=1e-3)
    busy_link = ImpairedLink(MemoryLink(), imp)
    tap = Capture()
    busy_link.link.on_frame = tap
    for i, frame in enumerate(frames):
        busy_link.send("b", b"noise", i * 1e-3)
        busy_link.send("a", frame, i * 1e-3)
    busy_link.deliverable("b", math.inf)
    assert tap.frames == quiet


def test_one_config_for_both_directions_draws_two_streams() -> None:
    link = ImpairedLink(MemoryLink(), Impairment(3, loss=0.5))
    assert link.config("a") is link.config("b")
    for i in range(100):
        link.send("a", numbered(i), i * 1e-3)
        link.send("b", numbered(i), i * 1e-3)
    from_a, from_b = link.deliverable("b", math.inf), link.deliverable("a", math.inf)
    assert from_a != from_b  # not the same 50% of frames lost both ways


# --- loss -------------------------------------------------------------------------------


def test_loss_zero_delivers_everything_loss_one_nothing() -> None:
    frames = [numbered(i) for i in range(1000)]
    assert [c.frame for c in run(ImpairedLink(MemoryLink(), Impairment(1, loss=0.0)), frames)] == frames
    link = ImpairedLink(MemoryLink(), Impairment(1, loss=1.0))
    assert run(link, frames) == []
    assert link.counters == {
        "frames_sent": 1000,
        "bytes_sent": 16_000,
        "frames_delivered": 0,
        "bytes_delivered": 0,
        "dropped_mtu": 0,
        "lost": 1000,
        "duplicated": 0,
        "corrupted": 0,
        "reordered": 0,
    }


def test_a_clean_impairment_is_a_plain_link() -> None:
    frames = [numbered(i, 100) for i in range(100)]
    plain, clean = MemoryLink(delay=0.5, rate_bps=1e6), MemoryLink(delay=0.5, rate_bps=1e6)
    tap_plain = Capture()
    plain.on_frame = tap_plain
    for i, f in enumerate(frames):
        plain.send("a", f, i * 1e-4)
    plain.deliverable("b", math.inf)
    assert run(ImpairedLink(clean, Impairment(9)), frames, spacing=1e-4) == tap_plain.frames


# --- rates over 20k frames ----------------------------------------------------------------


def test_loss_rate() -> None:
    link = ImpairedLink(MemoryLink(), Impairment(11, loss=0.05))
    got = run(link, [numbered(i) for i in range(N)])
    lost = N - len(got)
    assert within(lost, N, 0.05), lost
    assert link.counters["lost"] == lost


def test_duplicate_rate_and_copies_follow_their_frame() -> None:
    link = ImpairedLink(MemoryLink(), Impairment(12, duplicate=0.01))
    got = [c.frame for c in run(link, [numbered(i) for i in range(N)])]
    duplicated = len(got) - N
    assert within(duplicated, N, 0.01), duplicated
    assert link.counters["duplicated"] == duplicated
    assert sorted(set(got)) == [numbered(i) for i in range(N)]
    pairs = sum(1 for x, y in itertools.pairwise(got) if x == y)
    assert pairs == duplicated  # every copy arrives right behind its original


def test_corrupt_rate() -> None:
    frames = [numbered(i) for i in range(N)]
    link = ImpairedLink(MemoryLink(), Impairment(13, corrupt=0.001))
    got = [c.frame for c in run(link, frames)]
    damaged = [(f, g) for f, g in zip(frames, got, strict=True) if f != g]
    assert within(len(damaged), N, 0.001), len(damaged)
    assert link.counters["corrupted"] == len(damaged)
    assert all(bit_difference(f, g) == 1 for f, g in damaged)


def test_reorder_rate() -> None:
    link = ImpairedLink(MemoryLink(), Impairment(14, reorder=0.05, reorder_delay=1e-3))
    got = run(link, [numbered(i) for i in range(N)])
    assert len(got) == N
    highest, overtaken = -1, 0
    for c in got:
        i = int.from_bytes(c.frame[:4], "big")
        if i < highest:
            overtaken += 1
        highest = max(highest, i)
    assert within(overtaken, N, 0.05), overtaken
    assert link.counters["reordered"] == overtaken  # here every held frame is overtaken


# --- the meaning of each impairment ----------------------------------------------------------


def test_corrupt_flips_exactly_one_bit_anywhere_in_the_frame() -> None:
    frames = [numbered(i, 8) for i in range(2000)]
    got = [c.frame for c in run(ImpairedLink(MemoryLink(), Impairment(15, corrupt=1.0)), frames)]
    positions = set()
    for f, g in zip(frames, got, strict=True):
        assert len(g) == len(f)
        assert bit_difference(f, g) == 1
        (byte,) = [k for k in range(len(f)) if f[k] != g[k]]
        positions.add((byte, f[byte] ^ g[byte]))
    assert positions == {(byte, 1 << bit) for byte in range(8) for bit in range(8)}  # all 64 bits hit


@given(st.integers(), st.binary(max_size=1600))
def test_corrupt_changes_exactly_one_bit(seed: int, frame: bytes) -> None:
    link = ImpairedLink(MemoryLink(), Impairment(seed, corrupt=1.0))
    (got,) = [c.frame for c in run(link, [frame])]
    assert bit_difference(frame, got) == (1 if frame else 0)  # an empty frame has no bit to flip
    assert link.counters["corrupted"] == (1 if frame else 0)


def test_flip_bit_numbers_bits_from_the_top_of_byte_zero() -> None:
    assert flip_bit(b"\x00\x00", 0) == b"\x80\x00"
    assert flip_bit(b"\x00\x00", 15) == b"\x00\x01"


def test_a_duplicate_is_an_intact_copy_of_a_corrupted_frame() -> None:
    link = ImpairedLink(MemoryLink(delay=0.25), Impairment(16, duplicate=1.0, corrupt=1.0))
    got = run(link, [numbered(0)])
    assert [c.time for c in got] == [0.25, 0.25]
    assert bit_difference(got[0].frame, numbered(0)) == 1
    assert got[1].frame == numbered(0)


def test_reordered_frames_are_overtaken_by_later_ones() -> None:
    spacing, hold = 1e-3, 0.0105  # about ten later frames pass a held one
    frames = [numbered(i) for i in range(200)]
    link = ImpairedLink(MemoryLink(delay=0.5), Impairment(17, reorder=0.3, reorder_delay=hold))
    got = run(link, frames, spacing=spacing)
    assert sorted(c.frame for c in got) == frames
    held = []
    for c in got:
        i = int.from_bytes(c.frame[:4], "big")
        sent = i * spacing
        assert c.time in (pytest.approx(sent + 0.5), pytest.approx(sent + 0.5 + hold))
        if c.time > sent + 0.5 + hold / 2:
            held.append(i)
    assert len(held) == link.counters["reordered"] > 0
    order = [int.from_bytes(c.frame[:4], "big") for c in got]
    for i in held:
        overtakers = {j for j in order[: order.index(i)] if j > i}
        not_held_soon_after = {j for j in range(i + 1, min(i + 11, 200)) if j not in held}
        assert not_held_soon_after <= overtakers


def test_delay_and_jitter_bound_latency_and_jitter_may_reorder() -> None:
    frames = [numbered(i) for i in range(500)]
    link = ImpairedLink(MemoryLink(delay=0.125), Impairment(18, delay=0.25, jitter=0.01))
    got = run(link, frames, spacing=1e-3)
    assert len(got) == 500
    latencies = [c.time - int.from_bytes(c.frame[:4], "big") * 1e-3 for c in got]
    assert min(latencies) >= 0.375 - 1e-12 and max(latencies) <= 0.385 + 1e-12
    assert max(latencies) - min(latencies) > 0.009  # the whole jitter range is used
    order = [int.from_bytes(c.frame[:4], "big") for c in got]
    assert order != sorted(order)  # documented: jitter larger than the spacing reorders
    assert link.counters["reordered"] == 0  # ... but that is not the reorder impairment

    steady = ImpairedLink(MemoryLink(), Impairment(18, delay=0.25))
    assert [c.time for c in run(steady, frames[:3], spacing=0.5)] == [0.25, 0.75, 1.25]


def test_impairment_rate_is_a_bottleneck_behind_the_wire() -> None:
    # The wire clocks 1000 bytes out in 1 ms; the bottleneck then takes 1 s for each.
    link = ImpairedLink(MemoryLink(rate_bps=8e6), Impairment(19, rate_bps=8000.0, delay=0.5))
    got = run(link, [numbered(i, 1000) for i in range(3)], spacing=0.0)
    assert [c.time for c in got] == pytest.approx([0.001 + 1.5, 0.001 + 2.5, 0.001 + 3.5], abs=1e-9)


def test_impairments_are_per_direction() -> None:
    link = ImpairedLink(MemoryLink(delay=0.5), Impairment(20, loss=1.0), Impairment(21, delay=0.25))
    for i in range(10):
        link.send("a", numbered(i), float(i))
        link.send("b", numbered(i), float(i))
    assert link.deliverable("b", math.inf) == []
    tap = Capture()
    link.link.on_frame = tap
    assert link.deliverable("a", math.inf) == [numbered(i) for i in range(10)]
    assert [c.time for c in tap.frames] == [i + 0.75 for i in range(10)]
    assert link.counters["lost"] == 10


def test_oversized_frames_are_dropped_before_the_impairments() -> None:
    link = ImpairedLink(MemoryLink(mtu=100), Impairment(22, duplicate=1.0))
    link.send("a", bytes(101), 0.0)
    link.send("a", bytes(100), 0.0)
    assert link.deliverable("b", 0.0) == [bytes(100), bytes(100)]
    assert link.counters == {
        "frames_sent": 2,
        "bytes_sent": 201,
        "frames_delivered": 2,
        "bytes_delivered": 200,
        "dropped_mtu": 1,
        "lost": 0,
        "duplicated": 1,
        "corrupted": 0,
        "reordered": 0,
    }
    assert link.next_arrival() is None and link.in_flight == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"loss": -0.1},
        {"duplicate": 1.5},
        {"corrupt": math.nan},
        {"reorder": 2.0},
        {"delay": -1.0},
        {"jitter": math.inf},
        {"reorder_delay": -0.5},
        {"rate_bps": 0.0},
    ],
)
def test_bad_impairments_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Impairment(0, **kwargs)
