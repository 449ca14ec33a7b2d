"""The :class:`~refstack.impairment.Impairment` model in real time, on a TUN/TAP device.

:class:`ImpairedDevice` wraps a :class:`~refstack.tuntap.DeviceLink` and stands in for it
under a :class:`~refstack.tuntap.RealTimeDriver`: every frame refstack reads from the
device (``rx``) and every frame it writes to it (``tx``) goes through the impairment
first, on refstack's side of the link only.  The kernel at the other end sees a lossy,
reordering, duplicating, corrupting wire; nothing is configured in the kernel (no netem).

Per frame and direction, the same decisions as :class:`~refstack.impairment.ImpairedLink`,
from the same six uniform draws in the same order (loss, duplicate, corrupt, bit,
reorder, jitter), so the fate of the n-th frame in one direction depends only on the
seed and n (each direction has its own stream, ``f"{seed}:rx"`` / ``f"{seed}:tx"``):

- **loss**: the frame is dropped (``dropped``);
- **duplicate**: an intact copy follows right behind it (``duplicated``);
- **corrupt**: one bit is flipped (``corrupted``), uniform over the bits of the IPv4
  payload when the frame carries one (the TCP segment: its checksum covers every one of
  those bits, so the receiver must drop the frame on its TCP checksum), else uniform over
  the whole frame (ARP).  The duplicate, if any, stays intact;
- **rate_bps**: a first-in first-out bottleneck (``None``: none);
- **delay + jitter, reorder**: the frame is held ``delay`` plus up to ``jitter`` seconds,
  and ``reorder_delay`` more when reordered (``reordered``), so that later frames
  overtake it.  Frames wait in a heap per direction ordered by due time, then by arrival.

Real time without another thread: the descriptor the driver selects on (:attr:`fd`) is
an epoll instance holding the device and a ``timerfd`` armed for the earliest held frame,
so the driver's loop wakes when the device is readable *or* a held frame falls due.
Every :meth:`read_batch` (the loop calls it on every iteration) reads the device, sends
the frames through the impairment, hands the stack the received frames now due and
writes the sent frames now due to the device.  :meth:`write` impairs and queues (or
writes at once when nothing is held and the frame's latency is zero).  Both run on the
loop thread only, so nothing here takes a lock.

``wire``: an optional hook ``wire(direction, interface, now, frame)`` (the
:attr:`refstack.stack.Stack.taps` signature) called with every frame as it leaves or
reaches the device, i.e. what the kernel sent and what it was actually given: a pcap of
the far side of the impairment.
"""

from __future__ import annotations

import ctypes
import heapq
import math
import os
import random
import select
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from .impairment import Impairment, draw_fate, flip_bit
from .tuntap import DeviceLink

if TYPE_CHECKING:
    from .net.interface import Interface
    from .stack import Stack

__all__ = ["DirectionCounters", "ImpairedDevice"]

_CLOCK_MONOTONIC: Final = 1
_TFD_TIMER_ABSTIME: Final = 1
_ETH_P_IP: Final = 0x0800


class _Timespec(ctypes.Structure):
    _fields_ = (("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long))


class _Itimerspec(ctypes.Structure):
    _fields_ = (("it_interval", _Timespec), ("it_value", _Timespec))


_libc = ctypes.CDLL(None, use_errno=True)


def _timerfd_create() -> int:
    fd = int(_libc.timerfd_create(_CLOCK_MONOTONIC, os.O_NONBLOCK | os.O_CLOEXEC))
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"timerfd_create: {os.strerror(err)}")
    return fd


def _timerfd_set(fd: int, when: float | None) -> None:
    """Arm ``fd`` to expire at ``when`` on CLOCK_MONOTONIC (``time.monotonic()``), or disarm."""
    spec = _Itimerspec()
    if when is not None:
        # A zero it_value disarms: anything at or before the epoch means "now" (1 ns).
        ns = max(1, math.ceil(when * 1e9))
        spec.it_value.tv_sec, spec.it_value.tv_nsec = divmod(ns, 1_000_000_000)
    if _libc.timerfd_settime(fd, _TFD_TIMER_ABSTIME, ctypes.byref(spec), None) < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"timerfd_settime: {os.strerror(err)}")


@dataclass
class DirectionCounters:
    """What the impairment did to one direction's frames."""

    frames: int = 0  # frames that entered the impairment
    dropped: int = 0
    duplicated: int = 0
    corrupted: int = 0
    reordered: int = 0
    delivered: int = 0  # frames that left it (duplicates included)
    corrupted_ipv4: int = 0  # corruptions inside an IPv4 payload
    corrupted_tcp: int = 0  # ... of a TCP segment
    corrupted_tcp_doff: int = 0  # ... that hit its data offset (may be dropped as malformed)

    def as_dict(self) -> dict[str, int]:
        return {
            "frames": self.frames,
            "dropped": self.dropped,
            "duplicated": self.duplicated,
            "corrupted": self.corrupted,
            "reordered": self.reordered,
            "delivered": self.delivered,
            "corrupted_tcp": self.corrupted_tcp,
        }


@dataclass
class _Stream:
    """One direction: its config, its random stream, its bottleneck and its held frames."""

    config: Impairment
    name: str
    rng: random.Random = field(init=False)
    counters: DirectionCounters = field(default_factory=DirectionCounters)
    held: list[tuple[float, int, bytes]] = field(default_factory=list)
    busy_until: float = -math.inf

    def __post_init__(self) -> None:
        self.rng = random.Random(f"{self.config.seed}:{self.name}")


class ImpairedDevice(DeviceLink):
    """``inner`` seen through ``rx`` (frames refstack reads) and ``tx`` (frames it writes)
    impairments; ``tx`` defaults to ``rx``'s config (each with its own random stream).

    Use it wherever the device link goes (``attach``, ``RealTimeDriver``); :meth:`close`
    closes ``inner`` too.  ``counters`` holds a :class:`DirectionCounters` per direction.
    """

    def __init__(
        self,
        inner: DeviceLink,
        rx: Impairment,
        tx: Impairment | None = None,
        *,
        wire: Callable[[str, str, float, bytes], None] | None = None,
    ) -> None:
        self.inner = inner
        self.ethernet = inner.ethernet
        self.wire = wire
        self._streams = {"rx": _Stream(rx, "rx"), "tx": _Stream(rx if tx is None else tx, "tx")}
        self._seq = 0
        self._armed = math.inf  # when the timer is set to expire (inf: disarmed)
        self._timer = _timerfd_create()
        self._epoll = select.epoll()  # close-on-exec
        try:
            self._epoll.register(inner.fd, select.EPOLLIN)
            self._epoll.register(self._timer, select.EPOLLIN)
        except BaseException:
            self._epoll.close()
            os.close(self._timer)
            raise
        super().__init__(self._epoll.fileno(), inner.name)

    @property
    def counters(self) -> dict[str, DirectionCounters]:
        return {name: s.counters for name, s in self._streams.items()}

    def config(self, direction: str) -> Impairment:
        return self._streams[direction].config

    @property
    def held(self) -> int:
        """Frames held back in either direction right now."""
        return sum(len(s.held) for s in self._streams.values())

    # --- the link interface the driver uses -----------------------------------------------
    def read_batch(self, limit: int) -> list[bytes]:
        """Frames from the device through the rx impairment, those due now, in due order;
        also writes the tx frames now due."""
        if self._armed != math.inf:
            try:
                os.read(self._timer, 8)  # the expiration count; clears readiness
            except BlockingIOError:
                pass
            else:
                self._armed = math.inf
        now = time.monotonic()
        rx = self._streams["rx"]
        for frame in self.inner.read_batch(limit):
            if self.wire is not None:
                self.wire("rx", self.name, now, frame)
            self._impair(rx, frame, now)
        now = time.monotonic()
        self._flush_tx(now)
        out: list[bytes] = []
        held = rx.held
        while held and held[0][0] <= now:
            out.append(heapq.heappop(held)[2])
        rx.counters.delivered += len(out)
        self.rx_frames += len(out)
        self._arm()
        return out

    def write(self, frame: bytes) -> None:
        """Send one frame to the kernel through the tx impairment."""
        now = time.monotonic()
        tx = self._streams["tx"]
        self._impair(tx, bytes(frame), now)
        self._flush_tx(now)
        self._arm()

    def attach(
        self,
        stack: Stack,
        address: str,
        prefix_len: int,
        *,
        mtu: int = 1500,
        mac: str | None = None,
    ) -> Interface:
        return self.inner.attach(stack, address, prefix_len, mtu=mtu, mac=mac)

    def close(self) -> None:
        """Close the epoll instance, the timer and the device (idempotent); held frames go."""
        if self.fd >= 0:
            self.fd = -1
            self._epoll.close()
            os.close(self._timer)
            for s in self._streams.values():
                s.held.clear()
        self.inner.close()

    # --- the impairment ----------------------------------------------------------------------
    def _impair(self, s: _Stream, frame: bytes, now: float) -> None:
        c = s.counters
        c.frames += 1
        fate = draw_fate(s.config, s.rng)  # the draws of ImpairedLink, in its order
        if fate.lost:
            c.dropped += 1
            return
        copy = frame if fate.duplicated else None
        if fate.corrupt_at is not None and frame:
            frame = self._corrupt(frame, fate.corrupt_at, c)
        latency = fate.latency
        if fate.reordered:
            c.reordered += 1
        self._hold(s, frame, now + latency)
        if copy is not None:
            c.duplicated += 1
            self._hold(s, copy, now + latency)

    def _corrupt(self, frame: bytes, u_bit: float, c: DirectionCounters) -> bytes:
        """Flip one bit: in the IPv4 payload if there is one, else anywhere in the frame."""
        c.corrupted += 1
        start, end, proto = self._ipv4_payload(frame)
        if end <= start:
            return flip_bit(frame, int(u_bit * len(frame) * 8))
        bit = start * 8 + int(u_bit * (end - start) * 8)
        c.corrupted_ipv4 += 1
        if proto == 6:
            c.corrupted_tcp += 1
            if bit // 8 == start + 12 and bit % 8 < 4:  # the data offset nibble
                c.corrupted_tcp_doff += 1
        return flip_bit(frame, bit)

    def _ipv4_payload(self, frame: bytes) -> tuple[int, int, int]:
        """(start, end, protocol) of the IPv4 payload in ``frame``; (0, 0, -1) if none."""
        ip = 0
        if self.ethernet:
            if len(frame) < 14 or struct.unpack_from("!H", frame, 12)[0] != _ETH_P_IP:
                return 0, 0, -1
            ip = 14
        if len(frame) < ip + 20 or frame[ip] >> 4 != 4:
            return 0, 0, -1
        ihl = (frame[ip] & 0x0F) * 4
        total = struct.unpack_from("!H", frame, ip + 2)[0]
        return ip + ihl, min(len(frame), ip + total), frame[ip + 9]

    def _hold(self, s: _Stream, frame: bytes, due: float) -> None:
        rate = s.config.rate_bps
        if rate is not None:
            s.busy_until = due = max(due, s.busy_until) + len(frame) * 8 / rate
        self._seq += 1
        heapq.heappush(s.held, (due, self._seq, frame))

    def _flush_tx(self, now: float) -> None:
        tx = self._streams["tx"]
        held, inner, wire = tx.held, self.inner, self.wire
        while held and held[0][0] <= now:
            frame = heapq.heappop(held)[2]
            if wire is not None:
                wire("tx", self.name, now, frame)
            inner.write(frame)
            tx.counters.delivered += 1
            self.tx_frames += 1
        self.tx_dropped = inner.tx_dropped

    def _arm(self) -> None:
        """Set the timer for the earliest held frame (only when that is earlier than armed)."""
        due = min((s.held[0][0] for s in self._streams.values() if s.held), default=math.inf)
        if due < self._armed:
            _timerfd_set(self._timer, due)
            self._armed = due
