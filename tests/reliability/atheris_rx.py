"""atheris (libFuzzer) harness for the RX path: coverage-guided bytes into a live stack.

Each input is self-contained, so a crash file replays alone: its first two bytes
seed a fresh :class:`~tests.reliability.rxworld.RxWorld` (live connections,
listeners, memberships, fragment queues: 5 ms to build), and the rest is consumed
by an :class:`FdpChooser` driving up to :data:`MAX_FRAMES` steps, each a mutated
frame (through the same mutators as the hypothesis test), a raw frame taken
verbatim from the input, or a jump in virtual time.  After every frame the
invariants of :mod:`tests.reliability.invariants` are checked; a broken one raises
and libFuzzer saves the input.

Run (from the repository root)::

    python -m tests.reliability.atheris_rx -runs=100000 -artifact_prefix=/tmp/
    python -m tests.reliability.atheris_rx crash-<sha1>       # replay one input
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["refstack"]):
    import refstack.stack  # noqa: F401  (instrumented for coverage)

from tests.reliability.invariants import InvariantError, check_stack
from tests.reliability.rxworld import TIME_STEPS, RxWorld, mutate, pick

MAX_FRAMES = 32


class FdpChooser:
    """A :class:`~tests.reliability.rxworld.Chooser` over atheris' FuzzedDataProvider;
    an exhausted input yields zeros (the first choice), so every input terminates."""

    def __init__(self, fdp: atheris.FuzzedDataProvider) -> None:
        self._fdp = fdp

    def randrange(self, start: int, stop: int | None = None) -> int:
        if stop is None:
            start, stop = 0, start
        return int(self._fdp.ConsumeIntInRange(start, stop - 1))

    def getrandbits(self, k: int) -> int:
        return int(self._fdp.ConsumeInt((k + 7) // 8)) & ((1 << k) - 1) if k else 0

    def remaining(self) -> int:
        return int(self._fdp.remaining_bytes())

    def raw(self, n: int) -> bytes:
        return bytes(self._fdp.ConsumeBytes(n))


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    c = FdpChooser(fdp)
    world = RxWorld(c.randrange(1 << 16))
    for step in range(MAX_FRAMES):
        if c.remaining() == 0:
            break
        what = c.randrange(8)
        if what == 0:
            world.advance(pick(c, TIME_STEPS))
            continue
        frame = c.raw(c.randrange(14, 1515)) if what == 1 else mutate(world, c)
        broken = world.inject(frame) + check_stack(world.dut, udp=world.udp)
        if broken:
            raise InvariantError(
                f"step {step}, t={world.sim.now()}, frame {frame.hex()}: " + "; ".join(broken)
            )


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
