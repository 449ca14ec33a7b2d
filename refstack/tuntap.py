"""refstack on a real Linux TAP or TUN device, driven by a real-time event loop thread.

Two links attach a :class:`~refstack.stack.Stack` to a device opened on ``/dev/net/tun``
(``Documentation/networking/tuntap.rst``):

- :class:`TapLink` -- ``IFF_TAP|IFF_NO_PI``: every read is one Ethernet II frame, so the
  stack's interface is an Ethernet one with its own MAC and refstack answers ARP for its
  address (RFC 826) exactly as on a wire;
- :class:`TunLink` -- ``IFF_TUN|IFF_NO_PI``: every read is one bare IPv4 datagram (no
  packet-information header, no link layer), so the interface has no MAC and no ARP.

By default neither asks for offloads: the kernel hands over complete, checksummed,
MTU-sized frames, as a plain NIC without TSO/GRO would.  With ``offload=True``
(``TapLink.create(name, offload=True)``) the device is opened as QEMU and gVisor open
theirs: ``IFF_VNET_HDR``, ``TUNSETVNETHDRSZ`` 10 and ``TUNSETOFFLOAD``
``TUN_F_CSUM|TUN_F_TSO4``.  Every frame then travels behind a 10-byte
``struct virtio_net_hdr`` (virtio spec §5.1.6; :mod:`refstack.nic.vnet`):

- the kernel may hand over TCP super-segments of up to 64 KB (GSO, ``gso_size`` the
  segment size) and frames whose TCP/UDP checksum holds only the pseudo-header sum
  (``NEEDS_CSUM``): :meth:`DeviceLink.read_frames` pairs every frame with its
  :class:`~refstack.nic.offload.RxOffload`, which the driver hands to
  ``Stack.receive(frame, now, offload=...)``; a header that does not parse, or asks for
  an offload refstack did not offer (TCPv6 or UDP GSO, ECN), is counted in
  ``rx_bad_vnet`` and the frame dropped;
- :meth:`DeviceLink.attach` sets the interface's ``tx_csum_offload`` and ``tso``, so the
  stack may queue :class:`~refstack.nic.offload.TxOffloadFrame` super-segments with a
  partial checksum; :meth:`DeviceLink.write` puts the matching header before each frame
  (an all-zero one before a complete frame) and the kernel finishes and cuts them.

:func:`open_device` creates the device in the network namespace of the *calling thread*
(namespaces are per thread on Linux): a test that wants the kernel's end in a private
namespace calls it on a thread inside that namespace (``conformance.netns``); the
descriptor then works from any thread.  The device is not persistent: it goes away with
its last descriptor.

:class:`RealTimeDriver` is the real-time implementation of the runtime's
:class:`~refstack.runtime.Driver` (``now``, ``wait_until``).  Its event loop thread runs::

    sleep in select() on the device fd and a wake-up eventfd, until the stack's
        next_deadline() (no busy waiting)
    read every ready frame (up to ``batch``)            -- outside the lock
    under the lock: stack.receive(frame, now, offload=rx) for each (rx: the frame's
        RxOffload from an offloaded device, else None), then stack.poll(now) once
        (again while the TX ring came back full), then wake every waiter
    write every returned frame to the device, in order -- outside the lock

The stack is not thread-safe, so *every* call into it -- the loop's, the socket API's
and ``refstack stackdump``'s -- happens under one ``threading.RLock``, :attr:`lock`,
which is the :class:`~refstack.control.ControlEndpoint` lock convention (Onload's netif
lock; ``serve_control=True`` registers such an endpoint with this very lock).  The
socket layer (:mod:`refstack.socket`) takes no lock itself: code on the application
thread holds :attr:`lock` around each socket call, most simply through
:meth:`RealTimeDriver.socket`, whose sockets (:class:`LockedSocket`) do it for every
method.  A blocking call then sleeps in :meth:`~RealTimeDriver.wait_until` on a
``threading.Condition`` of that lock, which releases it entirely while asleep (the
kernel's ``sk_wait_event`` releasing the socket lock), so the loop thread can move the
frames that end the wait; the loop notifies the condition after every batch.

Waking the loop: when the application makes the stack send (``connect`` queues a SYN,
``send`` queues segments), the stack's ``next_deadline()`` moves to now while the loop
may be asleep until a later timer.  On leaving every locked call and on entering every
wait, the driver compares the two and, if the stack now wants the loop earlier, writes
the eventfd the loop selects on (at most once per sleep).

Use::

    link = TapLink.create("tap0")                 # on a thread inside the namespace
                                                  # (offload=True: TSO/GSO, checksum offload)
    stack = Stack(name="interop")
    link.attach(stack, "198.51.100.2", 24)
    with RealTimeDriver(stack, link, serve_control=True) as driver:
        srv = driver.socket()                     # AF_INET, SOCK_STREAM, under the lock
        srv.bind(("198.51.100.2", 7)); srv.listen()
        conn, peer = srv.accept()                 # blocks; the loop thread moves frames
        ready = driver.call(refstack.select.select, [conn], [], [], 1.0)
    link.close()

``driver.runtime`` is the :class:`~refstack.runtime.Runtime` the sockets live in;
anything else that touches the stack goes through ``driver.call(fn, ...)`` or
``with driver.locked() as stack:``.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import selectors
import struct
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Protocol

from . import socket as rsocket
from .clock import Clock, MonotonicClock
from .control import ControlEndpoint
from .nic.offload import TSO_MAX_DATAGRAM, RxOffload, TxOffloadFrame
from .nic.vnet import VNET_HDR_LEN, VnetHeader
from .runtime import Runtime

if TYPE_CHECKING:
    from .net.interface import Interface
    from .stack import Stack

__all__ = [
    "DeviceLink",
    "LockedSocket",
    "LoopError",
    "RealTimeDriver",
    "TapLink",
    "TunLink",
    "open_device",
]

# <linux/if_tun.h>
TUNSETIFF: Final = 0x400454CA
IFF_TUN: Final = 0x0001
IFF_TAP: Final = 0x0002
IFF_NO_PI: Final = 0x1000
IFF_VNET_HDR: Final = 0x4000
IFNAMSIZ: Final = 16
TUNSETOFFLOAD: Final = 0x400454D0  # _IOW('T', 208, unsigned int)
TUNSETVNETHDRSZ: Final = 0x400454D8  # _IOW('T', 216, int)
TUNSETVNETLE: Final = 0x400454DC  # _IOW('T', 220, int)
TUN_F_CSUM: Final = 0x01  # the reader takes frames with a partial checksum (NEEDS_CSUM)
TUN_F_TSO4: Final = 0x02  # ... and TCPv4 super-segments (GSO TCPV4; needs TUN_F_CSUM)
OFFLOADS: Final = TUN_F_CSUM | TUN_F_TSO4
"""What an offloaded link asks the kernel for (not TSO6, TSO_ECN, UFO or USO)."""

READ_SIZE: Final = VNET_HDR_LEN + 18 + TSO_MAX_DATAGRAM
"""Bytes asked for per read: the virtio-net header, an Ethernet header with an 802.1Q
tag and the largest IPv4 datagram (a 64 KB GSO super-segment, or a frame of any MTU a
TUN/TAP device allows).  A shorter buffer would make the kernel truncate the frame."""

DEFAULT_BATCH: Final = 512
"""Frames read per loop iteration before the stack is polled (bounds latency per batch)."""

_MIN_SLEEP: Final = 0.001
"""How long the loop sleeps when the stack keeps asking to be polled at once without doing
anything (a stalled timer): a bug, but one that must not make the loop spin."""


def open_device(name: str, *, tap: bool, vnet_hdr: bool = False) -> int:
    """Create (or attach to) TUN/TAP device ``name`` in the calling thread's namespace.

    ``TUNSETIFF`` with ``IFF_TAP`` (Ethernet frames) or ``IFF_TUN`` (bare IP), always
    ``IFF_NO_PI`` (tuntap.rst: "no packet information").  With ``vnet_hdr`` also
    ``IFF_VNET_HDR``, then ``TUNSETVNETHDRSZ`` to 10 (``sizeof(struct virtio_net_hdr)``,
    the kernel's default, set explicitly so that a device someone else configured cannot
    surprise us), ``TUNSETVNETLE`` on a big-endian host (:mod:`refstack.nic.vnet` is
    little-endian) and ``TUNSETOFFLOAD`` with ``TUN_F_CSUM|TUN_F_TSO4``: every read and
    write then starts with a virtio-net header.  Returns a non-blocking, close-on-exec
    descriptor; the device disappears when the last one is closed.
    """
    raw = name.encode()
    if not raw or len(raw) >= IFNAMSIZ:
        raise ValueError(f"device name {name!r} must be 1..{IFNAMSIZ - 1} bytes")
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        flags = (IFF_TAP if tap else IFF_TUN) | IFF_NO_PI | (IFF_VNET_HDR if vnet_hdr else 0)
        ifr = raw.ljust(IFNAMSIZ, b"\0") + struct.pack("=H", flags)
        fcntl.ioctl(fd, TUNSETIFF, ifr.ljust(40, b"\0"))
        if vnet_hdr:
            fcntl.ioctl(fd, TUNSETVNETHDRSZ, struct.pack("=i", VNET_HDR_LEN))
            if sys.byteorder == "big":
                fcntl.ioctl(fd, TUNSETVNETLE, struct.pack("=i", 1))
            fcntl.ioctl(fd, TUNSETOFFLOAD, OFFLOADS)
    except BaseException:
        os.close(fd)
        raise
    return fd


class DeviceLink:
    """A TUN/TAP descriptor seen as a link: whole frames in, whole frames out.

    Owns ``fd`` (closed by :meth:`close`).  ``rx_frames``/``tx_frames`` count what moved,
    ``tx_dropped`` the writes the device refused (its queue full: dropped as a NIC whose TX
    ring is full would, TCP retransmits).

    ``offload``: the device was opened with ``IFF_VNET_HDR`` and ``TUN_F_CSUM|TUN_F_TSO4``
    (see the module doc), so every read and write carries a virtio-net header.  Then
    ``rx_bad_vnet`` counts frames dropped for their header, ``rx_gso`` the TCP
    super-segments read (``gso_size`` > 0), ``rx_csum_valid`` the frames whose transport
    checksum the kernel vouched for (NEEDS_CSUM or DATA_VALID), ``rx_max_len`` the longest
    frame read; ``tx_gso`` and ``tx_csum_partial`` the super-segments and partial-checksum
    frames written.
    """

    ethernet: bool = False

    def __init__(self, fd: int, name: str, *, offload: bool = False) -> None:
        self.fd = fd
        self.name = name
        self.offload = offload
        self.rx_frames = 0
        self.tx_frames = 0
        self.tx_dropped = 0
        self.rx_bad_vnet = 0
        self.rx_gso = 0
        self.rx_csum_valid = 0
        self.rx_max_len = 0
        self.tx_gso = 0
        self.tx_csum_partial = 0
        os.set_blocking(fd, False)

    @classmethod
    def create(cls, name: str, *, offload: bool = False) -> DeviceLink:
        """Create device ``name`` in the calling thread's namespace (see :func:`open_device`),
        with the virtio-net offloads when ``offload``."""
        return cls(open_device(name, tap=cls.ethernet, vnet_hdr=offload), name, offload=offload)

    def read_batch(self, limit: int) -> list[bytes]:
        """Every frame ready now, at most ``limit``, oldest first (never blocks).

        Frames only: on an offloaded link they would lose what their virtio-net header
        says (a partial checksum, a super-segment's ``gso_size``), so there it raises
        :class:`TypeError`; use :meth:`read_frames`."""
        if self.offload:
            raise TypeError(f"{self!r} has offloads: read_frames() pairs each frame with its RxOffload")
        frames: list[bytes] = []
        read, fd = os.read, self.fd
        try:
            while len(frames) < limit:
                frames.append(read(fd, READ_SIZE))
        except BlockingIOError:
            pass
        self.rx_frames += len(frames)
        return frames

    def read_frames(self, limit: int) -> list[tuple[bytes, RxOffload | None]]:
        """Every frame ready now, at most ``limit`` reads, oldest first (never blocks), each
        with what the device says about it: its :class:`~refstack.nic.offload.RxOffload`
        on an offloaded link (the virtio-net header, parsed and stripped; a bad one is
        counted in ``rx_bad_vnet`` and the frame dropped), ``None`` on a plain one (then
        this is :meth:`read_batch`, which a wrapping link may override)."""
        if not self.offload:
            return [(frame, None) for frame in self.read_batch(limit)]
        frames: list[tuple[bytes, RxOffload | None]] = []
        read, fd, parse = os.read, self.fd, VnetHeader.parse
        reads = 0
        try:
            while reads < limit:
                data = read(fd, READ_SIZE)
                reads += 1
                try:
                    hdr, frame = parse(data)
                    rx = hdr.to_rx_offload()
                except ValueError:
                    self.rx_bad_vnet += 1
                    continue
                if rx.gso_size:
                    self.rx_gso += 1
                if rx.csum_valid:
                    self.rx_csum_valid += 1
                self.rx_max_len = max(self.rx_max_len, len(frame))
                frames.append((frame, rx))
        except BlockingIOError:
            pass
        self.rx_frames += len(frames)
        return frames

    def write(self, frame: bytes) -> None:
        """Send one frame to the kernel; on an offloaded link behind
        ``VnetHeader.for_tx(frame)`` (zero for a complete frame; NEEDS_CSUM, and TCPV4
        GSO for a super-segment, for a :class:`~refstack.nic.offload.TxOffloadFrame`)."""
        try:
            if self.offload:
                os.writev(self.fd, (VnetHeader.for_tx(frame).encode(), frame))
                if isinstance(frame, TxOffloadFrame):
                    self.tx_csum_partial += 1
                    if frame.gso_size:
                        self.tx_gso += 1
            else:
                os.write(self.fd, frame)
        except BlockingIOError:
            self.tx_dropped += 1
            return
        self.tx_frames += 1

    def attach(
        self,
        stack: Stack,
        address: str,
        prefix_len: int,
        *,
        mtu: int = 1500,
        mac: str | None = None,
    ) -> Interface:
        """Add this device to ``stack`` as interface :attr:`name` (Ethernet for a TAP); on an
        offloaded link the interface gets ``tx_csum_offload`` and ``tso``."""
        if self.ethernet:
            iface = stack.add_interface(self.name, address, prefix_len, mtu=mtu, mac=mac or DEFAULT_MAC)
        elif mac is not None:
            raise ValueError("a TUN device carries bare IP: it has no MAC address")
        else:
            iface = stack.add_interface(self.name, address, prefix_len, mtu=mtu)
        if self.offload:
            iface.tx_csum_offload = True
            iface.tso = True
        return iface

    def offload_counters(self) -> dict[str, int]:
        """The frame counters, offload ones included (for reports and assertions)."""
        return {
            name: getattr(self, name)
            for name in (
                "rx_frames",
                "tx_frames",
                "tx_dropped",
                "rx_bad_vnet",
                "rx_gso",
                "rx_csum_valid",
                "rx_max_len",
                "tx_gso",
                "tx_csum_partial",
            )
        }

    def close(self) -> None:
        """Close the descriptor (idempotent); a non-persistent device goes with it."""
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)

    def __repr__(self) -> str:
        extra = " offload" if self.offload else ""
        return f"<{type(self).__name__} {self.name} fd={self.fd}{extra}>"


DEFAULT_MAC: Final = "02:00:5e:10:00:02"
"""refstack's MAC on a TAP device: locally administered (bit 1 of the first octet)."""


class TapLink(DeviceLink):
    """A TAP device (``IFF_TAP|IFF_NO_PI``, ``|IFF_VNET_HDR`` with offloads): Ethernet II
    frames; the stack does ARP."""

    ethernet = True


class TunLink(DeviceLink):
    """A TUN device (``IFF_TUN|IFF_NO_PI``, ``|IFF_VNET_HDR`` with offloads): bare IPv4
    datagrams, no link layer."""

    ethernet = False


class Profiler(Protocol):
    """What the loop thread can run under (``cProfile.Profile``): per-thread on/off."""

    def enable(self) -> None: ...

    def disable(self) -> None: ...


class LoopError(RuntimeError):
    """The driver's event loop thread died; the cause is chained."""


class RealTimeDriver:
    """Real time and a device for a :class:`~refstack.runtime.Runtime` (see the module doc).

    ``lock``: the stack lock to share (a new ``RLock`` when not given); give the same one
    to a :class:`~refstack.control.ControlEndpoint`, or pass ``serve_control=True`` (served
    in ``control_directory``, default :func:`refstack.control.runtime_dir`) so that
    ``refstack stackdump|tcpdump`` can inspect the live stack from another shell.
    ``profiler``: run the loop thread under it (a ``cProfile.Profile``; see
    ``bench/tap_bulk.py --profile``).
    ``clock``: a monotonic clock (:class:`~refstack.clock.MonotonicClock` by default),
    never read ahead of the stack's own notion of time.  ``batch``: frames read per loop
    iteration.  Start with :meth:`start` (or ``with``), stop with :meth:`close`.
    """

    def __init__(
        self,
        stack: Stack,
        link: DeviceLink,
        *,
        lock: threading.RLock | None = None,
        clock: Clock | None = None,
        batch: int = DEFAULT_BATCH,
        serve_control: bool = False,
        control_directory: Path | None = None,
        profiler: Profiler | None = None,
    ) -> None:
        if batch < 1:
            raise ValueError(f"batch must be at least 1 frame, not {batch}")
        if link.name not in stack.interfaces:
            raise ValueError(f"attach {link!r} to the stack first (link.attach(stack, address, prefix))")
        self.stack = stack
        self.link = link
        self.lock = lock if lock is not None else threading.RLock()
        self._cond = threading.Condition(self.lock)
        self._clock: Clock = clock if clock is not None else MonotonicClock()
        self._offset = max(0.0, stack.now - self._clock.now())  # never hand the stack an earlier time
        self.batch = batch
        self._serve_control = serve_control
        self._control_directory = control_directory
        self._profiler = profiler
        self.control: ControlEndpoint | None = None
        self.runtime = Runtime(stack, self)
        self._wake_fd = -1
        self._wake_at = -math.inf  # when the loop next wakes by itself (under lock)
        self._kicked = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None
        # Loop statistics (read them under the lock).
        self.loops = 0
        self.wakeups = 0
        self.stalls = 0

    # --- the Driver protocol ---------------------------------------------------------------
    def now(self) -> float:
        """Seconds on the monotonic clock since the driver was made (rebased to the stack's)."""
        return self._clock.now() + self._offset

    def wait_until(self, condition: Callable[[], bool], timeout: float | None) -> bool:
        """Sleep until ``condition()`` holds (True) or ``timeout`` seconds pass (False).

        Takes :attr:`lock` (re-entrantly: the caller normally holds it already) and sleeps
        on its condition variable, which releases the lock in full, so the loop thread runs
        the stack meanwhile.  ``condition`` is only ever evaluated under the lock.  Raises
        :class:`LoopError` if the loop thread died or the driver was closed, rather than
        waiting for a stack nobody drives.
        """
        if timeout is not None and math.isinf(timeout) and timeout > 0:
            timeout = None
        if timeout is not None and not timeout >= 0:  # also rejects NaN
            raise ValueError(f"timeout must be None or a number of seconds >= 0, not {timeout}")
        with self._cond:
            self._kick()
            if condition():
                return True
            if timeout == 0:
                return False
            end = None if timeout is None else self._clock.now() + timeout
            while True:
                self._check_running()
                left = None if end is None else end - self._clock.now()
                if left is not None and left <= 0:
                    return bool(condition())
                self._cond.wait(left)
                if condition():
                    return True

    # --- application side ------------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self) -> Iterator[Stack]:
        """Hold the stack lock for a block of calls into the stack (socket calls included);
        on leaving, wake the loop if the block gave the stack something to send."""
        with self.lock:
            try:
                yield self.stack
            finally:
                self._kick()

    def call(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` under the stack lock (see :meth:`locked`)."""
        with self.locked():
            return fn(*args, **kwargs)

    def socket(
        self, family: int = rsocket.AF_INET, type: int = rsocket.SOCK_STREAM, proto: int = 0
    ) -> LockedSocket:
        """A :mod:`refstack.socket` socket on this driver's runtime whose every call holds
        the stack lock (``family``/``type`` default to AF_INET/SOCK_STREAM)."""
        with self.locked():
            sock = rsocket.socket(family, type, proto, runtime=self.runtime)
        return LockedSocket(sock, self)

    def _kick(self) -> None:
        """(Under the lock.)  Wake the loop if the stack wants polling before it would wake."""
        if self._kicked or self._wake_fd < 0:
            return
        deadline = self.stack.next_deadline()
        if deadline is not None and deadline < self._wake_at:
            self._kicked = True
            os.eventfd_write(self._wake_fd, 1)

    def _check_running(self) -> None:
        if self._failure is not None:
            raise LoopError(f"the {self.link.name} event loop died: {self._failure!r}") from self._failure
        if self._stop.is_set() or self._thread is None:
            raise LoopError(f"the {self.link.name} driver is not running (start() it, or it was closed)")

    # --- lifetime ----------------------------------------------------------------------------
    def start(self) -> RealTimeDriver:
        """Start the loop thread (and the control endpoint when asked); idempotent."""
        if self._thread is not None:
            return self
        self._wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        if self._serve_control:
            self.control = ControlEndpoint(
                self.stack, lock=self.lock, directory=self._control_directory
            ).start()
        self._thread = threading.Thread(target=self._run, name=f"refstack-{self.link.name}", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop the loop thread, the control endpoint and wake every waiter (idempotent).

        The link stays open: whoever created it closes it."""
        self._stop.set()
        if self._wake_fd >= 0:
            with contextlib.suppress(OSError):
                os.eventfd_write(self._wake_fd, 1)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5.0)
        with self._cond:
            self._cond.notify_all()
        if self.control is not None:
            self.control.close()
            self.control = None
        fd, self._wake_fd = self._wake_fd, -1
        if fd >= 0:
            os.close(fd)

    def __enter__(self) -> RealTimeDriver:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def failure(self) -> BaseException | None:
        """What killed the loop thread, if something did."""
        return self._failure

    # --- the loop ----------------------------------------------------------------------------
    def _run(self) -> None:
        profiler = self._profiler
        try:
            if profiler is not None:
                profiler.enable()  # profiles this thread only
            try:
                self._loop()
            finally:
                if profiler is not None:
                    profiler.disable()
        except BaseException as exc:  # handed to every waiter (LoopError)
            self._failure = exc
        finally:
            with self._cond:
                self._wake_at = -math.inf
                self._cond.notify_all()

    def _loop(self) -> None:
        stack, link, name = self.stack, self.link, self.link.name
        cond, clock, offset = self._cond, self._clock, self._offset
        wake_fd, batch = self._wake_fd, self.batch
        txq = stack.onload.txq_size
        selector = selectors.DefaultSelector()
        selector.register(link.fd, selectors.EVENT_READ)
        selector.register(wake_fd, selectors.EVENT_READ)
        try:
            timeout: float | None = 0.0
            while not self._stop.is_set():
                if timeout is None or timeout > 0:
                    for key, _ in selector.select(timeout):
                        if key.fd == wake_fd:
                            with contextlib.suppress(BlockingIOError):
                                os.eventfd_read(wake_fd)
                            self.wakeups += 1
                    if self._stop.is_set():
                        return
                frames = link.read_frames(batch)
                out: list[bytes] = []
                with cond:
                    self.loops += 1
                    self._kicked = False
                    now = clock.now() + offset
                    for frame, rx in frames:
                        stack.receive(frame, now, offload=rx)
                    while True:  # the TX ring hands out txq frames per poll: drain it
                        sent = stack.poll(now, name)
                        out += sent
                        if len(sent) < txq:
                            break
                    deadline = stack.next_deadline()
                    if deadline is None:
                        timeout = None
                    else:
                        timeout = max(0.0, deadline - now)
                        if timeout == 0 and not frames and not out:
                            self.stalls += 1  # due now, yet poll did nothing: do not spin
                            timeout = _MIN_SLEEP
                    self._wake_at = math.inf if timeout is None else now + timeout
                    cond.notify_all()
                for frame in out:
                    link.write(frame)
                if len(frames) == batch:
                    timeout = 0.0  # more may be waiting: read again before sleeping
        finally:
            selector.close()

    def __repr__(self) -> str:
        state = "running" if self._thread is not None and not self._stop.is_set() else "stopped"
        return f"<RealTimeDriver {self.stack.name} on {self.link.name} {state}>"


class LockedSocket:
    """A :class:`refstack.socket.socket` whose every method runs under the driver's lock.

    Attribute access is forwarded; methods are wrapped in :meth:`RealTimeDriver.locked`,
    and sockets they return (``accept``, ``dup``) come back wrapped too.  ``fileno()`` is
    the refstack descriptor (meaningful to :mod:`refstack.select` through
    :meth:`RealTimeDriver.call`, not to the kernel).
    """

    __slots__ = ("driver", "sock")

    def __init__(self, sock: Any, driver: RealTimeDriver) -> None:
        self.sock = sock
        self.driver = driver

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.sock, name)
        if not callable(attr):
            return attr
        driver = self.driver
        wrap = self._wrap

        def locked_call(*args: Any, **kwargs: Any) -> Any:
            with driver.locked():
                return wrap(attr(*args, **kwargs))

        locked_call.__name__ = name
        return locked_call

    def _wrap(self, value: Any) -> Any:
        if isinstance(value, rsocket.socket):
            return LockedSocket(value, self.driver)
        if isinstance(value, tuple) and value and isinstance(value[0], rsocket.socket):
            return (LockedSocket(value[0], self.driver), *value[1:])
        return value

    def __enter__(self) -> LockedSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        with self.driver.locked():
            self.sock.close()

    def __repr__(self) -> str:
        with self.driver.locked():
            return f"<LockedSocket {self.sock!r}>"
