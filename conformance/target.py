"""The target interface: what the script executor needs from a system under test.

A :class:`Target` is a kind of system (the Linux kernel, refstack); a
:class:`Session` is one case running on it.  The executor knows nothing of refstack
or Linux beyond this module, and a target knows nothing of scripts.  Packets cross
this interface as bare IPv4 datagrams (``bytes``), in both directions; times are
float seconds since the session opened.

Socket calls are target-neutral: :meth:`Session.syscall` takes the call's name and
already-resolved arguments (live file descriptors, addresses as ``(ip, port)``
tuples, buffers as byte counts or ``bytes``, socket-option values as ``int`` or
``bytes``) and returns a :class:`Call` that completes at once or later (a blocking
``accept`` completes when a later injected packet makes it so).  The argument
conventions of each call are listed in :data:`SYSCALLS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol


class InvalidSettingError(ValueError):
    """A setting the case asks for is wrong (an unknown EF_* option, a value out of
    its range): the case is an *error*, the script needs fixing."""


class UnsupportedSettingError(Exception):
    """A target cannot model a setting the case asks for: the case is *skipped* with
    this reason (never counted as passed).  A setting that the target supports but
    that fails is reported by :meth:`Session.apply` returning ``(False, why)``."""


@dataclass(frozen=True)
class CaseConfig:
    """How to set a target up for one case (packetdrill's defaults, GRAMMAR.md §7)."""

    name: str
    local_ip: str = "192.168.0.1"
    remote_ip: str = "192.0.2.1"
    gateway_ip: str = "192.168.0.1"
    netmask_ip: str = "255.255.0.0"
    remote_prefix_len: int = 24
    mtu: int = 1500
    sysctls: tuple[tuple[str, str], ...] = ()  # namespace-scoped, applied before the case starts
    ef_options: tuple[tuple[str, str], ...] = ()  # Onload EF_* options (refstack only)
    timeout: float = 180.0  # wall-clock limit of the whole case (packetdrill's run_all uses 180 s)


@dataclass(frozen=True)
class Captured:
    """One packet the system under test sent, as it left it."""

    time: float
    packet: bytes  # an IPv4 datagram (a TSO super-packet may exceed the MTU)


@dataclass(frozen=True)
class Setting:
    """A setting a script asks for: ``kind`` is "sysctl", "ef" (an EF_* option) or
    "shell" (a backquoted command: ``key`` holds the command line, ``value`` is "")."""

    kind: str
    key: str
    value: str = ""


@dataclass
class CallResult:
    """What a finished call returned: ``ret`` as the C call would (-1 on failure, with
    ``errno``), plus ``value`` for calls that fill in memory (getsockopt's option
    value, poll's revents list, accept's peer address, read's bytes...)."""

    ret: int
    errno: int = 0
    value: object = None


@dataclass
class Call:
    """A started socket call.  ``result`` is None until it finishes; ``finished_at``
    is the session time at which it returned."""

    name: str
    args: tuple[object, ...]
    started_at: float
    result: CallResult | None = None
    finished_at: float | None = None
    _on_done: list[Callable[[Call], None]] = field(default_factory=list, repr=False)

    @property
    def done(self) -> bool:
        return self.result is not None

    def finish(self, result: CallResult, at: float) -> None:
        self.result = result
        self.finished_at = at
        for callback in self._on_done:
            callback(self)


class Session(Protocol):
    """One case on one target.  ``close`` always cleans up (namespace, devices, threads)."""

    def now(self) -> float:
        """Seconds since the session opened (virtual on refstack, real on Linux)."""

    def sleep_until(self, t: float) -> None:
        """Let the system run until session time ``t`` (timers fire; real time sleeps)."""

    def inject(self, ip_packet: bytes) -> None:
        """Deliver ``ip_packet`` (an IPv4 datagram from the remote peer) now."""

    def sniff(self, deadline: float) -> Captured | None:
        """The next packet the system sent, waiting at most until ``deadline``."""

    def syscall(self, name: str, args: tuple[object, ...]) -> Call:
        """Start a socket call (see :data:`SYSCALLS`); blocking calls finish later."""

    def wait(self, call: Call, deadline: float) -> bool:
        """Let time run until ``call`` finishes or ``deadline`` passes; True if finished."""

    def apply(self, setting: Setting) -> tuple[bool, str]:
        """Apply a setting: (True, "") or (False, why) when it failed (-> fail); raises
        :class:`UnsupportedSettingError` when the target cannot model it (-> skip)."""

    def close(self) -> None:
        """Tear everything down, even after a failure; idempotent."""


class Target(Protocol):
    name: str
    # What the target offers, for cases that ``--require=`` something (EXTENSIONS.md):
    # its own name plus feature words ("onload", "virtual_time", "kernel", "shell").
    features: frozenset[str]

    def available(self) -> tuple[bool, str]:
        """(True, "") or (False, the reason) -- e.g. no permission to create a namespace."""

    def open(self, case: CaseConfig) -> Session:
        """Set up one case; the caller must ``close`` the session."""


# name -> argument convention (file descriptors are live ones).
SYSCALLS: dict[str, str] = {
    "socket": "(domain: int, type: int, protocol: int) -> fd",
    "bind": "(fd, (ip: str, port: int)) -> 0",
    "listen": "(fd, backlog: int) -> 0",
    "accept": "(fd) -> new fd; value = (ip, port) of the peer",
    "connect": "(fd, (ip: str, port: int)) -> 0",
    "close": "(fd) -> 0",
    "shutdown": "(fd, how: int) -> 0",
    "write": "(fd, data: bytes) -> bytes written",
    "send": "(fd, data: bytes, flags: int) -> bytes written",
    "sendto": "(fd, data: bytes, flags: int, (ip, port) | None) -> bytes written",
    "read": "(fd, count: int) -> bytes read; value = the bytes",
    "recv": "(fd, count: int, flags: int) -> bytes read; value = the bytes",
    "recvfrom": "(fd, count: int, flags: int) -> bytes read; value = (bytes, (ip, port))",
    "setsockopt": "(fd, level: int, name: int, value: int | bytes) -> 0",
    "getsockopt": "(fd, level: int, name: int, buflen: int) -> 0; value = int | bytes",
    "fcntl": "(fd, cmd: int, arg: int) -> int",
    "poll": "([(fd, events: int)], timeout_ms: int) -> ready count; value = [(fd, revents)]",
    "epoll_create": "(size: int) -> epfd",
    "epoll_ctl": "(epfd, op: int, fd, events: int) -> 0",
    "epoll_wait": "(epfd, maxevents: int, timeout_ms: int) -> count; value = [(fd, events)]",
}
