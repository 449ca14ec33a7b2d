"""The refstack target: the reference stack in this process, in virtual time.

No privileges, no real time: the session owns a :class:`~refstack.clock.VirtualClock`
and a :class:`~refstack.stack.Stack` with one IP-only interface (``tun0``) holding
the case's local address, and a route to the remote prefix.  Time moves only when
the executor asks (``sleep_until``, ``sniff``, ``wait``), jumping from one stack
timer to the next, so a script with 10 s of waits runs in milliseconds and timers
fire exactly on time.

Socket calls run through :mod:`refstack.socket`.  Every refstack socket is kept
non-blocking; the script's view of blocking (the socket's ``O_NONBLOCK`` flag) is
kept here.  A call that would block on a blocking socket becomes a *pending* call:
after every event (an injected packet, a timer), pending calls are attempted again,
and the first attempt that does not block finishes the call at that virtual
instant.  One implementation of each call, retried: nothing here sleeps or spawns
a thread.

The harness's oracle never uses refstack's packet code; this module is the system
under test's side of the interface, so it may.
"""

from __future__ import annotations

import errno
import fcntl as pyfcntl
import hashlib
import ipaddress
import os
import shlex
from collections import deque
from collections.abc import Callable

from refstack import select as rselect
from refstack import socket as rsocket
from refstack.clock import VirtualClock
from refstack.config import Config, ConfigError
from refstack.profile import Profile, ProfileError, apply_sysctl
from refstack.runtime import Runtime
from refstack.stack import Stack

from ..target import (
    Call,
    CallResult,
    Captured,
    CaseConfig,
    InvalidSettingError,
    Setting,
    UnsupportedSettingError,
)

O_NONBLOCK = os.O_NONBLOCK
INTERFACE = "tun0"

Attempt = Callable[[], CallResult | None]


def _void(fn: Callable[..., None], *args: object) -> CallResult:
    """Run a call that returns nothing; success is 0, as the C call returns."""
    fn(*args)
    return CallResult(0)


class _SessionDriver:
    """The runtime's driver.  Refstack sockets are all non-blocking here, so no call
    ever needs to wait; a zero-timeout readiness check is the only legal wait."""

    def __init__(self, clock: VirtualClock) -> None:
        self._clock = clock

    def now(self) -> float:
        return self._clock.now()

    def wait_until(self, condition: Callable[[], bool], timeout: float | None) -> bool:
        if timeout is None or timeout > 0:
            raise RuntimeError("the refstack session waits itself; sockets are non-blocking")
        return condition()


def _connected(sock: rsocket.socket) -> None:
    """A blocking connect() returned: Linux's socket leaves SS_CONNECTING."""
    file = sock._file  # the harness looks under its own socket objects
    if file is not None and hasattr(file, "connecting"):
        file.connecting = False


def _config(options: tuple[tuple[str, str], ...]) -> Config:
    """The stack's EF_* options: Onload's defaults plus the case's ``--ef=`` ones.

    A bad value or a name Onload does not know is the script's error, never a silent
    default; an option Onload has but refstack does not model skips the case."""
    try:
        config = Config.from_env(dict(options))
    except ConfigError as e:
        raise InvalidSettingError(str(e)) from None
    if config.unknown:
        raise InvalidSettingError(f"unknown EF_* option(s): {', '.join(config.unknown)}")
    if config.ignored:
        raise UnsupportedSettingError(f"refstack does not model {', '.join(config.ignored)}")
    return config


class RefstackSession:
    def __init__(self, case: CaseConfig) -> None:
        self.case = case
        profile = Profile()
        for key, value in case.sysctls:
            try:
                profile = apply_sysctl(profile, key, value)
            except ProfileError as e:
                raise UnsupportedSettingError(str(e)) from None
        config = _config(case.ef_options)
        seed = int.from_bytes(hashlib.sha256(case.name.encode()).digest()[:8], "big")
        self.clock = VirtualClock()
        self.stack = Stack(profile, name=f"case-{case.name}", seed=seed, config=config)
        prefix = ipaddress.IPv4Network(f"0.0.0.0/{case.netmask_ip}").prefixlen
        self.stack.add_interface(INTERFACE, case.local_ip, prefix, mtu=case.mtu)
        remote = ipaddress.IPv4Network(f"{case.remote_ip}/{case.remote_prefix_len}", strict=False)
        self.stack.add_route(str(remote.network_address), remote.prefixlen, INTERFACE)
        self.runtime = Runtime(self.stack, _SessionDriver(self.clock))
        self._outbound: deque[Captured] = deque()
        self._pending: list[tuple[Call, Attempt, float | None]] = []
        self._socks: dict[int, rsocket.socket] = {}
        self._blocking: dict[int, bool] = {}  # fd -> the script's view (True = blocking)
        self._epolls: dict[int, rselect.epoll] = {}
        self._closed = False

    # --- time and packets -------------------------------------------------------------
    def now(self) -> float:
        return self.clock.now()

    def _collect(self) -> None:
        now = self.clock.now()
        for frame in self.stack.poll(now, INTERFACE):
            self._outbound.append(Captured(now, frame))

    def _step_to(self, t: float) -> None:
        """Advance to the earliest of ``t``, the next stack timer and the next pending
        call deadline; run what is due there."""
        candidates = [t]
        deadline = self.stack.next_deadline()
        if deadline is not None:
            candidates.append(max(deadline, self.clock.now()))
        candidates += [d for _, _, d in self._pending if d is not None]
        target = max(min(candidates), self.clock.now())
        self.clock.advance_to(target)
        self._collect()
        self._progress()

    def sleep_until(self, t: float) -> None:
        self._run_until(lambda: False, t)

    def _run_until(self, done: Callable[[], bool], t: float) -> bool:
        self._collect()
        self._progress()
        while not done():
            if self.clock.now() >= t:
                deadline = self.stack.next_deadline()
                if deadline is None or deadline > self.clock.now():
                    return done()
            self._step_to(t)
        return True

    def inject(self, ip_packet: bytes) -> None:
        self.stack.receive(ip_packet, self.clock.now(), INTERFACE)
        self._collect()
        self._progress()

    def sniff(self, deadline: float) -> Captured | None:
        self._run_until(lambda: bool(self._outbound), deadline)
        return self._outbound.popleft() if self._outbound else None

    def wait(self, call: Call, deadline: float) -> bool:
        return self._run_until(lambda: call.done, deadline)

    # --- settings --------------------------------------------------------------------
    def apply(self, setting: Setting) -> tuple[bool, str]:
        """sysctls the profile models apply; anything else raises
        UnsupportedSettingError so that the case is skipped with the reason."""
        if setting.kind == "sysctl":
            self._sysctl(setting.key, setting.value)
        elif setting.kind == "ef":
            raise UnsupportedSettingError("EF_* options arrive with the Onload model (issue 4)")
        elif setting.kind == "shell":
            self._shell(setting.key)
        else:
            raise UnsupportedSettingError(f"unknown setting kind {setting.kind!r}")
        return True, ""

    def _sysctl(self, key: str, value: str) -> None:
        try:
            self.stack.profile = apply_sysctl(self.stack.profile, key, value)
        except ProfileError as e:
            raise UnsupportedSettingError(str(e)) from None

    def _shell(self, command: str) -> None:
        """Modelled on refstack: ``sysctl [-q] [-w] key=value...`` (applied to its
        profile) and ``ethtool -K DEV FEATURE off...`` (a no-op: it has no offloads),
        several of them separated by newlines, ``;`` or ``&&``; any other command makes
        the case skip with the reason."""
        tokens: list[str] = []
        try:
            for line in command.splitlines():  # a newline ends a command, as ';' does
                lexer = shlex.shlex(line, posix=True, punctuation_chars=";&")
                lexer.whitespace_split = True
                tokens += [*lexer, ";"]
        except ValueError as e:
            raise UnsupportedSettingError(f"cannot parse shell command {command!r}: {e}") from None
        words: list[str] = []
        for token in tokens:
            if token in (";", "&&"):
                if words:
                    self._one_command(words)
                words = []
            else:
                words.append(token)

    def _one_command(self, words: list[str]) -> None:
        command = " ".join(words)
        if words[:2] == ["ethtool", "-K"] and len(words) >= 5 and len(words) % 2 == 1:
            # Turning offloads *off* is refstack's native state (it never emits TSO/GSO
            # super-packets), so it is a true no-op; turning one on is not modelled.
            pairs = list(zip(words[3::2], words[4::2], strict=True))
            if all(state == "off" for _, state in pairs):
                return
            raise UnsupportedSettingError(f"refstack has no offloads to turn on: {command.strip()!r}")
        if not words or words[0] != "sysctl":
            raise UnsupportedSettingError(f"shell command not modelled on refstack: {command.strip()!r}")
        assignments = [w for w in words[1:] if not w.startswith("-")]
        flags = [w for w in words[1:] if w.startswith("-")]
        if not assignments or any(f not in ("-q", "-w", "-qw", "-wq") for f in flags):
            raise UnsupportedSettingError(f"sysctl form not modelled on refstack: {command.strip()!r}")
        for item in assignments:
            key, sep, value = item.partition("=")
            if not sep:
                raise UnsupportedSettingError(f"sysctl read not modelled on refstack: {item!r}")
            self._sysctl(key, value)

    # --- socket calls -----------------------------------------------------------------
    def syscall(self, name: str, args: tuple[object, ...]) -> Call:
        call = Call(name, args, self.clock.now())
        handler = getattr(self, f"_sys_{name}", None)
        if handler is None:
            call.finish(CallResult(-1, errno.ENOSYS), self.clock.now())
            return call
        try:
            attempt, deadline = handler(*args)
        except OSError as e:
            call.finish(CallResult(-1, e.errno or errno.EINVAL), self.clock.now())
            return call
        result = attempt()
        if result is not None:
            call.finish(result, self.clock.now())
        else:
            self._pending.append((call, attempt, deadline))
        return call

    def _progress(self) -> None:
        """Retry every pending call; finish those that no longer block."""
        if not self._pending:
            return
        still: list[tuple[Call, Attempt, float | None]] = []
        for call, attempt, deadline in self._pending:
            result = attempt()
            if result is not None:
                call.finish(result, self.clock.now())
            else:
                still.append((call, attempt, deadline))
        self._pending = still

    def _sock(self, fd: object) -> rsocket.socket:
        sock = self._socks.get(fd) if isinstance(fd, int) else None
        if sock is None:
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))
        return sock

    def _blocking_attempt(
        self, fd: int, op: Callable[[], CallResult], flags: int = 0
    ) -> tuple[Attempt, None]:
        """Run ``op``; on a blocking socket, EAGAIN means "try again later" -- unless
        the call itself asked not to wait (MSG_DONTWAIT, as on Linux)."""
        blocking = self._blocking.get(fd, True) and not flags & rsocket.MSG_DONTWAIT

        def attempt() -> CallResult | None:
            try:
                return op()
            except BlockingIOError:
                if blocking:
                    return None
                return CallResult(-1, errno.EAGAIN)
            except OSError as e:
                return CallResult(-1, e.errno or errno.EINVAL)

        return attempt, None

    @staticmethod
    def _done(op: Callable[[], CallResult]) -> tuple[Attempt, None]:
        def attempt() -> CallResult | None:
            try:
                return op()
            except OSError as e:
                return CallResult(-1, e.errno or errno.EINVAL)

        return attempt, None

    def _sys_socket(self, domain: int, type_: int, protocol: int) -> tuple[Attempt, None]:
        def op() -> CallResult:
            nonblock = bool(type_ & rsocket.SOCK_NONBLOCK)
            sock = rsocket.socket(domain, type_ & ~rsocket.SOCK_NONBLOCK, protocol, runtime=self.runtime)
            sock.setblocking(False)
            self._socks[sock.fileno()] = sock
            self._blocking[sock.fileno()] = not nonblock
            return CallResult(sock.fileno())

        return self._done(op)

    def _sys_bind(self, fd: int, address: tuple[str, int]) -> tuple[Attempt, None]:
        return self._done(lambda: _void(self._sock(fd).bind, address))

    def _sys_listen(self, fd: int, backlog: int) -> tuple[Attempt, None]:
        return self._done(lambda: _void(self._sock(fd).listen, backlog))

    def _sys_accept(self, fd: int) -> tuple[Attempt, None]:
        def op() -> CallResult:
            conn, peer = self._sock(fd).accept()
            conn.setblocking(False)
            self._socks[conn.fileno()] = conn
            self._blocking[conn.fileno()] = True
            return CallResult(conn.fileno(), value=peer)

        return self._blocking_attempt(fd, op)

    def _sys_connect(self, fd: int, address: tuple[str, int]) -> tuple[Attempt, None]:
        sock = self._sock(fd)
        started = False

        def attempt() -> CallResult | None:
            nonlocal started
            if not started:
                started = True
                code = sock.connect_ex(address)
                if code != errno.EINPROGRESS:
                    return CallResult(0 if code == 0 else -1, code)
                if not self._blocking.get(fd, True):
                    return CallResult(-1, errno.EINPROGRESS)
            # A blocking connect finishes when the handshake does (writable or error);
            # the call itself reports it, so the socket is no longer "connecting".
            pending = sock.getsockopt(rsocket.SOL_SOCKET, rsocket.SO_ERROR)
            if isinstance(pending, int) and pending:
                _connected(sock)
                return CallResult(-1, pending)
            try:
                sock.getpeername()
            except OSError:
                return None
            _connected(sock)
            return CallResult(0)

        return attempt, None

    def _sys_close(self, fd: int) -> tuple[Attempt, float | None]:
        """close(); with SO_LINGER on (a positive timeout) on a blocking TCP socket it
        returns once the FIN is acknowledged or the linger time passes (Linux
        tcp_close), which the session waits out in virtual time."""
        if fd in self._epolls or fd not in self._socks:
            return self._done(lambda: self._close_fd(fd))
        sock = self._socks[fd]
        file = sock._file  # the harness looks under its own socket objects
        linger = getattr(file, "linger", None)
        core = getattr(file, "core", None)
        if not (linger and self._blocking.get(fd, True) and sock.type == rsocket.SOCK_STREAM):
            return self._done(lambda: self._close_fd(fd))
        deadline = self.clock.now() + float(linger)
        closed: list[bool] = []

        def attempt() -> CallResult | None:
            if not closed:
                self._close_fd(fd)
                closed.append(True)
            if core is not None and rsocket.lingering(core) and self.clock.now() < deadline:
                return None
            return CallResult(0)

        return attempt, deadline

    def _close_fd(self, fd: int) -> CallResult:
        if fd in self._epolls:
            self._epolls.pop(fd).close()
        else:
            self._sock(fd).close()
            del self._socks[fd]
        self._blocking.pop(fd, None)
        return CallResult(0)

    def _sys_shutdown(self, fd: int, how: int) -> tuple[Attempt, None]:
        return self._done(lambda: _void(self._sock(fd).shutdown, how))

    def _sys_write(self, fd: int, data: bytes) -> tuple[Attempt, None]:
        return self._sys_send(fd, data, 0)

    def _sys_send(self, fd: int, data: bytes, flags: int) -> tuple[Attempt, None]:
        """A blocking send returns once all the data is queued (Linux tcp_sendmsg)."""
        sock = self._sock(fd)
        sent = 0

        def op() -> CallResult:
            nonlocal sent
            while sent < len(data):
                try:
                    sent += sock.send(data[sent:], flags)
                except BlockingIOError:
                    if sent and (not self._blocking.get(fd, True) or flags & rsocket.MSG_DONTWAIT):
                        break
                    raise
            return CallResult(sent)

        return self._blocking_attempt(fd, op, flags)

    def _sys_sendto(
        self, fd: int, data: bytes, flags: int, address: tuple[str, int] | None
    ) -> tuple[Attempt, None]:
        sock = self._sock(fd)
        if address is None:
            return self._blocking_attempt(fd, lambda: CallResult(sock.send(data, flags)), flags)
        return self._blocking_attempt(fd, lambda: CallResult(sock.sendto(data, flags, address)), flags)

    def _sys_read(self, fd: int, count: int) -> tuple[Attempt, None]:
        return self._sys_recv(fd, count, 0)

    def _sys_recv(self, fd: int, count: int, flags: int) -> tuple[Attempt, None]:
        sock = self._sock(fd)

        def op() -> CallResult:
            data = sock.recv(count, flags)
            return CallResult(len(data), value=data)

        never_waits = flags & rsocket.MSG_OOB and sock.type == rsocket.SOCK_STREAM  # Linux tcp_recv_urg
        return self._blocking_attempt(fd, op, flags | (rsocket.MSG_DONTWAIT if never_waits else 0))

    def _sys_recvfrom(self, fd: int, count: int, flags: int) -> tuple[Attempt, None]:
        sock = self._sock(fd)

        def op() -> CallResult:
            data, peer = sock.recvfrom(count, flags)
            return CallResult(len(data), value=(data, peer))

        return self._blocking_attempt(fd, op, flags)

    def _sys_setsockopt(self, fd: int, level: int, name: int, value: int | bytes) -> tuple[Attempt, None]:
        return self._done(lambda: _void(self._sock(fd).setsockopt, level, name, value))

    def _sys_getsockopt(self, fd: int, level: int, name: int, buflen: int) -> tuple[Attempt, None]:
        def op() -> CallResult:
            sock = self._sock(fd)
            value: int | bytes = (
                sock.getsockopt(level, name, buflen) if buflen > 4 else sock.getsockopt(level, name)
            )
            return CallResult(0, value=value)

        return self._done(op)

    def _sys_fcntl(self, fd: int, cmd: int, arg: int) -> tuple[Attempt, None]:
        """F_GETFL / F_SETFL with O_NONBLOCK: the script's view of blocking."""

        def op() -> CallResult:
            self._sock(fd)
            if cmd == pyfcntl.F_GETFL:
                return CallResult(os.O_RDWR | (0 if self._blocking.get(fd, True) else O_NONBLOCK))
            if cmd == pyfcntl.F_SETFL:
                self._blocking[fd] = not arg & O_NONBLOCK
                return CallResult(0)
            return CallResult(-1, errno.EINVAL)

        return self._done(op)

    def _sys_poll(self, fds: list[tuple[int, int]], timeout_ms: int) -> tuple[Attempt, float | None]:
        deadline = None if timeout_ms < 0 else self.clock.now() + timeout_ms / 1000.0
        poller = rselect.poll(runtime=self.runtime)
        for fd, events in fds:
            poller.register(fd, events)

        def attempt() -> CallResult | None:
            ready = poller.poll(0)
            if ready or (deadline is not None and self.clock.now() >= deadline):
                revents = dict(ready)
                return CallResult(len(ready), value=[(fd, revents.get(fd, 0)) for fd, _ in fds])
            return None

        return attempt, deadline

    def _sys_epoll_create(self, size: int) -> tuple[Attempt, None]:
        def op() -> CallResult:
            ep = rselect.epoll(runtime=self.runtime)
            self._epolls[ep.fileno()] = ep
            return CallResult(ep.fileno())

        return self._done(op)

    def _sys_epoll_ctl(self, epfd: int, op_code: int, fd: int, events: int) -> tuple[Attempt, None]:
        ops = {1: "register", 2: "unregister", 3: "modify"}  # EPOLL_CTL_ADD, DEL, MOD

        def op() -> CallResult:
            ep = self._epolls.get(epfd)
            if ep is None or op_code not in ops:
                return CallResult(-1, errno.EBADF if ep is None else errno.EINVAL)
            if ops[op_code] == "unregister":
                ep.unregister(fd)
            else:
                getattr(ep, ops[op_code])(fd, events)
            return CallResult(0)

        return self._done(op)

    def _sys_epoll_wait(self, epfd: int, maxevents: int, timeout_ms: int) -> tuple[Attempt, float | None]:
        deadline = None if timeout_ms < 0 else self.clock.now() + timeout_ms / 1000.0

        def attempt() -> CallResult | None:
            ep = self._epolls.get(epfd)
            if ep is None:
                return CallResult(-1, errno.EBADF)
            ready = ep.poll(0, maxevents)
            if ready or (deadline is not None and self.clock.now() >= deadline):
                return CallResult(len(ready), value=list(ready))
            return None

        return attempt, deadline

    # --- teardown -----------------------------------------------------------------------
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for ep in self._epolls.values():
            ep.close()
        for sock in self._socks.values():
            sock.close()
        self._epolls.clear()
        self._socks.clear()
        self._pending.clear()


class RefstackTarget:
    """The reference stack in process; always available."""

    name = "refstack"
    features = frozenset({"refstack", "onload", "virtual_time"})

    def available(self) -> tuple[bool, str]:
        return True, ""

    def open(self, case: CaseConfig) -> RefstackSession:
        return RefstackSession(case)
