"""A live stack's control endpoint: how ``refstack stackdump|fuser|tcpdump`` reach another process.

Each live stack that wants to be seen opens a Unix stream socket named
``<runtime dir>/<pid>-<stack name>.sock``; the runtime directory is
``$REFSTACK_RUNTIME_DIR``, else ``$XDG_RUNTIME_DIR/refstack``, else
``/tmp/refstack-<uid>``, created with mode 0700 (only its owner can reach the stacks,
as Onload's stacks are only shared with their owner by default, EF_SHARE_WITH).
Discovery is a directory listing: the tools never scan ``/proc``.

Protocol: newline-delimited JSON, one request per connection, then one response
line, or for ``tcpdump`` a stream of lines::

    {"op": "hello"}                               -> {"ok": true, "stack": "b", "pid": 4242,
                                                      "cmdline": [...], "created": 1764000000.0, ...}
    {"op": "stackdump", "what": "lots", "stack_id": 0}
                                                  -> {"ok": true, "text": "..."}
    {"op": "tcpdump", "count": 10, "interface": "eth0"}
                                                  -> {"ok": true, "interface": "eth0", "linktype": 1, ...}
                                                     {"frame": "<base64>", "direction": "rx",
                                                      "time": ..., "stack_time": ...}
                                                     ... (count frames; no count: until the client hangs up)
                                                     {"end": true, "frames": 10, "dropped": 0}
    anything wrong                                -> {"ok": false, "error": "one line"}

Consistency with the driving thread.  A stack is sans-I/O and driven by one thread;
the endpoint's ``lock`` (a ``threading.RLock``) is the stack lock, as Onload's
stackdump takes the netif lock (``onload_stackdump --lock``).  **Whoever drives the
stack holds** ``lock`` **while it calls into it** (``receive``, ``poll``,
``next_deadline``, socket calls): :class:`LockedEndpoint` wraps a stack so that a
:class:`~refstack.simulation.Simulation` does so on every call, and a hand-written
loop does ``with endpoint.lock: ...`` around each step.  A request takes the same
lock for the whole time it reads the stack, so a dump is a state between two driver
calls, never one in the middle of one.  ``tcpdump`` adds a tap to ``stack.taps``
under the lock; the tap runs on the driving thread, only copies the frame into a
bounded queue (frames beyond it are counted as dropped, never waited for), and the
endpoint's thread streams the queue to the client.

Clean-up: :meth:`ControlEndpoint.close` (also ``with ControlEndpoint(...)`` and an
``atexit`` hook) removes the socket file.  A process killed outright leaves its file
behind; :func:`discover` removes files whose pid is dead, and the tools skip files
nobody answers on.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import json
import os
import queue
import select
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .tools import stackdump

if TYPE_CHECKING:
    from .stack import Stack

RUNTIME_DIR_ENV = "REFSTACK_RUNTIME_DIR"
SUFFIX = ".sock"
MAX_REQUEST = 64 * 1024  # bytes in one request line
TAP_QUEUE = 65536  # frames a tcpdump client may fall behind before frames are dropped
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101  # bare IPv4/IPv6 (pcap LINKTYPE_RAW; DLT_RAW's value varies by platform)
_SUN_PATH_MAX = 107  # sockaddr_un.sun_path is 108 bytes with the NUL

Message = dict[str, Any]


class ControlError(Exception):
    """A control request failed: the message is one line, fit for the user."""


# --- where stacks live ---------------------------------------------------------------------
def runtime_dir() -> Path:
    """``$REFSTACK_RUNTIME_DIR``, else ``$XDG_RUNTIME_DIR/refstack``, else ``/tmp/refstack-<uid>``."""
    explicit = os.environ.get(RUNTIME_DIR_ENV)
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return Path(xdg) / "refstack"
    return Path(f"/tmp/refstack-{os.getuid()}")


def ensure_runtime_dir(directory: Path) -> Path:
    """Create ``directory`` with mode 0700 if needed; refuse one another user owns."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = directory.stat()
    if info.st_uid != os.getuid():
        raise ControlError(f"runtime directory {directory} belongs to uid {info.st_uid}, not to us")
    if info.st_mode & 0o077:
        directory.chmod(0o700)
    return directory


def socket_path(directory: Path, pid: int, name: str) -> Path:
    """``<directory>/<pid>-<name>.sock``."""
    return directory / f"{pid}-{name}{SUFFIX}"


def parse_socket_name(filename: str) -> tuple[int, str] | None:
    """(pid, stack name) from ``<pid>-<name>.sock``; None for any other file."""
    if not filename.endswith(SUFFIX):
        return None
    pid, sep, name = filename[: -len(SUFFIX)].partition("-")
    if not sep or not name or not pid.isdigit():
        return None
    return int(pid), name


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (signal 0; EPERM means it does)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class StackRef:
    """A stack found in the runtime directory: its process, name and socket."""

    pid: int
    name: str
    path: Path


def discover(directory: Path | None = None) -> list[StackRef]:
    """The stacks whose control sockets are in ``directory`` (default :func:`runtime_dir`),
    oldest socket first.  Files left by dead processes are removed."""
    directory = directory if directory is not None else runtime_dir()
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return []
    except OSError as e:
        raise ControlError(f"cannot list runtime directory {directory}: {e.strerror}") from None
    found: list[tuple[float, StackRef]] = []
    for entry in entries:
        parsed = parse_socket_name(entry.name)
        if parsed is None:
            continue
        pid, name = parsed
        path = Path(entry.path)
        if not pid_alive(pid):
            remove_stale(path)
            continue
        try:
            born = entry.stat(follow_symlinks=False).st_mtime
        except FileNotFoundError:
            continue
        found.append((born, StackRef(pid, name, path)))
    found.sort(key=lambda item: (item[0], item[1].pid, item[1].name))
    return [ref for _, ref in found]


def remove_stale(path: Path) -> None:
    """Remove a control socket nobody serves any more (errors ignored: someone else may)."""
    with contextlib.suppress(OSError):
        path.unlink()


# --- the client side ---------------------------------------------------------------------------
def _connect(ref: StackRef, timeout: float) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(str(ref.path))
    except (ConnectionRefusedError, FileNotFoundError):
        sock.close()
        raise ControlError(
            f"stack {ref.name} (pid {ref.pid}) is not answering: its control socket is stale"
        ) from None
    except OSError as e:
        sock.close()
        raise ControlError(f"cannot reach stack {ref.name} (pid {ref.pid}): {e.strerror or e}") from None
    return sock


def _send(sock: socket.socket, message: Message) -> None:
    sock.sendall(json.dumps(message, separators=(",", ":")).encode() + b"\n")


def stream(ref: StackRef, message: Message, *, timeout: float | None = 10.0) -> Iterator[Message]:
    """Send ``message`` to the stack and yield every response line; a response
    ``{"ok": false}`` raises :class:`ControlError`.  ``timeout`` bounds each read."""
    sock = _connect(ref, 5.0)
    try:
        sock.settimeout(timeout)
        _send(sock, message)
        with sock.makefile("rb") as lines:
            for raw in lines:
                reply = json.loads(raw)
                if not isinstance(reply, dict):
                    raise ControlError(f"stack {ref.name} (pid {ref.pid}) answered {raw[:60]!r}")
                if reply.get("ok") is False:
                    raise ControlError(str(reply.get("error", "request failed")))
                yield reply
    except TimeoutError:
        raise ControlError(f"stack {ref.name} (pid {ref.pid}) did not answer within {timeout} s") from None
    except (ConnectionError, json.JSONDecodeError) as e:
        raise ControlError(f"lost stack {ref.name} (pid {ref.pid}): {e}") from None
    finally:
        sock.close()


def request(ref: StackRef, message: Message, *, timeout: float = 10.0) -> Message:
    """One request, one response."""
    for reply in stream(ref, message, timeout=timeout):
        return reply
    raise ControlError(f"stack {ref.name} (pid {ref.pid}) closed the connection without answering")


@dataclass(frozen=True)
class LiveStack:
    """A stack that answered ``hello``: its number in the listing, socket and answer."""

    stack_id: int
    ref: StackRef
    hello: Message

    @property
    def cmdline(self) -> list[str]:
        return [str(part) for part in self.hello.get("cmdline", [])]


def live_stacks(directory: Path | None = None) -> list[LiveStack]:
    """Every stack in the runtime directory that answers ``hello``, numbered from 0 in
    the order they started (Onload numbers stacks in creation order).  Sockets nobody
    serves any more are removed; a stack that errs is skipped."""
    out: list[LiveStack] = []
    for ref in discover(directory):
        try:
            answer = request(ref, {"op": "hello"}, timeout=5.0)
        except ControlError:
            if not ref.path.exists() or _refused(ref):
                remove_stale(ref.path)
            continue
        out.append(LiveStack(len(out), ref, answer))
    return out


def _refused(ref: StackRef) -> bool:
    """Whether nobody listens on the socket (a leftover whose pid was reused)."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(ref.path))
    except (ConnectionRefusedError, FileNotFoundError):
        return True
    except OSError:
        return False
    finally:
        probe.close()
    return False


# --- the driver's side ----------------------------------------------------------------------------
class LockedEndpoint:
    """A stack as a :class:`~refstack.link.Endpoint` whose every call holds ``lock``:
    give it to a :class:`~refstack.simulation.Simulation` instead of the stack."""

    __slots__ = ("lock", "stack")

    def __init__(self, stack: Stack, lock: threading.RLock) -> None:
        self.stack = stack
        self.lock = lock

    def receive(self, frame: bytes, now: float) -> None:
        with self.lock:
            self.stack.receive(frame, now)

    def poll(self, now: float) -> list[bytes]:
        with self.lock:
            return self.stack.poll(now)

    def next_deadline(self) -> float | None:
        with self.lock:
            return self.stack.next_deadline()


def process_cmdline() -> list[str]:
    """This process's command line (``/proc/self/cmdline``, else ``sys.argv``)."""
    try:
        raw = Path("/proc/self/cmdline").read_bytes()
    except OSError:
        return [sys.executable, *sys.argv]
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


_live: set[ControlEndpoint] = set()
_live_lock = threading.Lock()


def _close_all() -> None:
    for endpoint in list(_live):
        endpoint.close()


atexit.register(_close_all)


class ControlEndpoint:
    """Serve ``stack`` on a Unix socket in the runtime directory (see the module doc).

    ``lock`` is the stack lock the driver holds (a new ``RLock`` when not given; read it
    back from :attr:`lock`).  Use as a context manager, or :meth:`start` and
    :meth:`close`; the socket file also goes at interpreter exit.
    """

    def __init__(
        self, stack: Stack, *, lock: threading.RLock | None = None, directory: Path | None = None
    ) -> None:
        name = stack.name
        if not name or "/" in name or "\0" in name or name in (".", ".."):
            raise ValueError(f"stack name {name!r} cannot name a control socket")
        self.stack = stack
        self.lock = lock if lock is not None else threading.RLock()
        self.directory = directory if directory is not None else runtime_dir()
        self.path = socket_path(self.directory, os.getpid(), name)
        if len(os.fsencode(self.path)) > _SUN_PATH_MAX:
            raise ValueError(f"control socket path {self.path} is longer than {_SUN_PATH_MAX} bytes")
        self.created = time.time()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # --- lifetime ------------------------------------------------------------------------
    def start(self) -> ControlEndpoint:
        """Bind the socket and start the serving thread."""
        if self._listener is not None:
            return self
        ensure_runtime_dir(self.directory)
        with _live_lock:
            if any(e.path == self.path for e in _live):
                raise ValueError(f"a stack named {self.stack.name!r} is already served by this process")
            remove_stale(self.path)  # a file with our own pid is a leftover of an earlier process
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            old = os.umask(0o177)
            try:
                listener.bind(str(self.path))
            finally:
                os.umask(old)
            listener.listen(16)
            listener.settimeout(0.2)
            self._listener = listener
            _live.add(self)
        self._thread = threading.Thread(
            target=self._serve, name=f"refstack-control-{self.stack.name}", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and remove the socket file (idempotent)."""
        self._stop.set()
        with _live_lock:
            _live.discard(self)
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
            remove_stale(self.path)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2.0)

    def __enter__(self) -> ControlEndpoint:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def hello(self) -> Message:
        """Who serves this stack (the ``hello`` response)."""
        return {
            "ok": True,
            "stack": self.stack.name,
            "pid": os.getpid(),
            "uid": os.getuid(),
            "cmdline": process_cmdline(),
            "created": self.created,
            "interfaces": {
                i.name: ("ethernet" if i.is_ethernet else "raw") for i in self.stack.interfaces.values()
            },
        }

    # --- serving ---------------------------------------------------------------------------
    def _serve(self) -> None:
        while not self._stop.is_set():
            listener = self._listener
            if listener is None:
                return
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed under us
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10.0)
            try:
                message = self._read_request(conn)
                self._dispatch(conn, message)
            except ControlError as e:
                with contextlib.suppress(OSError):
                    _send(conn, {"ok": False, "error": str(e)})
            except OSError:
                pass  # the client went away
            except Exception as e:  # a bug in a formatter must not kill the stack's process
                with contextlib.suppress(OSError):
                    _send(conn, {"ok": False, "error": f"internal error: {type(e).__name__}: {e}"})

    @staticmethod
    def _read_request(conn: socket.socket) -> Message:
        data = b""
        while b"\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
            if len(data) > MAX_REQUEST:
                raise ControlError(f"request longer than {MAX_REQUEST} bytes")
        try:
            message = json.loads(data.split(b"\n", 1)[0] or b"null")
        except json.JSONDecodeError as e:
            raise ControlError(f"request is not JSON: {e}") from None
        if not isinstance(message, dict):
            raise ControlError('a request is a JSON object such as {"op": "hello"}')
        return message

    def _dispatch(self, conn: socket.socket, message: Message) -> None:
        op = message.get("op")
        if op == "hello":
            with self.lock:
                answer = self.hello()
            _send(conn, answer)  # never write to a client while holding the stack lock
        elif op == "stackdump":
            _send(conn, {"ok": True, "text": self._stackdump(message)})
        elif op == "tcpdump":
            self._tcpdump(conn, message)
        else:
            raise ControlError(f"unknown op {op!r}: hello, stackdump or tcpdump")

    def _stackdump(self, message: Message) -> str:
        what = message.get("what", "lots")
        stack_id = message.get("stack_id", 0)
        if not isinstance(what, str) or what not in stackdump.STACK_COMMANDS:
            raise ControlError(f"unknown stackdump command {what!r}")
        if not isinstance(stack_id, int):
            raise ControlError("stack_id must be an integer")
        process = stackdump.ProcessInfo(os.getpid(), process_cmdline(), self.created, dict(os.environ))
        with self.lock:
            return stackdump.render(self.stack, what, stack_id=stack_id, process=process, wall=time.time())

    def _tcpdump(self, conn: socket.socket, message: Message) -> None:
        count = message.get("count")
        if count is not None and (not isinstance(count, int) or count < 0):
            raise ControlError("count must be a whole number of frames")
        with self.lock:
            name = message.get("interface") or self.stack.primary.name
            iface = self.stack.interfaces.get(name) if isinstance(name, str) else None
            if iface is None:
                known = ", ".join(self.stack.interfaces)
                raise ControlError(f"stack {self.stack.name} has no interface {name!r} (it has {known})")
            frames: queue.Queue[tuple[str, float, float, bytes]] = queue.Queue(TAP_QUEUE)
            dropped = [0]

            def tap(direction: str, interface: str, now: float, frame: bytes) -> None:
                if interface == iface.name:
                    try:
                        frames.put_nowait((direction, time.time(), now, bytes(frame)))
                    except queue.Full:
                        dropped[0] += 1

            self.stack.taps.append(tap)
        try:
            linktype = LINKTYPE_ETHERNET if iface.is_ethernet else LINKTYPE_RAW
            _send(conn, {"ok": True, "stack": self.stack.name, "interface": iface.name, "linktype": linktype})
            sent = self._pump(conn, frames, count)
            _send(conn, {"end": True, "frames": sent, "dropped": dropped[0]})
        finally:
            with self.lock, contextlib.suppress(ValueError):
                self.stack.taps.remove(tap)

    def _pump(
        self, conn: socket.socket, frames: queue.Queue[tuple[str, float, float, bytes]], count: int | None
    ) -> int:
        """Stream frames until ``count`` went out, the client hangs up or we close."""
        sent = 0
        while (count is None or sent < count) and not self._stop.is_set():
            try:
                direction, wall, now, frame = frames.get(timeout=0.2)
            except queue.Empty:
                if _hung_up(conn):
                    break
                continue
            line = {
                "frame": base64.b64encode(frame).decode(),
                "direction": direction,
                "time": wall,
                "stack_time": now,
            }
            _send(conn, line)
            sent += 1
        return sent


def _hung_up(conn: socket.socket) -> bool:
    """Whether the client closed its end (readable with nothing to read)."""
    readable, _, _ = select.select([conn], [], [], 0)
    if not readable:
        return False
    try:
        return conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def serve(stack: Stack, *, lock: threading.RLock | None = None) -> ControlEndpoint:
    """Start a control endpoint for ``stack`` (close it, or use it in ``with``)."""
    return ControlEndpoint(stack, lock=lock).start()
