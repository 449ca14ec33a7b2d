"""Simulation: exact virtual times of each event, timeouts, livelock detection, and speed."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from refstack.clock import VirtualClock
from refstack.impairment import ImpairedLink, Impairment
from refstack.link import MemoryLink
from refstack.simulation import LivelockError, Simulation

# --- test doubles ---------------------------------------------------------------------------


class Ticker:
    """Sends ``tick<n>`` every ``period`` seconds from ``period`` on; logs what it sends and gets."""

    def __init__(self, period: float, count: int | None = None) -> None:
        self.period = period
        self.remaining = count
        self.n = 0
        self.next_tick: float | None = period
        self.log: list[tuple[float, str, bytes]] = []

    def received(self) -> list[tuple[float, bytes]]:
        return [(t, f) for t, what, f in self.log if what == "rx"]

    def receive(self, frame: bytes, now: float) -> None:
        self.log.append((now, "rx", frame))

    def poll(self, now: float) -> list[bytes]:
        out = []
        while self.next_tick is not None and self.next_tick <= now:
            self.n += 1
            frame = b"tick%d" % self.n
            self.log.append((now, "tx", frame))
            out.append(frame)
            if self.remaining is not None:
                self.remaining -= 1
            self.next_tick = None if self.remaining == 0 else self.next_tick + self.period
        return out

    def next_deadline(self) -> float | None:
        return self.next_tick


class PingPong:
    """Answers each frame with ``pong:`` + frame, ``answer_after`` seconds after it arrived."""

    def __init__(self, answer_after: float) -> None:
        self.answer_after = answer_after
        self.pending: list[tuple[float, bytes]] = []
        self.log: list[tuple[float, str, bytes]] = []

    def receive(self, frame: bytes, now: float) -> None:
        self.log.append((now, "rx", frame))
        self.pending.append((now + self.answer_after, b"pong:" + frame))

    def poll(self, now: float) -> list[bytes]:
        due = [f for t, f in self.pending if t <= now]
        self.pending = [(t, f) for t, f in self.pending if t > now]
        self.log.extend((now, "tx", f) for f in due)
        return due

    def next_deadline(self) -> float | None:
        return min((t for t, _ in self.pending), default=None)


class Echo:
    """Answers at once, with no timer at all: its deadline is always ``None``."""

    def __init__(self) -> None:
        self.out: list[bytes] = []
        self.log: list[tuple[float, bytes]] = []

    def receive(self, frame: bytes, now: float) -> None:
        self.log.append((now, frame))
        self.out.append(frame)

    def poll(self, now: float) -> list[bytes]:
        out, self.out = self.out, []
        return out

    def next_deadline(self) -> None:
        return None


class Stuck:
    """A broken endpoint: always due at ``at``, yet its poll never does anything."""

    def __init__(self, at: float) -> None:
        self.at = at
        self.polls = 0

    def receive(self, frame: bytes, now: float) -> None:
        pass

    def poll(self, now: float) -> list[bytes]:
        self.polls += 1
        return []

    def next_deadline(self) -> float:
        return self.at


def ticker_and_pong(
    period: float = 1.0, delay: float = 0.125, answer_after: float = 0.25, count: int | None = None
) -> tuple[Simulation, Ticker, PingPong]:
    sim = Simulation(VirtualClock())
    ticker, pong = Ticker(period, count), PingPong(answer_after)
    sim.add(ticker, "ticker")
    sim.add(pong, "pong")
    sim.connect("ticker", "pong", MemoryLink(delay=delay))
    return sim, ticker, pong


# --- exact times --------------------------------------------------------------------------------


def test_each_step_is_one_event_at_its_exact_time() -> None:
    sim, ticker, pong = ticker_and_pong(count=2)
    times = []
    while sim.step():
        times.append(sim.now())
    # tick sent, tick arrives, pong sent (timer), pong arrives; twice.
    assert times == [1.0, 1.125, 1.375, 1.5, 2.0, 2.125, 2.375, 2.5]
    assert ticker.log == [
        (1.0, "tx", b"tick1"),
        (1.5, "rx", b"pong:tick1"),
        (2.0, "tx", b"tick2"),
        (2.5, "rx", b"pong:tick2"),
    ]
    assert pong.log == [
        (1.125, "rx", b"tick1"),
        (1.375, "tx", b"pong:tick1"),
        (2.125, "rx", b"tick2"),
        (2.375, "tx", b"pong:tick2"),
    ]
    assert sim.steps == 8
    assert sim.step() is False and sim.now() == 2.5  # idle: nothing happens, time stays


def test_run_until_stops_at_the_event_that_makes_the_predicate_true() -> None:
    sim, ticker, _ = ticker_and_pong()
    assert sim.run_until(lambda: len(ticker.received()) == 3, timeout=10.0) is True
    assert sim.now() == 3.5
    assert ticker.received() == [(1.5, b"pong:tick1"), (2.5, b"pong:tick2"), (3.5, b"pong:tick3")]


def test_run_until_returns_false_on_timeout_with_the_clock_at_the_deadline() -> None:
    sim, ticker, _ = ticker_and_pong()
    assert sim.run_until(lambda: len(ticker.received()) == 3, timeout=2.75) is False
    assert sim.now() == 2.75
    assert [t for t, _ in ticker.received()] == [1.5, 2.5]  # everything up to the deadline ran
    assert sim.run_until(lambda: len(ticker.received()) == 3, timeout=0.75) is True  # 3.5, inclusive
    assert sim.now() == 3.5


def test_run_until_on_an_idle_simulation_waits_out_the_timeout() -> None:
    sim = Simulation(VirtualClock(4.0))
    sim.add(Echo(), "echo")
    assert sim.run_until(lambda: False, timeout=1.5) is False
    assert sim.now() == 5.5
    assert sim.steps == 0


def test_run_until_checks_the_predicate_before_stepping() -> None:
    sim, _, _ = ticker_and_pong()
    assert sim.run_until(lambda: True, timeout=10.0) is True
    assert (sim.now(), sim.steps) == (0.0, 0)


def test_run_until_refuses_a_negative_timeout() -> None:
    sim, _, _ = ticker_and_pong()
    with pytest.raises(ValueError):
        sim.run_until(lambda: True, timeout=-1.0)


def test_run_for_runs_everything_in_the_window_and_ends_at_its_end() -> None:
    sim, ticker, pong = ticker_and_pong()
    sim.run_for(3.25)
    assert sim.now() == 3.25
    assert [f for _, f in ticker.received()] == [b"pong:tick1", b"pong:tick2"]
    assert pong.pending == [(3.375, b"pong:tick3")]  # tick3 (3.0) arrived at 3.125, its answer is due
    sim.run_for(0.25)
    assert [f for _, f in ticker.received()] == [b"pong:tick1", b"pong:tick2", b"pong:tick3"]


def test_an_endpoint_without_deadlines_is_polled_after_it_receives() -> None:
    sim = Simulation(VirtualClock())
    ticker, echo = Ticker(1.0, count=1), Echo()
    sim.add(ticker, "ticker")
    sim.add(echo, "echo")
    sim.connect("ticker", "echo", MemoryLink(delay=0.25))
    assert sim.run_until(lambda: bool(ticker.received()), timeout=5.0)
    assert echo.log == [(1.25, b"tick1")]
    assert ticker.received() == [(1.5, b"tick1")]  # answered at the very instant it arrived


def test_a_deadline_in_the_past_runs_now() -> None:
    clock = VirtualClock()
    sim = Simulation(clock)
    ticker = Ticker(1.0, count=1)
    sim.add(ticker, "ticker")
    sim.add(Echo(), "echo")
    sim.connect("ticker", "echo", MemoryLink())
    clock.advance_to(5.0)  # someone else moved the clock past the tick
    assert sim.step() is True
    assert ticker.log[0] == (5.0, "tx", b"tick1")


@given(
    st.integers(min_value=0, max_value=64),
    st.integers(min_value=0, max_value=64),
    st.integers(min_value=1, max_value=256),
)
def test_round_trips_take_exactly_two_delays_and_the_answer_time(d: int, a: int, p: int) -> None:
    delay, answer_after, period = d / 64, a / 64, p / 64  # binary fractions: exact sums
    sim, ticker, _ = ticker_and_pong(period, delay, answer_after)
    assert sim.run_until(lambda: len(ticker.received()) == 5, timeout=1000.0)
    assert [t for t, _ in ticker.received()] == [k * period + 2 * delay + answer_after for k in range(1, 6)]


# --- with impairments ------------------------------------------------------------------------


def test_a_run_over_an_impaired_link_replays_exactly() -> None:
    def trace() -> tuple[list[tuple[float, str, bytes]], dict[str, int]]:
        sim = Simulation(VirtualClock())
        ticker, pong = Ticker(0.125), PingPong(0.03125)
        sim.add(ticker, "ticker")
        sim.add(pong, "pong")
        link = ImpairedLink(MemoryLink(delay=0.01), Impairment(5, loss=0.2, duplicate=0.1, jitter=0.005))
        sim.connect("ticker", "pong", link)
        sim.run_for(30.0)
        return ticker.log + pong.log, link.counters

    first, second = trace(), trace()
    assert first == second
    counters = first[1]
    assert counters["lost"] > 0 and counters["duplicated"] > 0


# --- livelock and misuse ----------------------------------------------------------------------------


def test_an_endpoint_stuck_at_one_instant_is_named() -> None:
    sim, _, _ = ticker_and_pong()
    stuck = Stuck(0.5)
    sim.max_stalls = 5
    sim.add(stuck, "stuck")
    with pytest.raises(RuntimeError) as error:
        sim.run_until(lambda: False, timeout=10.0)
    assert str(error.value) == (
        "livelock at t=0.5: 6 steps at this instant delivered and sent nothing;"
        " endpoint 'stuck' (next_deadline()=0.5) keeps asking to be polled at this instant"
        " but poll() makes no progress"
    )
    assert isinstance(LivelockError("x"), RuntimeError)
    assert stuck.polls == 6  # max_stalls steps are tolerated, the next one raises
    assert sim.now() == 0.5


def test_frames_bouncing_with_zero_latency_are_a_livelock() -> None:
    sim = Simulation(VirtualClock(), max_steps_per_instant=50)
    left, right = Echo(), Echo()
    sim.add(left, "left")
    sim.add(right, "right")
    link = MemoryLink()
    sim.connect("left", "right", link)
    link.send("a", b"ball", 0.0)
    with pytest.raises(LivelockError) as error:
        sim.run_until(lambda: False, timeout=1.0)
    assert str(error.value) == (
        "livelock at t=0.0: 51 steps at this instant without time advancing;"
        " endpoints 'right', 'left' keep sending; frames cross link 'left'<->'right' in zero time"
    )
    assert sim.now() == 0.0


def test_a_few_quiet_polls_at_one_instant_are_fine() -> None:
    class TwoStage:
        """Its timer at 1.0 takes two polls to fire, the first sending nothing."""

        def __init__(self) -> None:
            self.stage = 0

        def receive(self, frame: bytes, now: float) -> None:
            pass

        def poll(self, now: float) -> list[bytes]:
            if now >= 1.0 and self.stage < 2:
                self.stage += 1
                return [b"done"] if self.stage == 2 else []
            return []

        def next_deadline(self) -> float | None:
            return 1.0 if self.stage < 2 else None

    sim = Simulation(VirtualClock())
    sim.add(TwoStage(), "two")
    sim.add(Echo(), "echo")
    sim.connect("two", "echo", MemoryLink())
    sim.run_for(2.0)
    # All at 1.0: a quiet poll (one stall), "done" sent, echoed back, received.
    assert sim.steps == 4
    assert sim.now() == 2.0


def test_an_unconnected_endpoint_that_sends_is_an_error() -> None:
    sim = Simulation(VirtualClock())
    sim.add(Ticker(1.0), "lonely")
    with pytest.raises(RuntimeError, match="'lonely' sent 1 frame"):
        sim.run_for(2.0)


def test_building_mistakes_are_refused() -> None:
    sim = Simulation(VirtualClock())
    ticker = Ticker(1.0)
    sim.add(ticker, "t")
    with pytest.raises(ValueError, match="already"):
        sim.add(Echo(), "t")
    with pytest.raises(ValueError, match="another name"):
        sim.add(ticker, "t2")
    with pytest.raises(TypeError):
        sim.add(object(), "thing")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no endpoint named 'nobody'"):
        sim.connect("t", "nobody", MemoryLink())
    with pytest.raises(ValueError, match="itself"):
        sim.connect("t", "t", MemoryLink())
    sim.add(Echo(), "e")
    sim.add(Echo(), "f")
    sim.connect("t", "e", MemoryLink())
    with pytest.raises(ValueError, match="one link per endpoint"):
        sim.connect("f", "t", MemoryLink())
    assert sim.endpoint("t") is ticker


# --- speed -------------------------------------------------------------------------------------------


def test_ten_virtual_minutes_take_well_under_a_second() -> None:
    sim, ticker, _pong = ticker_and_pong(period=0.125, delay=0.015625, answer_after=0.03125)
    started = time.perf_counter()
    sim.run_for(600.0)
    elapsed = time.perf_counter() - started
    assert sim.now() == 600.0
    assert ticker.n == 4800  # ticks at 0.125 k for k = 1 .. 4800
    assert len(ticker.received()) == 4799  # the last pong lands at 600.0625
    assert ticker.received()[-1] == (599.9375, b"pong:tick4799")
    assert sim.steps == 4800 + 3 * 4799  # tick; then arrival, answer, arrival for all but the last tick
    assert elapsed < 0.5, f"{elapsed:.3f} s of real time for 600 s of virtual time"
