"""An in-memory point-to-point link, and the two interfaces every driver codes against.

``Endpoint`` is the outside of a sans-I/O stack (``../shared/DESIGN.md``): frames go in
with ``receive(frame, now)``, frames come out of ``poll(now)``, and ``next_deadline()``
says when ``poll`` next has work.  ``Link`` is anything that carries frames between two
ports in virtual time: :class:`MemoryLink` here, ``ImpairedLink`` in
:mod:`refstack.impairment`.

A :class:`MemoryLink` models a full-duplex store-and-forward wire between port ``"a"``
and port ``"b"``.  A frame of ``n`` bytes sent at ``now`` from one port reaches the other
at ``start + n * 8 / rate_bps + delay``, where ``start`` is ``now`` or, if the sender's
previous frame is still being clocked out, the moment that frame's last bit left:
frames from one port are serialized back to back, first in first out, as on a real
wire.  The two directions are independent (full duplex).  Without ``rate_bps`` the
serialization time is zero.  Frames longer than ``mtu`` bytes (the whole frame as
given, link header included) never reach the wire; they are dropped and counted.

``offload=True`` makes it a host-internal link, as Linux's veth pair between two
namespaces: no wire, so nothing on it can corrupt a frame, and it carries what the
stacks hand it as is, TSO super-segments and partial checksums included
(:class:`~refstack.nic.offload.TxOffloadFrame`; the receiving stack takes such a frame
as vouched for, with its segment size).  The stacks' interfaces then offload
(``tx_csum_offload``, ``tso``).  A super-segment is exempt from the MTU, which its
segments each respect.

The link holds no clock: every call says what time it is, and ``deliverable`` hands
over the frames whose last bit has arrived by then, in arrival order.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from typing import Literal, NamedTuple, Protocol, runtime_checkable

from .nic.offload import TxOffloadFrame

Side = Literal["a", "b"]
"""One of the two ports of a link."""

SIDES: tuple[Side, Side] = ("a", "b")

Tap = Callable[[Side, bytes, float], None]
"""A capture hook ``on_frame(side, frame, time)``: ``frame`` arrived at port ``side`` at ``time``."""


def other_side(side: Side) -> Side:
    """The port a frame sent from ``side`` arrives at."""
    return "b" if side == "a" else "a"


def check_side(side: str) -> Side:
    """``side`` itself if it names a port (``"a"`` or ``"b"``), a ``ValueError`` otherwise."""
    if side == "a":
        return "a"
    if side == "b":
        return "b"
    raise ValueError(f"a link has ports 'a' and 'b', not {side!r}")


@runtime_checkable
class Endpoint(Protocol):
    """The outside of a sans-I/O stack: it never reads a clock, every call says the time."""

    def receive(self, frame: bytes, now: float) -> None:
        """A frame arrives at time ``now`` (seconds)."""

    def poll(self, now: float) -> list[bytes]:
        """Run the timers due at ``now`` and return the frames to send."""

    def next_deadline(self) -> float | None:
        """The earliest time ``poll`` has work, or ``None`` when idle."""


class Link(Protocol):
    """Two ports, ``"a"`` and ``"b"``, carrying frames in virtual time."""

    def send(self, side: Side, frame: bytes, now: float) -> None:
        """Queue ``frame`` from port ``side`` towards the other port at time ``now``."""

    def deliverable(self, side: Side, now: float) -> list[bytes]:
        """Pop the frames that have arrived at port ``side`` by ``now``, in arrival order."""

    def next_arrival(self) -> float | None:
        """When the next queued frame arrives at either port, or ``None`` if none is queued."""


class CapturedFrame(NamedTuple):
    """One frame seen by a :class:`Capture`: where it arrived, when, and its bytes."""

    time: float
    side: Side
    frame: bytes


class Capture:
    """A tap that records every frame delivered, in delivery order (for traces and pcaps).

    Pass it as ``MemoryLink(on_frame=capture)``; ``capture.frames`` is then the list of
    :class:`CapturedFrame` the link handed to either port.
    """

    __slots__ = ("frames",)

    def __init__(self) -> None:
        self.frames: list[CapturedFrame] = []

    def __call__(self, side: Side, frame: bytes, time: float) -> None:
        self.frames.append(CapturedFrame(time, side, frame))


_COUNTERS = ("frames_sent", "bytes_sent", "frames_delivered", "bytes_delivered", "dropped_mtu")


class MemoryLink:
    """A full-duplex wire between ports ``"a"`` and ``"b"``, with delay, rate and MTU.

    ``delay`` is the propagation delay in seconds, ``rate_bps`` the bit rate (``None``:
    infinitely fast), ``mtu`` the largest frame in bytes the link carries (``None``: no
    limit).  ``on_frame`` is a :data:`Tap` called once per frame as it is delivered,
    with the receiving port and the arrival time.

    ``counters`` (a fresh dict each time): ``frames_sent``/``bytes_sent`` count every
    frame offered to ``send``, ``dropped_mtu`` those refused for their size,
    ``frames_delivered``/``bytes_delivered`` those handed over by ``deliverable``.
    """

    __slots__ = (
        "_busy_until",
        "_counters",
        "_last_send",
        "_queues",
        "_seq",
        "delay",
        "mtu",
        "offload",
        "on_frame",
        "rate_bps",
    )

    def __init__(
        self,
        *,
        delay: float = 0.0,
        rate_bps: float | None = None,
        mtu: int | None = None,
        on_frame: Tap | None = None,
        offload: bool = False,
    ) -> None:
        if not (math.isfinite(delay) and delay >= 0):
            raise ValueError(f"link delay must be a finite number of seconds >= 0, not {delay}")
        if rate_bps is not None and not (math.isfinite(rate_bps) and rate_bps > 0):
            raise ValueError(f"link rate must be a finite number of bits per second > 0, not {rate_bps}")
        if mtu is not None and mtu < 1:
            raise ValueError(f"link mtu must be at least 1 byte, not {mtu}")
        self.delay = float(delay)
        self.rate_bps = rate_bps
        self.mtu = mtu
        self.on_frame = on_frame
        self.offload = offload
        # Per sending port: when its wire is free again, and the time of its last send.
        self._busy_until: dict[Side, float] = {"a": -math.inf, "b": -math.inf}
        self._last_send: dict[Side, float] = {"a": -math.inf, "b": -math.inf}
        # Per receiving port: a heap of (arrival, sequence, frame); the sequence number
        # keeps frames arriving at the same instant in the order they were queued.
        self._queues: dict[Side, list[tuple[float, int, bytes]]] = {"a": [], "b": []}
        self._seq = 0
        self._counters = dict.fromkeys(_COUNTERS, 0)

    # --- the Link interface ------------------------------------------------------------
    def send(self, side: Side, frame: bytes, now: float) -> None:
        """Put ``frame`` on the wire at port ``side`` at time ``now``.

        ``now`` may not go back in time for one port (``ValueError``).  A frame longer
        than ``mtu`` is dropped and counted in ``dropped_mtu``.
        """
        if not (self.offload and isinstance(frame, TxOffloadFrame)):
            frame = bytes(frame)
        arrival = self.transmit(side, frame, now)
        if arrival is not None:
            self.schedule(side, frame, arrival)

    def deliverable(self, side: Side, now: float) -> list[bytes]:
        """Pop every frame that has arrived at port ``side`` by ``now`` (inclusive), oldest first."""
        queue = self._queues[check_side(side)]
        out: list[bytes] = []
        while queue and queue[0][0] <= now:
            arrival, _, frame = heapq.heappop(queue)
            out.append(frame)
            self._counters["frames_delivered"] += 1
            self._counters["bytes_delivered"] += len(frame)
            if self.on_frame is not None:
                self.on_frame(side, frame, arrival)
        return out

    def next_arrival(self) -> float | None:
        """The arrival time of the next frame at either port, ``None`` when nothing is in flight."""
        heads = [q[0][0] for q in self._queues.values() if q]
        return min(heads) if heads else None

    # --- the two halves of send, for wrappers such as ImpairedLink --------------------
    def transmit(self, side: Side, frame: bytes, now: float) -> float | None:
        """Clock ``frame`` out of port ``side`` at ``now``; return when it reaches the far port.

        Checks the port, the time and the MTU, counts the frame, occupies the sender's
        wire for ``len(frame) * 8 / rate_bps`` seconds after any frame still being
        serialized, and returns the end of serialization plus ``delay``.  Returns
        ``None`` (counted in ``dropped_mtu``) when the frame exceeds the MTU.  The frame
        is not queued: :meth:`schedule` does that.
        """
        side = check_side(side)
        if not math.isfinite(now):
            raise ValueError(f"port {side!r} cannot send at {now}: not a finite time")
        if now < self._last_send[side]:
            raise ValueError(
                f"port {side!r} cannot send at {now}: it already sent at {self._last_send[side]}"
            )
        self._last_send[side] = now
        self._counters["frames_sent"] += 1
        self._counters["bytes_sent"] += len(frame)
        if self.mtu is not None and len(frame) > self.mtu and not getattr(frame, "gso_size", 0):
            self._counters["dropped_mtu"] += 1
            return None
        done = now
        if self.rate_bps is not None:
            done = max(now, self._busy_until[side]) + len(frame) * 8 / self.rate_bps
            self._busy_until[side] = done
        return done + self.delay

    def schedule(self, side: Side, frame: bytes, arrival: float) -> None:
        """Queue ``frame``, sent from port ``side``, for delivery at the other port at ``arrival``.

        Arrivals need not be in order: frames are delivered by arrival time, and frames
        with the same arrival time in the order they were scheduled.
        """
        heapq.heappush(self._queues[other_side(check_side(side))], (arrival, self._seq, frame))
        self._seq += 1

    # --- state ----------------------------------------------------------------------
    @property
    def counters(self) -> dict[str, int]:
        return dict(self._counters)

    @property
    def in_flight(self) -> int:
        """Frames queued and not yet delivered, both directions."""
        return sum(len(q) for q in self._queues.values())

    def __repr__(self) -> str:
        return (
            f"MemoryLink(delay={self.delay}, rate_bps={self.rate_bps}, mtu={self.mtu},"
            f" in_flight={self.in_flight})"
        )
