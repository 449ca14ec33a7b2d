"""Real traffic between refstack and the Linux kernel: one private namespace per test.

Each test gets an :class:`Interop`: a fresh anonymous network namespace
(:class:`conformance.netns.NetNamespace`, the Linux target's technique: created by
``unshare`` on a throwaway thread, held by one fd, so it dies with this process however
the process dies) holding a TAP device (``tap0``, or a TUN device ``tun0`` for the tests
that ask for one) whose kernel end is 198.51.100.1/24, and refstack attached to the
other end at 198.51.100.2 through :class:`refstack.tuntap.TapLink` and a
:class:`refstack.tuntap.RealTimeDriver`.  Kernel sockets are created on a thread inside
the namespace (:meth:`Interop.kernel_socket`) and then used from any thread.

Every frame on the device is written to a pcap (snap length 256) in the test's tmp dir;
a failing test prints its path.  Nothing touches the host's interfaces or routes; the
session checks that ``ip netns list`` and ``ip -o link`` are the same at its end as at
its start.  Without namespaces or TUN/TAP the tests skip with the reason.

Options: ``--long`` (or ``INTEROP_BULK_MB``) sizes the bulk transfers (10 MB by default,
100 MB with ``--long``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dpkt
import pytest

from conformance import netns
from refstack.stack import Stack
from refstack.tuntap import DeviceLink, LockedSocket, RealTimeDriver, TapLink, TunLink

KERNEL_IP = "198.51.100.1"
REFSTACK_IP = "198.51.100.2"
NETMASK = "255.255.255.0"
PREFIX_LEN = 24
SNAPLEN = 256
ETH_P_IP = 0x0800

_results: list[str] = []  # throughput lines for the terminal summary


def pytest_addoption(parser: pytest.Parser) -> None:
    with contextlib.suppress(ValueError):  # tests/conftest.py may have added it already
        parser.addoption("--long", action="store_true", help="run the opt-in long tests")


def bulk_bytes(config: pytest.Config) -> int:
    """The bulk transfer size: ``INTEROP_BULK_MB``, else 100 MB with ``--long``, else 10 MB."""
    explicit = os.environ.get("INTEROP_BULK_MB")
    if explicit:
        return int(float(explicit) * 1_000_000)
    return (100 if config.getoption("--long") else 10) * 1_000_000


def report(line: str) -> None:
    """A line for the end-of-run summary (measured throughputs)."""
    _results.append(line)
    print(line)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _results:
        terminalreporter.section("interop measurements")
        for line in _results:
            terminalreporter.write_line(line)


# --- availability ------------------------------------------------------------------------------
_available: tuple[bool, str] | None = None


def _probe() -> tuple[bool, str]:
    why = netns.device_unavailable(lambda: TapLink.create("tap0").close(), "a TAP device")
    return not why, why


def available() -> tuple[bool, str]:
    global _available  # noqa: PLW0603 -- probed once per process
    if _available is None:
        _available = _probe()
    return _available


# --- the host must be left as it was ------------------------------------------------------------
def _host_state() -> tuple[str, str] | None:
    ip = shutil.which("ip")
    if ip is None:
        return None
    netns_list = subprocess.run([ip, "netns", "list"], capture_output=True, text=True, check=False).stdout
    links = subprocess.run([ip, "-o", "link"], capture_output=True, text=True, check=False).stdout
    # Counters and the operational state of the host's links may change; names may not.
    names = "\n".join(sorted(line.split(":")[1].strip() for line in links.splitlines() if ":" in line))
    return netns_list, names


@pytest.fixture(scope="session", autouse=True)
def host_untouched() -> Iterator[None]:
    """Fail the session if ``ip netns list`` or the host's links differ at its end."""
    before = _host_state()
    yield
    after = _host_state()
    assert after == before, f"the host changed: before {before!r}, after {after!r}"


# --- pcap of the device ----------------------------------------------------------------------------
@dataclass
class Capture:
    """Every frame refstack received on or sent to the device, as a pcap, plus a few
    kinds of frame kept in memory for assertions (TCP RSTs, IGMP messages)."""

    path: Path
    ethernet: bool
    writer: Any = None
    file: Any = None
    frames: int = 0
    rsts: list[tuple[str, bytes]] = field(default_factory=list)
    igmp: list[tuple[str, bytes]] = field(default_factory=list)
    fragments: dict[str, int] = field(default_factory=lambda: {"rx": 0, "tx": 0})

    def open(self) -> None:
        self.file = self.path.open("wb")
        linktype = dpkt.pcap.DLT_EN10MB if self.ethernet else 101  # LINKTYPE_RAW
        self.writer = dpkt.pcap.Writer(self.file, snaplen=SNAPLEN, linktype=linktype)

    def tap(self, direction: str, interface: str, now: float, frame: bytes) -> None:
        """A :attr:`refstack.stack.Stack.taps` hook (runs on the loop thread, under the lock)."""
        self.frames += 1
        self.writer.writepkt(bytes(frame[:SNAPLEN]), time.time())
        ip = frame
        if self.ethernet:
            if len(frame) < 14 or struct.unpack_from("!H", frame, 12)[0] != ETH_P_IP:
                return
            ip = frame[14:]
        if len(ip) < 20 or ip[0] >> 4 != 4:
            return
        ihl = (ip[0] & 0x0F) * 4
        proto = ip[9]
        if struct.unpack_from("!H", ip, 6)[0] & 0x3FFF:  # MF or a fragment offset
            self.fragments[direction] += 1
            return
        if proto == 2:
            self.igmp.append((direction, bytes(ip)))
        elif proto == 6 and len(ip) >= ihl + 14 and ip[ihl + 13] & 0x04:
            self.rsts.append((direction, bytes(ip)))

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


# --- one test's world -------------------------------------------------------------------------------
@dataclass
class Interop:
    """A namespace with the kernel at 198.51.100.1, refstack at 198.51.100.2 on the device."""

    ns: netns.NetNamespace
    link: DeviceLink
    stack: Stack
    driver: RealTimeDriver
    capture: Capture
    config: pytest.Config
    kernel_sockets: list[socket.socket] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)

    @property
    def pcap(self) -> Path:
        return self.capture.path

    def kernel_socket(self, family: int = socket.AF_INET, kind: int = socket.SOCK_STREAM) -> socket.socket:
        """A kernel socket created inside the namespace (usable from any thread)."""
        sock = self.ns.run(lambda: socket.socket(family, kind), "interop-socket")
        self.kernel_sockets.append(sock)
        return sock

    def socket(self, family: int = socket.AF_INET, kind: int = socket.SOCK_STREAM) -> LockedSocket:
        """A refstack socket whose calls hold the stack lock."""
        return self.driver.socket(family, kind)

    def thread(self, target: Callable[[], None], name: str) -> Background:
        """Run ``target`` on a background thread; :meth:`Background.join` re-raises its error."""
        bg = Background(target, name)
        self.threads.append(bg.thread)
        return bg

    def counters(self) -> dict[str, int]:
        with self.driver.locked() as stack:
            return dict(stack.counters)


class Background:
    """A thread whose exception is re-raised by :meth:`join`."""

    def __init__(self, target: Callable[[], None], name: str) -> None:
        self.error: BaseException | None = None

        def run() -> None:
            try:
                target()
            except BaseException as exc:
                self.error = exc

        self.thread = threading.Thread(target=run, name=name, daemon=True)
        self.thread.start()

    def join(self, timeout: float = 60.0) -> None:
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise TimeoutError(f"thread {self.thread.name} still running after {timeout} s")
        if self.error is not None:
            raise self.error


def _setup_inside(link_cls: type[DeviceLink], name: str, offload: bool = False) -> DeviceLink:
    """(On a thread inside the namespace.)  The device, up, 198.51.100.1/24; lo up."""
    link = link_cls.create(name, offload=offload)
    try:
        with contextlib.suppress(OSError):  # no IPv6 chatter on the device
            Path(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6").write_text("1")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as ctl:
            netns.set_link_up(ctl, name)
            netns.configure_interface(ctl, name, KERNEL_IP, NETMASK)
            netns.set_link_up(ctl, "lo")
    except BaseException:
        link.close()
        raise
    return link


def open_interop(
    tmp_path: Path,
    config: pytest.Config,
    *,
    kind: str = "tap",
    name: str = "refstack",
    control_dir: Path | None = None,
    wrap_link: Callable[[DeviceLink], DeviceLink] | None = None,
    offload: bool = False,
) -> Interop:
    """Build one test's namespace, device, stack and driver (close with :func:`close_interop`);
    with ``control_dir`` the stack is served there for ``refstack stackdump``; with
    ``wrap_link`` refstack uses ``wrap_link(device)`` instead of the device (which the
    wrapper then owns: e.g. :class:`refstack.impairment_device.ImpairedDevice`); with
    ``offload`` the device carries virtio-net offloads (``DeviceLink.create(offload=True)``)."""
    ok, why = available()
    if not ok:
        pytest.skip(why)
    ns = netns.NetNamespace()
    link: DeviceLink | None = None
    try:
        link_cls: type[DeviceLink] = TapLink if kind == "tap" else TunLink
        dev = "tap0" if kind == "tap" else "tun0"
        link = ns.run(lambda: _setup_inside(link_cls, dev, offload), "interop-setup")
        if wrap_link is not None:
            link = wrap_link(link)
        stack = Stack(name=name, seed=8)
        link.attach(stack, REFSTACK_IP, PREFIX_LEN)
        capture = Capture(tmp_path / f"{dev}.pcap", link.ethernet)
        capture.open()
        stack.taps.append(capture.tap)
        driver = RealTimeDriver(
            stack, link, serve_control=control_dir is not None, control_directory=control_dir
        ).start()
    except BaseException:
        if link is not None:
            link.close()
        ns.close()
        raise
    return Interop(ns, link, stack, driver, capture, config)


def close_interop(world: Interop) -> None:
    """Stop the driver, close every socket and the device, abort kernel orphans, drop the
    namespace.  Always runs, whatever the test did."""
    try:
        for sock in world.kernel_sockets:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked on it
            with contextlib.suppress(OSError):
                sock.close()
        world.driver.close()  # wakes refstack callers blocked in wait_until (LoopError)
        for thread in world.threads:
            thread.join(5.0)
        with contextlib.suppress(Exception):
            world.ns.run(netns.destroy_sockets, "interop-teardown")
    finally:
        world.link.close()
        world.capture.close()
        world.ns.join(5.0)
        world.ns.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    rep = outcome.get_result()
    pcap = getattr(item, "interop_pcap", None)
    if rep.failed and pcap is not None:
        rep.sections.append(("interop pcap", f"pcap of the device's traffic: {pcap}"))
        print(f"\n[interop] {item.nodeid} failed; pcap of the device's traffic: {pcap}")


@pytest.fixture
def interop(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Interop]:
    """TAP (Ethernet, ARP) between the kernel in a private namespace and refstack."""
    kind = getattr(request, "param", "tap")
    world = open_interop(tmp_path, request.config, kind=kind)
    request.node.interop_pcap = world.pcap
    try:
        yield world
    finally:
        close_interop(world)
