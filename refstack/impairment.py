"""A lossy, duplicating, corrupting, reordering, jittery link, reproducible from a seed.

The impairments are those of Linux netem (``tc-netem(8)``) that a TCP/IP stack must
survive: loss, duplication, corruption, reordering, delay with jitter, and a rate
limit.  They act in one place, as if a netem box sat at the far end of the wire:

1. The frame is put on the wrapped :class:`~refstack.link.MemoryLink` (its MTU check,
   serialization at its rate, its delay) and reaches the box at ``t``.
2. **loss** -- with probability ``loss`` the frame is dropped (``lost``).
3. **duplicate** -- with probability ``duplicate`` the box makes an extra, intact copy
   (``duplicated``) that follows right behind the frame: same latency, delivered just
   after it.
4. **corrupt** -- with probability ``corrupt`` one bit of the frame, uniform over all
   its bits (so one random bit of one random byte, anywhere in the frame), is flipped
   (``corrupted``).  The duplicate, if any, stays intact.  Empty frames are not
   corrupted.
5. **rate_bps** -- a bottleneck: the frame (then its copy) is serialized again at this
   rate, first in first out, behind the frames before it.
6. **delay + jitter** -- ``delay`` plus a latency drawn uniformly from ``[0, jitter]``
   is added.  *Jitter reorders*: a frame may overtake an earlier one whose draw was
   larger, as with netem's jitter without a rate.  Use ``jitter=0`` for in-order
   delivery.
7. **reorder** -- with probability ``reorder`` the frame is held back ``reorder_delay``
   more seconds (``reordered``), so frames sent within that interval after it overtake
   it.

Randomness: each direction has its own ``random.Random`` stream, seeded from its
config's ``seed`` and the direction, and every frame draws the same six numbers
whatever happens to it.  So the fate of the n-th frame in one direction depends only
on the seed and n: the same seed and the same sequence of sends give the same frames at
the same times, and traffic in the other direction does not disturb it.
"""

from __future__ import annotations

import math
import random
from dataclasses import KW_ONLY, dataclass

from .link import MemoryLink, Side, check_side

_PROBABILITIES = ("loss", "reorder", "duplicate", "corrupt")
_DURATIONS = ("reorder_delay", "delay", "jitter")


@dataclass(frozen=True, slots=True)
class Impairment:
    """What one direction of an :class:`ImpairedLink` does to frames (probabilities 0..1, seconds).

    All default to a clean path, so ``Impairment(seed)`` impairs nothing.  See the
    module docstring for the order in which they act.
    """

    seed: int
    _: KW_ONLY
    loss: float = 0.0
    reorder: float = 0.0
    reorder_delay: float = 0.01
    duplicate: float = 0.0
    corrupt: float = 0.0
    delay: float = 0.0
    jitter: float = 0.0
    rate_bps: float | None = None

    def __post_init__(self) -> None:
        for name in _PROBABILITIES:
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:  # also rejects NaN
                raise ValueError(f"impairment {name} is a probability in 0..1, not {p}")
        for name in _DURATIONS:
            d = getattr(self, name)
            if not (math.isfinite(d) and d >= 0):
                raise ValueError(f"impairment {name} must be a finite number of seconds >= 0, not {d}")
        if self.rate_bps is not None and not (math.isfinite(self.rate_bps) and self.rate_bps > 0):
            raise ValueError(
                f"impairment rate must be a finite number of bits per second > 0, not {self.rate_bps}"
            )


_IMPAIRMENT_COUNTERS = ("lost", "duplicated", "corrupted", "reordered")


@dataclass(frozen=True, slots=True)
class Fate:
    """What an impairment does to one frame.  ``corrupt_at``: where a bit is flipped, as
    a fraction of the frame (or of the part a link chooses to corrupt); None: intact."""

    lost: bool
    duplicated: bool
    corrupt_at: float | None
    latency: float
    reordered: bool


def draw_fate(cfg: Impairment, rng: random.Random) -> Fate:
    """One frame's fate under ``cfg``, from six uniform draws taken always and in the
    same order (loss, duplicate, corrupt, bit, reorder, jitter), so that one frame's fate
    never shifts the next one's and every link impaired with the same seed agrees."""
    u_loss, u_dup, u_corrupt, u_bit, u_reorder, u_jitter = (
        rng.random(),
        rng.random(),
        rng.random(),
        rng.random(),
        rng.random(),
        rng.random(),
    )
    reordered = u_reorder < cfg.reorder
    return Fate(
        lost=u_loss < cfg.loss,
        duplicated=u_dup < cfg.duplicate,
        corrupt_at=u_bit if u_corrupt < cfg.corrupt else None,
        latency=cfg.delay + u_jitter * cfg.jitter + (cfg.reorder_delay if reordered else 0.0),
        reordered=reordered,
    )


class _Direction:
    """The state of one direction: its config, its random stream and its bottleneck."""

    __slots__ = ("busy_until", "config", "rng")

    def __init__(self, config: Impairment, direction: str) -> None:
        self.config = config
        # A string seed is hashed with SHA-512 by random.seed: stable across runs and
        # Python versions, and different for the two directions of one seed.
        self.rng = random.Random(f"{config.seed}:{direction}")
        self.busy_until = -math.inf

    def bottleneck(self, t: float, size: int) -> float:
        """Serialize ``size`` bytes reaching the bottleneck at ``t``; return when they leave it."""
        rate = self.config.rate_bps
        if rate is None:
            return t
        self.busy_until = max(t, self.busy_until) + size * 8 / rate
        return self.busy_until


class ImpairedLink:
    """A :class:`~refstack.link.MemoryLink` with netem-style impairments in each direction.

    ``a_to_b`` impairs frames sent from port ``"a"``, ``b_to_a`` those from ``"b"``; when
    ``b_to_a`` is ``None`` the ``a_to_b`` config applies to both directions (each still
    with its own random stream).  Pass ``Impairment(seed)`` for a clean direction.

    Same ``send``/``deliverable``/``next_arrival`` as the wrapped link; ``counters`` are
    the link's plus ``lost``, ``duplicated``, ``corrupted`` and ``reordered``.  Frames
    dropped for their size never reach the impairments.
    """

    __slots__ = ("_counters", "_directions", "link")

    def __init__(self, link: MemoryLink, a_to_b: Impairment, b_to_a: Impairment | None = None) -> None:
        if link.offload:
            raise ValueError("an impaired link corrupts frames: it cannot carry offloaded ones (offload)")
        self.link = link
        self._directions: dict[Side, _Direction] = {
            "a": _Direction(a_to_b, "a>b"),
            "b": _Direction(a_to_b if b_to_a is None else b_to_a, "b>a"),
        }
        self._counters = dict.fromkeys(_IMPAIRMENT_COUNTERS, 0)

    def send(self, side: Side, frame: bytes, now: float) -> None:
        """Send ``frame`` from port ``side`` at ``now`` through the wire and the impairments."""
        frame = bytes(frame)
        t = self.link.transmit(side, frame, now)
        if t is None:
            return
        d = self._directions[check_side(side)]
        fate = draw_fate(d.config, d.rng)
        if fate.lost:
            self._counters["lost"] += 1
            return
        copy = frame if fate.duplicated else None
        if fate.corrupt_at is not None and frame:
            frame = flip_bit(frame, int(fate.corrupt_at * len(frame) * 8))
            self._counters["corrupted"] += 1
        latency = fate.latency
        if fate.reordered:
            self._counters["reordered"] += 1
        self.link.schedule(side, frame, d.bottleneck(t, len(frame)) + latency)
        if copy is not None:
            self._counters["duplicated"] += 1
            self.link.schedule(side, copy, d.bottleneck(t, len(copy)) + latency)

    def deliverable(self, side: Side, now: float) -> list[bytes]:
        """Pop every frame that has arrived at port ``side`` by ``now``, in arrival order."""
        return self.link.deliverable(side, now)

    def next_arrival(self) -> float | None:
        """The arrival time of the next frame at either port, ``None`` when nothing is in flight."""
        return self.link.next_arrival()

    def config(self, side: Side) -> Impairment:
        """The impairment applied to frames sent from port ``side``."""
        return self._directions[check_side(side)].config

    @property
    def counters(self) -> dict[str, int]:
        return self.link.counters | self._counters

    @property
    def in_flight(self) -> int:
        """Frames queued and not yet delivered, both directions."""
        return self.link.in_flight

    def __repr__(self) -> str:
        return f"ImpairedLink({self.link!r}, a_to_b={self.config('a')}, b_to_a={self.config('b')})"


def flip_bit(frame: bytes, bit: int) -> bytes:
    """``frame`` with bit number ``bit`` inverted (bit 0 is the most significant bit of byte 0)."""
    i, b = divmod(bit, 8)
    out = bytearray(frame)
    out[i] ^= 0x80 >> b
    return bytes(out)
