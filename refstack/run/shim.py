"""Modules that look like ``socket``, ``select`` and ``selectors`` with refstack underneath.

:func:`socket_module` builds a module whose every attribute is the real :mod:`socket`'s
(constants, exceptions, ``getaddrinfo``, ...) except:

- ``socket`` / ``SocketType``: a class (:class:`ShimSocket` bound to one driver) whose
  ``AF_INET`` ``SOCK_STREAM``/``SOCK_DGRAM`` sockets are refstack sockets on the driver's
  runtime, every call made under the driver's lock, and whose ``fileno()`` is a real
  descriptor mirroring the socket's readiness (:mod:`refstack.run.readiness`);
- the module's Python-level functions (``create_connection``, ``create_server``,
  ``socketpair``, ``fromfd``, ``getfqdn``, ...) are the real ones re-bound to the shim's
  globals, so that ``create_connection`` makes shim sockets;
- ``setdefaulttimeout`` sets the default of both kinds of socket.

What refstack cannot accelerate goes to the kernel, as Onload hands it over, and the stack
counts it: ``kernel_fallback_<why>`` for sockets created on the kernel (``af_unix``,
``af_inet6``, ``raw``, ``family_<n>``, ``fileno``: an existing descriptor, as ``socketpair``
and ``fromfd`` make) and ``tcp_handover_loopback``/``udp_handover_loopback`` for a refstack
socket that binds, connects or sends to a loopback address (127.0.0.0/8): it is replaced by
a kernel socket *on the same descriptor number* (``dup2``), with its timeout and options
replayed, so a ``fileno()`` already handed out stays valid.

``select`` and ``selectors`` are the real modules' contents in new module objects: since
readiness lives on real descriptors, the real ``select``/``poll``/``epoll`` serve shim
sockets and kernel descriptors together, unchanged.
"""

from __future__ import annotations

import errno
import io
import os
import select as _pyselect
import selectors as _pyselectors
import socket as _pysocket
import sys
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from .. import socket as rsocket
from .readiness import ShimDriver, Signal

__all__ = ["SHIMMED", "ShimSocket", "install", "select_module", "selectors_module", "socket_module"]

SHIMMED = ("socket", "select", "selectors")

# Modules that keep a reference to ``socket`` or ``select`` at import: if one of them is
# already loaded when the shims go in (refstack's own imports), it is imported afresh.
_DEPENDENTS = (
    "socketserver",
    "http.client",
    "http.server",
    "urllib.request",
    "xmlrpc",
    "wsgiref",
    "logging.handlers",
    "ftplib",
    "smtplib",
    "poplib",
    "imaplib",
    "asyncio",
    "ssl",
)


def _is_loopback(host: object) -> bool:
    if host == "localhost":
        return True
    if isinstance(host, str):
        try:
            return _pysocket.inet_aton(host)[0] == 127
        except OSError:
            return False
    return False


def _address_host(address: object) -> object:
    if isinstance(address, tuple) and address:
        return address[0]
    return None


def _forward(name: str) -> Callable[..., Any]:
    """A method calling ``name`` on the kernel socket, or on the refstack one under the lock."""

    def method(self: ShimSocket, *args: Any, **kwargs: Any) -> Any:
        kernel = self._kernel
        if kernel is not None:
            return getattr(kernel, name)(*args, **kwargs)
        with self._locked() as sock:
            return getattr(sock, name)(*args, **kwargs)

    method.__name__ = method.__qualname__ = name
    return method


class ShimSocket:
    """``socket.socket`` for programs run by ``refstack run`` (see the module doc).

    Subclass-friendly: the constructor has the real signature
    ``(family=-1, type=-1, proto=-1, fileno=None)``.  :func:`socket_module` binds a
    subclass named ``socket`` to a driver (``_driver``).
    """

    _driver: ClassVar[ShimDriver | None] = None

    def __init__(self, family: int = -1, type: int = -1, proto: int = -1, fileno: int | None = None) -> None:
        self._kernel: _pysocket.socket | None = None
        self._ref: rsocket.socket | None = None
        self._signal: Signal | None = None
        self._options: list[tuple[Any, ...]] = []
        self._io_refs = 0
        self._closed = False
        if fileno is not None:
            self._kernel = _pysocket.socket(family, type, proto, fileno)
            self._count("kernel_fallback_fileno")
            return
        family = _pysocket.AF_INET if family == -1 else family
        type = _pysocket.SOCK_STREAM if type == -1 else type
        proto = 0 if proto == -1 else proto
        self._family, self._kind, self._proto = (
            family,
            type & ~(rsocket.SOCK_NONBLOCK | rsocket.SOCK_CLOEXEC),
            proto,
        )
        why = self._why_kernel(family, self._kind, proto)
        if why is not None:
            self._kernel = _pysocket.socket(family, type, proto)
            self._count(f"kernel_fallback_{why}")
            return
        driver = self._the_driver()
        with driver.locked():
            self._adopt(rsocket.socket(family, type, proto, runtime=driver.runtime))

    @staticmethod
    def _why_kernel(family: int, kind: int, proto: int) -> str | None:
        if family == _pysocket.AF_UNIX:
            return "af_unix"
        if family == _pysocket.AF_INET6:
            return "af_inet6"
        if family != _pysocket.AF_INET:
            return f"family_{family}"
        if kind == _pysocket.SOCK_RAW:
            return "raw"
        if kind == _pysocket.SOCK_STREAM and proto in (0, _pysocket.IPPROTO_TCP):
            return None
        if kind == _pysocket.SOCK_DGRAM and proto in (0, _pysocket.IPPROTO_UDP):
            return None
        return f"type_{kind}_proto_{proto}"

    @classmethod
    def _the_driver(cls) -> ShimDriver:
        if cls._driver is None:
            raise RuntimeError("ShimSocket is not bound to a driver: use refstack.run.shim.socket_module()")
        return cls._driver

    def _count(self, counter: str) -> None:
        driver = type(self)._driver
        if driver is not None:
            with driver.locked() as stack:
                stack.counters[counter] += 1

    def _adopt(self, sock: rsocket.socket) -> None:
        """(Under the lock.)  Become the shim of refstack socket ``sock``."""
        self._ref = sock
        self._family, self._kind, self._proto = int(sock.family), int(sock.type), sock.proto
        self._signal = Signal()
        self._the_driver().register(sock.fileno(), self._signal)

    @classmethod
    def _wrap_refstack(cls, sock: rsocket.socket) -> ShimSocket:
        new = cls.__new__(cls)
        ShimSocket._init_empty(new)
        new._adopt(sock)
        return new

    @classmethod
    def _wrap_kernel(cls, sock: _pysocket.socket) -> ShimSocket:
        new = cls.__new__(cls)
        ShimSocket._init_empty(new)
        new._kernel = sock
        return new

    def _init_empty(self) -> None:
        self._kernel = None
        self._ref = None
        self._signal = None
        self._options = []
        self._io_refs = 0
        self._closed = False
        self._family, self._kind, self._proto = _pysocket.AF_INET, _pysocket.SOCK_STREAM, 0

    @contextmanager
    def _locked(self) -> Iterator[rsocket.socket]:
        """The refstack socket, under the driver lock; its signal re-synced on the way out."""
        sock = self._ref
        if sock is None:
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))
        driver = self._the_driver()
        with driver.locked():
            try:
                yield sock
            finally:
                signal = self._signal
                if signal is not None and self._ref is sock:
                    driver.sync(sock.fileno(), signal)

    # --- handover to the kernel ------------------------------------------------------------
    def _handover(self) -> _pysocket.socket:
        """Replace the refstack socket by a kernel one on the same descriptor number."""
        sock, signal = self._ref, self._signal
        assert sock is not None and signal is not None
        driver = self._the_driver()
        with driver.locked() as stack:
            timeout = sock.gettimeout()
            driver.unregister(signal)
            sock.close()
            self._ref = None
            kind = "tcp" if self._kind == _pysocket.SOCK_STREAM else "udp"
            stack.counters[f"{kind}_handover_loopback"] += 1
        kernel = _pysocket.socket(self._family, self._kind, self._proto)
        fd = signal.app.detach()
        signal.peer.close()
        os.dup2(kernel.fileno(), fd, inheritable=False)
        kernel.close()
        self._signal = None
        self._kernel = kernel = _pysocket.socket(self._family, self._kind, self._proto, fd)
        kernel.settimeout(timeout)
        for args in self._options:
            kernel.setsockopt(*args)
        return kernel

    def _route(self, address: object) -> _pysocket.socket | None:
        """The kernel socket to use for ``address`` (handing over for loopback), or None."""
        if self._kernel is not None:
            return self._kernel
        if _is_loopback(_address_host(address)):
            return self._handover()
        return None

    # --- identity ------------------------------------------------------------------------
    @property
    def family(self) -> _pysocket.AddressFamily:
        if self._kernel is not None:
            return self._kernel.family
        return _pysocket.AddressFamily(self._family)

    @property
    def type(self) -> _pysocket.SocketKind:
        if self._kernel is not None:
            return self._kernel.type
        return _pysocket.SocketKind(self._kind)

    @property
    def proto(self) -> int:
        return self._kernel.proto if self._kernel is not None else self._proto

    @property
    def timeout(self) -> float | None:
        value: float | None = self.gettimeout()
        return value

    @property
    def refstack(self) -> bool:
        """Whether this socket runs on refstack (False: a kernel socket)."""
        return self._ref is not None

    def fileno(self) -> int:
        if self._kernel is not None:
            return self._kernel.fileno()
        return self._signal.fileno() if self._signal is not None else -1

    def __repr__(self) -> str:
        if self._kernel is not None:
            return f"<shim {self._kernel!r}>"
        return f"<shim fd={self.fileno()} {self._ref!r}>"

    def __enter__(self) -> ShimSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- calls ----------------------------------------------------------------------------
    def accept(self) -> tuple[ShimSocket, Any]:
        if self._kernel is not None:
            conn, addr = self._kernel.accept()
            return type(self)._wrap_kernel(conn), addr
        with self._locked() as sock:
            child, addr = sock.accept()
            new = type(self)._wrap_refstack(child)
        if _pysocket.getdefaulttimeout() is None and self.gettimeout():
            new.setblocking(True)  # CPython: an accepted socket is blocking unless a default is set
        return new, addr

    def bind(self, address: Any) -> None:
        kernel = self._route(address)
        if kernel is not None:
            kernel.bind(address)
            return
        with self._locked() as sock:
            sock.bind(address)

    def connect(self, address: Any) -> None:
        kernel = self._route(address)
        if kernel is not None:
            kernel.connect(address)
            return
        with self._locked() as sock:
            sock.connect(address)

    def connect_ex(self, address: Any) -> int:
        kernel = self._route(address)
        if kernel is not None:
            return kernel.connect_ex(address)
        with self._locked() as sock:
            return sock.connect_ex(address)

    def sendto(self, data: Any, flags_or_address: Any, address: Any = None) -> int:
        dest = flags_or_address if address is None else address
        kernel = self._route(dest) if self._ref is not None and self._unbound() else self._kernel
        if kernel is not None:
            return kernel.sendto(data, flags_or_address, *(() if address is None else (address,)))
        with self._locked() as sock:
            return sock.sendto(data, flags_or_address, address)

    def _unbound(self) -> bool:
        with self._locked() as sock:
            try:
                return sock.getsockname()[1] == 0
            except OSError:
                return True

    def setsockopt(self, *args: Any) -> None:
        if self._kernel is not None:
            self._kernel.setsockopt(*args)
            return
        with self._locked() as sock:
            sock.setsockopt(*args)
        self._options.append(args)

    listen = _forward("listen")
    send = _forward("send")
    sendall = _forward("sendall")
    sendmsg = _forward("sendmsg")
    recv = _forward("recv")
    recv_into = _forward("recv_into")
    recvfrom = _forward("recvfrom")
    recvfrom_into = _forward("recvfrom_into")
    recvmsg = _forward("recvmsg")
    shutdown = _forward("shutdown")
    getsockname = _forward("getsockname")
    getpeername = _forward("getpeername")
    getsockopt = _forward("getsockopt")
    settimeout = _forward("settimeout")
    gettimeout = _forward("gettimeout")
    setblocking = _forward("setblocking")
    getblocking = _forward("getblocking")

    def get_inheritable(self) -> bool:
        return os.get_inheritable(self.fileno())

    def set_inheritable(self, inheritable: bool) -> None:
        os.set_inheritable(self.fileno(), inheritable)

    def dup(self) -> ShimSocket:
        if self._kernel is not None:
            return type(self)._wrap_kernel(self._kernel.dup())
        with self._locked() as sock:
            return type(self)._wrap_refstack(sock.dup())

    def detach(self) -> int:
        if self._kernel is not None:
            self._closed = True
            return self._kernel.detach()
        raise OSError(errno.EOPNOTSUPP, "a refstack socket has no kernel descriptor to detach")

    def sendfile(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        """CPython's send() fallback of ``socket.sendfile``."""
        if offset:
            file.seek(offset)
        total = 0
        while count is None or total < count:
            size = 1 << 16 if count is None else min(1 << 16, count - total)
            data = file.read(size)
            if not data:
                break
            self.sendall(data)
            total += len(data)
        if total and hasattr(file, "seek"):
            file.seek(offset + total)
        return total

    # --- files and closing (CPython's socket.makefile / _real_close logic) ----------------
    def makefile(
        self,
        mode: str = "r",
        buffering: int | None = None,
        *,
        encoding: str | None = None,
        errors: str | None = None,
        newline: str | None = None,
    ) -> Any:
        if not set(mode) <= {"r", "w", "b"}:
            raise ValueError(f"invalid mode {mode!r} (only r, w, b allowed)")
        writing = "w" in mode
        reading = "r" in mode or not writing
        binary = "b" in mode
        rawmode = ("r" if reading else "") + ("w" if writing else "")
        raw = _pysocket.SocketIO(self, rawmode)  # type: ignore[arg-type]
        self._io_refs += 1
        if buffering is None:
            buffering = -1
        if buffering < 0:
            buffering = io.DEFAULT_BUFFER_SIZE
        if buffering == 0:
            if not binary:
                raise ValueError("unbuffered streams must be binary")
            return raw
        buffer: Any
        if reading and writing:
            buffer = io.BufferedRWPair(raw, raw, buffering)
        elif reading:
            buffer = io.BufferedReader(raw, buffering)
        else:
            buffer = io.BufferedWriter(raw, buffering)
        if binary:
            return buffer
        text = io.TextIOWrapper(buffer, encoding, errors, newline)
        text.mode = mode  # type: ignore[misc]
        return text

    def _decref_socketios(self) -> None:
        if self._io_refs > 0:
            self._io_refs -= 1
        if self._closed:
            self._real_close()

    def _real_close(self) -> None:
        if self._kernel is not None:
            self._kernel.close()
            return
        sock, signal = self._ref, self._signal
        if sock is None:
            return
        driver = self._the_driver()
        with driver.locked():
            if signal is not None:
                driver.unregister(signal)
            self._ref = None
            sock.close()
        if signal is not None:
            signal.close()
            self._signal = None

    def close(self) -> None:
        self._closed = True
        if self._io_refs <= 0:
            self._real_close()

    def __del__(self) -> None:
        # Unreferenced: closed at the loop's next safe point (never from inside the stack,
        # which a collection on the loop thread could interrupt).
        sock, signal, driver = getattr(self, "_ref", None), getattr(self, "_signal", None), type(self)._driver
        if sock is not None and signal is not None and driver is not None:
            self._ref = self._signal = None
            driver.orphan(sock.close, signal)


def _rebind(fn: types.FunctionType, namespace: dict[str, Any]) -> types.FunctionType:
    new = types.FunctionType(fn.__code__, namespace, fn.__name__, fn.__defaults__, fn.__closure__)
    new.__kwdefaults__ = fn.__kwdefaults__
    new.__doc__ = fn.__doc__
    new.__qualname__ = fn.__qualname__
    new.__module__ = fn.__module__
    return new


def _copy_module(real: types.ModuleType) -> types.ModuleType:
    mod = types.ModuleType(real.__name__, real.__doc__)
    for name, value in vars(real).items():
        if name not in ("__name__", "__doc__", "__spec__", "__loader__", "__package__"):
            mod.__dict__[name] = value
    mod.__dict__["__refstack_shim__"] = True
    return mod


def socket_module(driver: ShimDriver) -> types.ModuleType:
    """A ``socket`` module whose sockets run on ``driver`` (see the module doc)."""
    mod = _copy_module(_pysocket)
    namespace = mod.__dict__
    cls = type("socket", (ShimSocket,), {"_driver": driver, "__module__": "socket", "__qualname__": "socket"})
    namespace["socket"] = namespace["SocketType"] = cls
    for name, value in vars(_pysocket).items():
        if isinstance(value, types.FunctionType) and value.__module__ == "socket":
            namespace[name] = _rebind(value, namespace)

    def setdefaulttimeout(timeout: float | None) -> None:
        _pysocket.setdefaulttimeout(timeout)
        rsocket.setdefaulttimeout(timeout)

    namespace["setdefaulttimeout"] = setdefaulttimeout
    return mod


def select_module() -> types.ModuleType:
    """``select``: the real one's contents (shim sockets have real, signalled descriptors)."""
    return _copy_module(_pyselect)


def selectors_module() -> types.ModuleType:
    """``selectors``: the real one's contents (its selectors call the real select/poll/epoll)."""
    return _copy_module(_pyselectors)


def _dependent(name: str) -> bool:
    return any(name == d or name.startswith(d + ".") for d in _DEPENDENTS)


def install(driver: ShimDriver) -> dict[str, types.ModuleType | None]:
    """Put the shims into ``sys.modules`` (and drop already-imported dependents so that they
    re-import against them); returns what was there, for :func:`uninstall`."""
    previous: dict[str, types.ModuleType | None] = {name: sys.modules.get(name) for name in SHIMMED}
    for loaded in [m for m in sys.modules if _dependent(m)]:
        previous[loaded] = sys.modules.pop(loaded)
    sys.modules["socket"] = socket_module(driver)
    sys.modules["select"] = select_module()
    sys.modules["selectors"] = selectors_module()
    return previous


def uninstall(previous: dict[str, types.ModuleType | None]) -> None:
    """Undo :func:`install`: the real modules back, and the dependents imported against the
    shims meanwhile (``asyncio`` ...) dropped, so that later imports get the real ones."""
    for name in [m for m in sys.modules if _dependent(m) and m not in previous]:
        del sys.modules[name]
    for name, module in previous.items():
        if module is None:
            sys.modules.pop(name, None)
            continue
        sys.modules[name] = module
        parent, _, child = name.rpartition(".")
        if parent and parent in sys.modules:  # `import http.server` re-set http.server
            setattr(sys.modules[parent], child, module)
