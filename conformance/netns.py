"""Anonymous network namespaces held by threads and file descriptors of this process.

A :class:`NetNamespace` is created with ``unshare(CLONE_NEWNET)`` in a throwaway
thread and is then referenced only by

- one file descriptor on ``/proc/self/task/<tid>/ns/net`` (an nsfs file), and
- the threads started with :meth:`NetNamespace.start_thread`, which ``setns`` into it
  before running anything else,

plus whatever sockets and devices are created inside it.  It is never named, never
bind-mounted under ``/var/run/netns`` and never pinned by a child process that
outlives us (the Linux target runs shell commands under ``PR_SET_PDEATHSIG`` in a PID
namespace of their own), so when this process dies -- however it dies, ``SIGKILL``
included -- no task or file refers to it any more and the kernel frees it together
with every device in it (a non-persistent TUN device goes with its last fd).  Nothing
can leak and no reaper is needed.

One kernel-internal delay remains: a TCP socket closed with data still unacknowledged
becomes an *orphan* that keeps its namespace's ``struct net`` alive until it gives up
(``tcp_orphan_retries``: measured ~100 s here).  It is invisible from user space (no
inode in /proc, no device).  ``LinuxSession.close`` avoids it by resetting every socket
(SO_LINGER 0) and aborting what is left with :func:`destroy_sockets`; only after a
SIGKILL can the kernel's own graceful close of the dead process's sockets leave some.

Namespaces are per *thread* on Linux: ``unshare``/``setns`` move only the calling
thread, and a thread inherits the namespace of the thread that created it.  So code
that must run inside (creating sockets or devices, writing ``/proc/sys/net``, forking
a shell) runs on an in-namespace thread; anything done on an already-open descriptor
(a socket, the TUN fd) works from any thread.

The module also holds the ioctl-level network configuration used inside a namespace
(:func:`configure_interface`, :func:`add_route`, :func:`set_link_up`) and per-namespace
sysctl access (:func:`sysctl_path`, :func:`is_namespace_scoped`).  Python 3.11 has no
``os.unshare``/``os.setns``; they are called through ctypes.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import ipaddress
import os
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import TypeVar

__all__ = [
    "CLONE_NEWNET",
    "NetNamespace",
    "NetnsError",
    "add_route",
    "configure_interface",
    "current_netns_inode",
    "destroy_sockets",
    "device_unavailable",
    "is_namespace_scoped",
    "set_link_up",
    "set_mtu",
    "sysctl_path",
    "task_netns_inodes",
    "unshare_net",
]

T = TypeVar("T")

CLONE_NEWNET = 0x40000000

# <linux/sockios.h>, <net/if.h>, <net/route.h>
SIOCADDRT = 0x890B
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
SIOCSIFADDR = 0x8916
SIOCSIFNETMASK = 0x891C
SIOCSIFMTU = 0x8922
IFF_UP = 0x1
RTF_UP = 0x1
RTF_GATEWAY = 0x2
IFNAMSIZ = 16


class NetnsError(OSError):
    """A namespace operation failed; ``errno`` and the step are in the message."""


_libc: ctypes.CDLL | None = None


def _c() -> ctypes.CDLL:
    global _libc  # noqa: PLW0603 -- one lazily loaded libc handle
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    return _libc


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise NetnsError(err, f"{what}: {os.strerror(err)}")


def unshare_net() -> None:
    """Move the *calling thread* into a new, empty network namespace."""
    _check(_c().unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")


def _setns_net(fd: int) -> None:
    _check(_c().setns(fd, CLONE_NEWNET), "setns(CLONE_NEWNET)")


def _thread_ns_path() -> str:
    return f"/proc/self/task/{threading.get_native_id()}/ns/net"


def current_netns_inode() -> int:
    """The inode of the calling thread's network namespace."""
    return os.stat(_thread_ns_path()).st_ino


def task_netns_inodes() -> set[int]:
    """Inodes of every network namespace some task or open file on this machine refers
    to (``/proc/*/task/*/ns/net`` plus nsfs links in ``/proc/*/fd``)."""
    found: set[int] = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            with contextlib.suppress(OSError):  # the task may be gone already
                found.add(os.stat(f"/proc/{pid}/task/{tid}/ns/net").st_ino)
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("net:["):
                found.add(int(link[5:-1]))
    return found


class NetNamespace:
    """An anonymous network namespace, alive while this object (or a thread started in
    it) is.  ``close`` joins the threads it started and drops the descriptor; the
    kernel frees the namespace once the last socket and device in it are gone too."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._fd = -1
        box: list[int | BaseException] = []

        def create() -> None:
            try:
                unshare_net()
                box.append(os.open(_thread_ns_path(), os.O_RDONLY | os.O_CLOEXEC))
            except BaseException as exc:  # handed to the creating thread
                box.append(exc)

        # The creating thread exits at once; from then on the fd holds the namespace.
        creator = threading.Thread(target=create, name="netns-create", daemon=True)
        creator.start()
        creator.join()
        result = box[0] if box else NetnsError(errno.EIO, "namespace creation thread died")
        if isinstance(result, BaseException):
            raise result
        self._fd = result
        self.inode = os.fstat(self._fd).st_ino

    @property
    def closed(self) -> bool:
        return self._fd < 0

    @property
    def fd(self) -> int:
        """The nsfs descriptor (``/proc/<pid>/fd/<fd>`` names the namespace)."""
        if self._fd < 0:
            raise NetnsError(errno.EBADF, "namespace is closed")
        return self._fd

    def start_thread(self, target: Callable[[], None], name: str) -> threading.Thread:
        """Start a daemon thread that joins this namespace and then runs ``target``.
        Returns once the thread is inside; raises if it could not get there."""
        fd = self.fd
        entered = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            try:
                _setns_net(fd)
            except BaseException as exc:
                failure.append(exc)
                entered.set()
                return
            entered.set()
            target()

        thread = threading.Thread(target=run, name=name, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()
        entered.wait()
        if failure:
            thread.join()
            raise failure[0]
        return thread

    def run(self, fn: Callable[[], T], name: str = "netns-run") -> T:
        """Run ``fn`` on a fresh thread inside the namespace and return its result."""
        box: list[tuple[bool, object]] = []

        def body() -> None:
            try:
                box.append((True, fn()))
            except BaseException as exc:
                box.append((False, exc))

        self.start_thread(body, name).join()
        ok, value = box[0]
        if not ok:
            assert isinstance(value, BaseException)
            raise value
        return value  # type: ignore[return-value]

    def threads(self) -> list[threading.Thread]:
        """The threads started in this namespace that are still alive."""
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            return list(self._threads)

    def join(self, timeout: float) -> list[threading.Thread]:
        """Join every thread started here, within ``timeout`` in all; returns those left."""
        deadline = time.monotonic() + timeout
        for thread in self.threads():
            if thread is threading.current_thread():
                continue
            thread.join(max(0.0, deadline - time.monotonic()))
        return [t for t in self.threads() if t is not threading.current_thread()]

    def close(self) -> None:
        """Drop our descriptor on the namespace (idempotent).  Call after ``join``."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)


def device_unavailable(create: Callable[[], object], what: str) -> str:
    """Why this machine cannot make a TUN/TAP device in a private namespace ("" when it
    can): ``create`` runs on a thread inside a fresh namespace and opens (and closes) the
    device; ``what`` names the device in the reason.  The namespace goes afterwards."""
    if not os.path.exists("/dev/net/tun"):
        return "no /dev/net/tun"
    try:
        ns = NetNamespace()
    except OSError as exc:
        return f"cannot create a network namespace (need root or CAP_SYS_ADMIN): {exc}"
    try:
        ns.run(create, "device-probe")
    except OSError as exc:
        return f"cannot create {what} (need CAP_NET_ADMIN): {exc}"
    finally:
        ns.close()
    return ""


# --- configuration inside a namespace (call these on an in-namespace thread) ---------


def _ifreq(name: str, payload: bytes = b"") -> bytes:
    raw = name.encode()
    if len(raw) >= IFNAMSIZ:
        raise ValueError(f"interface name {name!r} is longer than {IFNAMSIZ - 1} bytes")
    return raw.ljust(IFNAMSIZ, b"\0") + payload.ljust(24, b"\0")


def _sockaddr_in(ip: str) -> bytes:
    # struct sockaddr_in: sa_family (host order), port (0), address, 8 bytes of zero
    return struct.pack("=H", socket.AF_INET) + b"\0\0" + socket.inet_aton(ip) + b"\0" * 8


def _ioctl(fd: int, request: int, arg: bytes, what: str) -> bytes:
    try:
        return fcntl.ioctl(fd, request, arg)  # an immutable arg: the kernel's answer is returned
    except OSError as exc:
        raise NetnsError(exc.errno or errno.EIO, f"{what}: {exc.strerror}") from exc


def set_mtu(ctl: socket.socket, ifname: str, mtu: int) -> None:
    _ioctl(ctl.fileno(), SIOCSIFMTU, _ifreq(ifname, struct.pack("=i", mtu)), f"{ifname} mtu {mtu}")


def set_link_up(ctl: socket.socket, ifname: str) -> None:
    got = _ioctl(ctl.fileno(), SIOCGIFFLAGS, _ifreq(ifname), f"{ifname} get flags")
    (flags,) = struct.unpack_from("=H", got, IFNAMSIZ)
    payload = struct.pack("=H", flags | IFF_UP)
    _ioctl(ctl.fileno(), SIOCSIFFLAGS, _ifreq(ifname, payload), f"{ifname} up")


def configure_interface(ctl: socket.socket, ifname: str, ip: str, netmask: str) -> None:
    """``ip addr add IP/NETMASK dev IFNAME`` (the link should already be up, so that the
    prefix route appears)."""
    _ioctl(ctl.fileno(), SIOCSIFADDR, _ifreq(ifname, _sockaddr_in(ip)), f"{ifname} addr {ip}")
    _ioctl(ctl.fileno(), SIOCSIFNETMASK, _ifreq(ifname, _sockaddr_in(netmask)), f"{ifname} mask {netmask}")


_Sockaddr = ctypes.c_ubyte * 16  # struct sockaddr (c_char arrays would stop at a NUL)


class _RtEntry(ctypes.Structure):
    # struct rtentry, <net/route.h>
    _fields_ = (
        ("rt_pad1", ctypes.c_ulong),
        ("rt_dst", _Sockaddr),
        ("rt_gateway", _Sockaddr),
        ("rt_genmask", _Sockaddr),
        ("rt_flags", ctypes.c_ushort),
        ("rt_pad2", ctypes.c_short),
        ("rt_pad3", ctypes.c_ulong),
        ("rt_pad4", ctypes.c_void_p),
        ("rt_metric", ctypes.c_short),
        ("rt_dev", ctypes.c_char_p),
        ("rt_mtu", ctypes.c_ulong),
        ("rt_window", ctypes.c_ulong),
        ("rt_irtt", ctypes.c_ushort),
    )


def add_route(ctl: socket.socket, prefix: str, gateway: str, ifname: str) -> None:
    """``ip route add PREFIX via GATEWAY dev IFNAME`` (IPv4)."""
    net = ipaddress.IPv4Network(prefix, strict=False)
    dev = ctypes.create_string_buffer(ifname.encode())
    entry = _RtEntry()
    entry.rt_dst = _Sockaddr.from_buffer_copy(_sockaddr_in(str(net.network_address)))
    entry.rt_gateway = _Sockaddr.from_buffer_copy(_sockaddr_in(gateway))
    entry.rt_genmask = _Sockaddr.from_buffer_copy(_sockaddr_in(str(net.netmask)))
    entry.rt_flags = RTF_UP | RTF_GATEWAY
    entry.rt_dev = ctypes.cast(dev, ctypes.c_char_p)
    _ioctl(ctl.fileno(), SIOCADDRT, bytes(entry), f"route {net} via {gateway} dev {ifname}")
    del dev  # kept alive until the ioctl returned


# --- socket destruction (sock_diag) --------------------------------------------------

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
SOCK_DESTROY = 21
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x4, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
TCP_TIME_WAIT = 6
_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_DIAG_REQ = struct.Struct("=BBBxI48s")  # inet_diag_req_v2: family, protocol, ext, states, sockid
_DIAG_MSG_ID = slice(4, 52)  # inet_diag_msg: family, state, timer, retrans, then the sockid


def _netlink_messages(sock: socket.socket) -> list[tuple[int, bytes]]:
    """Read one netlink reply (a dump up to NLMSG_DONE, or one ack)."""
    found: list[tuple[int, bytes]] = []
    while True:
        data = sock.recv(65536)
        if not data:
            return found
        offset = 0
        while offset + _NLMSGHDR.size <= len(data):
            length, kind, _flags, _seq, _pid = _NLMSGHDR.unpack_from(data, offset)
            if length < _NLMSGHDR.size:
                return found
            body = data[offset + _NLMSGHDR.size : offset + length]
            if kind in (NLMSG_DONE, NLMSG_ERROR):
                found.append((kind, body))
                return found
            found.append((kind, body))
            offset += (length + 3) & ~3


def _netlink_send(sock: socket.socket, kind: int, flags: int, seq: int, body: bytes) -> None:
    sock.send(_NLMSGHDR.pack(_NLMSGHDR.size + len(body), kind, NLM_F_REQUEST | flags, seq, 0) + body)


def destroy_sockets(protocol: int = socket.IPPROTO_TCP) -> int:
    """Abort every socket of ``protocol`` left in the calling thread's namespace
    (``ss -K``): orphans closed with data in flight and half-open request sockets, which
    would otherwise keep the namespace alive inside the kernel until their timers give
    up.  TIME-WAIT sockets are left alone (they do not hold the namespace).  Returns how
    many were destroyed; needs CONFIG_INET_DIAG_DESTROY (0 without it)."""
    destroyed = 0
    states = 0xFFFFFFFF & ~(1 << TCP_TIME_WAIT)
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG) as nl:
        nl.bind((0, 0))
        for family in (socket.AF_INET, socket.AF_INET6):
            every = _DIAG_REQ.pack(family, protocol, 0, states, b"")  # a zero sockid: dump all
            _netlink_send(nl, SOCK_DIAG_BY_FAMILY, NLM_F_DUMP, 1, every)
            replies = _netlink_messages(nl)
            found = [body[_DIAG_MSG_ID] for kind, body in replies if kind == SOCK_DIAG_BY_FAMILY]
            for seq, sockid in enumerate(found, start=2):
                one = _DIAG_REQ.pack(family, protocol, 0, states, sockid)
                _netlink_send(nl, SOCK_DESTROY, NLM_F_ACK, seq, one)
                for kind, body in _netlink_messages(nl):
                    if kind != NLMSG_ERROR or len(body) < 4:
                        continue
                    (err,) = struct.unpack_from("=i", body)  # the ack: 0 or -errno
                    if err == -errno.EOPNOTSUPP:
                        return destroyed  # a kernel without CONFIG_INET_DIAG_DESTROY
                    destroyed += err == 0
    return destroyed


# --- sysctls ------------------------------------------------------------------------


def sysctl_path(key: str) -> str:
    """``net.ipv4.tcp_sack`` (or ``net/ipv4/tcp_sack``) -> ``/proc/sys/net/ipv4/tcp_sack``."""
    rel = key.strip().strip("/")
    if "/" not in rel:
        rel = rel.replace(".", "/")
    if not rel or ".." in rel.split("/"):
        raise ValueError(f"bad sysctl name {key!r}")
    return "/proc/sys/" + rel


def is_namespace_scoped(inside: os.stat_result, outside: os.stat_result | None) -> bool:
    """Whether a sysctl file is a per-namespace copy rather than the host's global knob,
    given ``os.stat`` of its ``/proc/sys`` path taken on a thread inside the namespace
    and on one outside (None if it does not exist there).

    /proc/sys gives every table *set* its own inodes: a per-namespace entry has a
    different inode in each namespace, a global one (``vm.*``, ``kernel.*``) the same."""
    if outside is None:
        return True  # only the namespace has it (e.g. a knob of one of its devices)
    return (inside.st_dev, inside.st_ino) != (outside.st_dev, outside.st_ino)
