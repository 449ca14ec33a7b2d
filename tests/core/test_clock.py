"""Clocks: virtual time moves only forwards and only when told; monotonic time starts at 0."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from refstack.clock import Clock, MonotonicClock, VirtualClock

times = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False)
steps = st.floats(min_value=0.0, max_value=1e6, allow_nan=False)


def test_virtual_clock_starts_where_told() -> None:
    assert VirtualClock().now() == 0.0
    assert VirtualClock(12.5).now() == 12.5


def test_advance_to_and_advance() -> None:
    clock = VirtualClock()
    clock.advance_to(1.5)
    assert clock.now() == 1.5
    clock.advance_to(1.5)  # staying put is allowed
    assert clock.now() == 1.5
    clock.advance(0.25)
    assert clock.now() == 1.75
    clock.advance(0.0)
    assert clock.now() == 1.75


def test_never_backwards_and_the_error_names_both_times() -> None:
    clock = VirtualClock(2.0)
    with pytest.raises(ValueError, match=r"backwards from 2\.0 to 1\.5"):
        clock.advance_to(1.5)
    with pytest.raises(ValueError, match=r"by -0\.5 s: it would move from 2\.0 to 1\.5"):
        clock.advance(-0.5)
    assert clock.now() == 2.0


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_times_are_refused(bad: float) -> None:
    clock = VirtualClock(1.0)
    with pytest.raises(ValueError):
        clock.advance_to(bad)
    with pytest.raises(ValueError):
        clock.advance(bad)
    with pytest.raises(ValueError):
        VirtualClock(bad)
    assert clock.now() == 1.0


@given(times, st.lists(st.one_of(times, steps.map(lambda d: -d - 1e-3)), max_size=30))
def test_readings_never_decrease(start: float, targets: list[float]) -> None:
    clock = VirtualClock(start)
    previous = clock.now()
    for t in targets:
        if t < previous:
            with pytest.raises(ValueError):
                clock.advance_to(t)
            assert clock.now() == previous
        else:
            clock.advance_to(t)
            assert clock.now() == t
        previous = clock.now()


@given(times, st.lists(steps, max_size=30))
def test_advance_moves_by_exactly_dt(start: float, dts: list[float]) -> None:
    clock = VirtualClock(start)
    for dt in dts:
        before = clock.now()
        clock.advance(dt)
        assert clock.now() == before + dt


def test_monotonic_clock_starts_at_zero_from_its_origin() -> None:
    readings = iter([1000.0, 1000.25, 1003.5])
    clock = MonotonicClock(source=lambda: next(readings))
    assert clock.now() == 0.25
    assert clock.now() == 3.5


def test_monotonic_clock_over_time_monotonic() -> None:
    clock = MonotonicClock()
    first = clock.now()
    second = clock.now()
    assert 0.0 <= first <= second < 1.0


def test_both_are_clocks() -> None:
    clocks: list[Clock] = [VirtualClock(), MonotonicClock()]
    assert all(c.now() >= 0.0 for c in clocks)
