"""RX-path fuzzing: mutated frames into a stack full of live state, invariants after each.

A hypothesis :class:`~hypothesis.stateful.RuleBasedStateMachine` builds an
:class:`~tests.reliability.rxworld.RxWorld` (live TCP connections, listeners, UDP
sockets, multicast memberships, partial fragment trains) and then interleaves:

- ``one_frame``: one frame mutated with hypothesis draws (so a failure shrinks to the
  mutation that matters: which corpus frame, which field, which value);
- ``burst``: up to 200 frames mutated by ``random.Random(seed)`` (the volume: the seed
  and the frame's index reproduce it exactly);
- ``offloaded_frame``: one mutated frame with what a device says of it
  (``RxOffload``: checksum vouched for or not, any super-segment size), a lying
  device included;
- ``advance``: virtual time jumps (delayed ACK, RTO, TIME-WAIT, fragment and IGMP
  timeouts) while the stack and its peer talk;
- ``app``: an application call on a dut socket (read, write, close, drain UDP,
  another connection from the peer).

After every frame: exactly one disposition counter moved, no exception escaped
``receive``/``poll``, and every invariant of :mod:`tests.reliability.invariants` holds.

CI size: 50 000 frames in all (the test asserts it), derandomized so that CI never
flakes (about 7 s here); ``--long`` runs 1 000 000 with fresh randomness each time
(about 200 s), and a failure prints hypothesis' reproduction (the rule sequence with
every drawn value; a burst's seed and frame index replay it exactly).

The atheris harness (:mod:`tests.reliability.atheris_rx`) feeds the same world from
coverage-guided bytes; ``test_atheris_harness`` runs it briefly (1000 inputs) when
atheris is installed and skips with the reason otherwise.
"""

from __future__ import annotations

import importlib.util
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from refstack.nic.offload import RxOffload

from .invariants import InvariantError, check_stack
from .rxworld import TIME_STEPS, RxWorld, mutate

BURST = 200
CI_FRAMES = 50_000
LONG_FRAMES = 1_000_000


class DrawChooser:
    """A :class:`~tests.reliability.rxworld.Chooser` over hypothesis draws."""

    def __init__(self, data: st.DataObject) -> None:
        self._data = data

    def randrange(self, start: int, stop: int | None = None) -> int:
        if stop is None:
            start, stop = 0, start
        return self._data.draw(st.integers(start, stop - 1))

    def getrandbits(self, k: int) -> int:
        return self._data.draw(st.integers(0, (1 << k) - 1))


class Tally:
    """Frames fed across every example of one run (the figure the report quotes)."""

    frames = 0
    target = CI_FRAMES


class RxFuzz(RuleBasedStateMachine):
    """The state machine of the module docstring."""

    world: RxWorld

    @initialize(seed=st.integers(0, 1 << 16))
    def build(self, seed: int) -> None:
        self.world = RxWorld(seed)

    def _feed(self, frame: bytes, where: str, offload: RxOffload | None = None) -> None:
        Tally.frames += 1
        try:
            broken = self.world.inject(frame, offload)
        except Exception as e:
            raise AssertionError(f"{where}: receive/poll raised {e!r} on frame {frame.hex()}") from e
        broken += check_stack(self.world.dut, udp=self.world.udp)
        if broken:
            raise InvariantError(
                f"{where}, t={self.world.sim.now()}, frame {frame.hex()}: " + "; ".join(broken)
            )

    @rule(data=st.data())
    def one_frame(self, data: st.DataObject) -> None:
        self._feed(mutate(self.world, DrawChooser(data)), "one_frame")

    @rule(seed=st.integers(0, (1 << 32) - 1), count=st.integers(1, BURST))
    def burst(self, seed: int, count: int) -> None:
        rng = random.Random(seed)
        for i in range(count):
            if Tally.frames >= Tally.target:
                return
            self._feed(mutate(self.world, rng), f"burst(seed={seed}) frame {i}")

    @rule(data=st.data(), csum_valid=st.booleans(), gso_size=st.sampled_from((0, 1, 536, 1448, 9000, 65535)))
    def offloaded_frame(self, data: st.DataObject, csum_valid: bool, gso_size: int) -> None:
        """A mutated frame from a device that vouches for its checksum, or calls it a
        super-segment of any segment size (refstack.nic.offload): a lying device must
        not crash the stack either."""
        offload = RxOffload(csum_valid=csum_valid, gso_size=gso_size)
        self._feed(mutate(self.world, DrawChooser(data)), f"offloaded_frame({offload})", offload)

    @rule(step=st.sampled_from(TIME_STEPS))
    def advance(self, step: float) -> None:
        self.world.advance(step)

    @rule(seed=st.integers(0, (1 << 32) - 1))
    def app(self, seed: int) -> None:
        self.world.app_step(random.Random(seed))

    @invariant()
    def holds(self) -> None:
        if hasattr(self, "world"):
            broken = check_stack(self.world.dut, udp=self.world.udp)
            if broken:
                raise InvariantError(f"t={self.world.sim.now()}: " + "; ".join(broken))


def _run(frames: int, max_examples: int, steps: int, *, derandomize: bool) -> tuple[int, float]:
    Tally.frames, Tally.target = 0, frames
    start = time.perf_counter()
    run_state_machine_as_test(  # type: ignore[no-untyped-call]
        RxFuzz,
        settings=settings(
            max_examples=max_examples,
            stateful_step_count=steps,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            derandomize=derandomize,
        ),
    )
    return Tally.frames, time.perf_counter() - start


def test_rx_fuzz(capsys: pytest.CaptureFixture[str]) -> None:
    """50k mutated frames; prints the rate (frames/s) for the report."""
    frames, elapsed = _run(CI_FRAMES, max_examples=100, steps=50, derandomize=True)
    with capsys.disabled():
        print(f"\nrx fuzz: {frames} frames in {elapsed:.1f} s ({frames / elapsed:.0f} frames/s)")
    assert frames >= CI_FRAMES * 0.9, f"only {frames} frames were fed: retune max_examples/steps"


@pytest.mark.long
def test_rx_fuzz_long(capsys: pytest.CaptureFixture[str]) -> None:
    """The opt-in 1M-frame run (``--long``)."""
    frames, elapsed = _run(LONG_FRAMES, max_examples=2500, steps=50, derandomize=False)
    with capsys.disabled():
        print(f"\nrx fuzz (long): {frames} frames in {elapsed:.1f} s ({frames / elapsed:.0f} frames/s)")
    assert frames >= LONG_FRAMES * 0.9, f"only {frames} frames were fed: retune max_examples/steps"


def test_atheris_harness(tmp_path: Path) -> None:
    """The atheris harness runs a few thousand coverage-guided inputs without a finding."""
    if importlib.util.find_spec("atheris") is None:
        pytest.skip(
            "atheris is not installed (pip install atheris: it needs a wheel for this Python or clang)"
        )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.reliability.atheris_rx", "-runs=1000", f"-artifact_prefix={tmp_path}/"],
        cwd=root,
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "Done 1000 runs" in proc.stderr, proc.stderr[-2000:]
