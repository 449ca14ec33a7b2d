"""The BSD socket API over refstack's socket cores, mirroring Python's :mod:`socket` on Linux.

``refstack.socket.socket(AF_INET, SOCK_DGRAM)`` behaves as ``socket.socket`` does on
Linux, errno for errno, but runs on a refstack :class:`~refstack.stack.Stack` through a
:class:`~refstack.runtime.Runtime` (``runtime=``, or :func:`refstack.runtime.current`).

Each call is one non-blocking attempt on the socket core plus the condition it waits for
(DESIGN.md, "Blocking without threads")::

    attempt -> done                       return the result
            -> BlockingIOError            non-blocking socket: raise EAGAIN
                                          otherwise: driver.wait_until(condition, time left)
                                          and attempt again; TimeoutError("timed out") at
                                          the socket timeout

Timeouts follow Python: ``settimeout(None)`` blocks (``send`` then queues everything, as
Linux's blocking ``tcp_sendmsg`` does), ``settimeout(0)`` never blocks, ``settimeout(t)``
waits at most ``t`` seconds per call (``sendall``: in total) and then does one attempt,
as CPython does over a non-blocking descriptor.

Errors are ``OSError(errno, os.strerror(errno))`` so that the subclasses
(``ConnectionRefusedError``, ``BrokenPipeError``, ...) come out as in CPython; a core's
own wording, when it says more, is kept as a note on the exception.  The errnos are those
Linux 6.18 gives (checked against the kernel of this project's reference machine), for
example ``EPIPE`` -- not ``ENOTCONN`` -- for ``send`` on a TCP socket that never connected,
and ``EOPNOTSUPP`` for ``listen``/``accept`` on a UDP socket.

Addresses are ``(host, port)`` with a dotted-quad host; ``""`` is INADDR_ANY,
``"<broadcast>"`` INADDR_BROADCAST and ``"localhost"`` 127.0.0.1.  There is no name
resolution: any other name raises :class:`gaierror` (``EAI_NONAME``).

TCP urgent data is Linux's (see :mod:`refstack.tcp.urgent`): ``send(data, MSG_OOB)``
marks the last octet sent as urgent, ``recv(1, MSG_OOB)`` returns the one urgent octet
(it never blocks), ``SO_OOBINLINE`` leaves it in the normal stream, ``POLLPRI`` (select's
exceptional set) reports it, and :func:`sockatmark` is ``SIOCATMARK``.

Not modelled (calls that need them fail with ``ENOPROTOOPT``/``EOPNOTSUPP`` and a note
saying so): ancillary data, ``SO_REUSEPORT``, ``MSG_MORE``, IPv6, ``SIGURG``.
"""

from __future__ import annotations

import errno as _errno
import functools
import math
import operator as _operator
import os as _os
import socket as _pysocket
import struct as _struct
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, Final, Protocol, TypeVar

from . import runtime as _runtime
from . import select as _sel
from .runtime import Condition, Runtime
from .udp import PortsExhaustedError, UdpEndpoint
from .wire.addresses import Ipv4Addr, ipv4_str

__all__ = [
    "AF_INET",
    "IPPROTO_IP",
    "IPPROTO_TCP",
    "IPPROTO_UDP",
    "SOCK_DGRAM",
    "SOCK_STREAM",
    "SOL_SOCKET",
    "error",
    "gaierror",
    "getdefaulttimeout",
    "htonl",
    "htons",
    "inet_aton",
    "inet_ntoa",
    "ntohl",
    "ntohs",
    "setdefaulttimeout",
    "sockatmark",
    "socket",
    "tcp_info",
    "timeout",
]

# --- constants: Linux values (the same as Python's socket module on Linux) ----------------------
AF_UNSPEC: Final = 0
AF_INET: Final = 2
SOCK_STREAM: Final = 1
SOCK_DGRAM: Final = 2
SOCK_RAW: Final = 3
SOCK_NONBLOCK: Final = 0o4000
SOCK_CLOEXEC: Final = 0o2000000

SOL_SOCKET: Final = 1
SO_REUSEADDR: Final = 2
SO_TYPE: Final = 3
SO_ERROR: Final = 4
SO_BROADCAST: Final = 6
SO_SNDBUF: Final = 7
SO_RCVBUF: Final = 8
SO_KEEPALIVE: Final = 9
SO_OOBINLINE: Final = 10
SO_LINGER: Final = 13
SO_REUSEPORT: Final = 15
SO_ACCEPTCONN: Final = 30
SO_PROTOCOL: Final = 38
SO_DOMAIN: Final = 39

IPPROTO_IP: Final = 0
IPPROTO_TCP: Final = 6
IPPROTO_UDP: Final = 17
SOL_IP: Final = IPPROTO_IP
SOL_TCP: Final = IPPROTO_TCP
SOL_UDP: Final = IPPROTO_UDP

IP_TOS: Final = 1
IP_TTL: Final = 2
IP_MTU_DISCOVER: Final = 10
IP_RECVERR: Final = 11
IP_PMTUDISC_DONT: Final = 0
IP_PMTUDISC_WANT: Final = 1
IP_PMTUDISC_DO: Final = 2
IP_PMTUDISC_PROBE: Final = 3
IP_PMTUDISC_INTERFACE: Final = 4
IP_PMTUDISC_OMIT: Final = 5
IP_MULTICAST_IF: Final = 32
IP_MULTICAST_TTL: Final = 33
IP_MULTICAST_LOOP: Final = 34
IP_ADD_MEMBERSHIP: Final = 35
IP_DROP_MEMBERSHIP: Final = 36
IP_ADD_SOURCE_MEMBERSHIP: Final = 39
IP_DROP_SOURCE_MEMBERSHIP: Final = 40
IP_MULTICAST_ALL: Final = 49

TCP_NODELAY: Final = 1
TCP_MAXSEG: Final = 2
TCP_CORK: Final = 3
TCP_KEEPIDLE: Final = 4
TCP_KEEPINTVL: Final = 5
TCP_KEEPCNT: Final = 6
TCP_INFO: Final = 11
TCP_QUICKACK: Final = 12
TCP_USER_TIMEOUT: Final = 18

MSG_OOB: Final = 0x1
MSG_PEEK: Final = 0x2
MSG_TRUNC: Final = 0x20
MSG_DONTWAIT: Final = 0x40
MSG_EOR: Final = 0x80
MSG_WAITALL: Final = 0x100
MSG_NOSIGNAL: Final = 0x4000

SHUT_RD: Final = 0
SHUT_WR: Final = 1
SHUT_RDWR: Final = 2

SOMAXCONN: Final = 4096
INADDR_ANY: Final = 0
INADDR_BROADCAST: Final = 0xFFFFFFFF

error = OSError
timeout = TimeoutError
gaierror = _pysocket.gaierror
herror = _pysocket.herror
inet_aton = _pysocket.inet_aton
inet_ntoa = _pysocket.inet_ntoa
htons = _pysocket.htons
ntohs = _pysocket.ntohs
htonl = _pysocket.htonl
ntohl = _pysocket.ntohl

_ANY: Final = bytes(4)
_BROADCAST: Final = b"\xff\xff\xff\xff"
_HOSTS: Final = {"": _ANY, "<broadcast>": _BROADCAST, "localhost": b"\x7f\x00\x00\x01"}
_SOCK_MIN_RCVBUF: Final = 2304  # Linux SOCK_MIN_RCVBUF on x86-64 (2048 + an aligned sk_buff)
_SOCK_MIN_SNDBUF: Final = 2 * _SOCK_MIN_RCVBUF
_TCP_MSS_DEFAULT: Final = 536  # RFC 9293 §3.7.1; Linux TCP_MSS_DEFAULT (mss_cache before connect)
_TCP_MIN_MSS: Final = 88  # Linux TCP_MIN_MSS
_MAX_TCP_WINDOW: Final = 32767  # Linux: the largest TCP_MAXSEG accepted
_MAX_TCP_KEEPIDLE: Final = 32767
_MAX_TCP_KEEPINTVL: Final = 32767
_MAX_TCP_KEEPCNT: Final = 127
_LINGER_FOREVER: Final = 0x7FFFFFFF
_INT: Final = _struct.Struct("=i")
_LINGER: Final = _struct.Struct("=ii")
_NOT_MODELLED: Final = "not modelled by refstack"
_READ_EVENTS: Final = 0xFFFF & ~(_sel.POLLOUT | _sel.POLLWRNORM | _sel.POLLWRBAND)

Address = tuple[Ipv4Addr, int]
_T = TypeVar("_T")


# --- errors ------------------------------------------------------------------------------------
def _err(code: int, note: str | None = None) -> OSError:
    """``OSError(code, strerror)``: CPython's subclass for ``code``, with an optional note."""
    exc = OSError(code, _os.strerror(code))
    if note:
        exc.add_note(f"refstack: {note}")
    return exc


def _would_block() -> BlockingIOError:
    return BlockingIOError(_errno.EAGAIN, _os.strerror(_errno.EAGAIN))


def _timed_out() -> TimeoutError:
    return TimeoutError("timed out")


@contextmanager
def _translated() -> Iterator[None]:
    """Re-raise a core's ``OSError`` as CPython would build it (strerror text, right subclass)."""
    try:
        yield
    except (BlockingIOError, PortsExhaustedError):  # the latter: EAGAIN that is a failure
        raise
    except OSError as e:
        if e.errno is None or isinstance(e, _pysocket.gaierror):
            raise
        detail = e.strerror if e.strerror and e.strerror != _os.strerror(e.errno) else None
        if detail == _errno.errorcode.get(e.errno):
            detail = None
        raise _err(e.errno, detail) from None


# --- addresses ---------------------------------------------------------------------------------
def _parse_host(host: object) -> Ipv4Addr:
    if isinstance(host, bytes | bytearray):
        host = bytes(host).decode("ascii", "replace")
    if not isinstance(host, str):
        raise TypeError(f"str, bytes or bytearray expected, not {type(host).__name__}")
    known = _HOSTS.get(host)
    if known is not None:
        return known
    parts = host.split(".")
    if len(parts) == 4 and all(p.isascii() and p.isdigit() and len(p) <= 3 and int(p) <= 255 for p in parts):
        return bytes(int(p) for p in parts)
    exc = gaierror(_pysocket.EAI_NONAME, "Name or service not known")
    exc.add_note(f"refstack: {host!r} is not a dotted quad and refstack does no name resolution")
    raise exc


def _parse_address(address: object, call: str) -> Address:
    """``(host, port)`` -> (4 bytes, port), with CPython's errors for malformed ones."""
    if not isinstance(address, tuple):
        raise TypeError(f"{call}(): AF_INET address must be tuple, not {type(address).__name__}")
    if len(address) != 2:
        raise TypeError("AF_INET address must be a pair (host, port)")
    host, port = address
    port = _operator.index(port)
    if not 0 <= port <= 0xFFFF:
        raise OverflowError(f"{call}(): port must be 0-65535.")
    return _parse_host(host), port


def _format(addr: Address | None) -> tuple[str, int]:
    if addr is None:
        return ("0.0.0.0", 0)
    return (ipv4_str(addr[0]), addr[1])


def _as_bytes(data: object) -> bytes:
    if isinstance(data, bytes):
        return data
    try:
        return memoryview(data).tobytes()  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"a bytes-like object is required, not '{type(data).__name__}'") from None


# --- the TCP core interface (stack.tcp.endpoint()) ------------------------------------------------
class _Named(Protocol):
    @property
    def name(self) -> str: ...


class TcpCore(Protocol):
    """One TCP socket of ``stack.tcp`` as this module uses it (see the TCP core for the semantics)."""

    state: _Named
    local: Address | None
    remote: Address | None
    nodelay: bool
    keepalive: bool
    keepidle: float
    keepintvl: float
    keepcnt: int
    user_timeout: float
    recverr: bool
    linger: int | None
    reuseaddr: bool
    rcvbuf: int
    sndbuf: int
    sndbuf_locked: bool
    rcvbuf_locked: bool
    maxseg: int | None
    ttl: int | None
    tos: int
    quickack: bool
    cork: bool
    connecting: bool
    readable: bool
    writable: bool
    hup: bool
    rdhup: bool
    error: int
    soft_error: int
    activity: int
    oobinline: bool
    urgent_pending: bool
    at_mark: bool

    def bind(self, addr: bytes, port: int) -> None: ...
    def listen(self, backlog: int) -> None: ...
    def accept(self) -> TcpCore: ...
    def connect(self, addr: bytes, port: int, now: float) -> None: ...
    def connect_result(self) -> int: ...
    def send(self, data: bytes, now: float, *, urgent: bool = False) -> int: ...
    def recv(self, n: int, *, peek: bool = False) -> bytes: ...
    def recv_urgent(self, *, peek: bool = False) -> bytes: ...
    def shutdown(self, how: int, now: float) -> None: ...
    def close(self, now: float) -> None: ...
    def take_error(self) -> int: ...
    def tcp_info(self) -> dict[str, int]: ...


# RFC 9293 state names (as enum member names) -> Linux's TCP_* state numbers (tcpi_state).
_LINUX_STATE: Final = {
    "ESTABLISHED": 1,
    "SYN_SENT": 2,
    "SYN_RECEIVED": 3,
    "FIN_WAIT_1": 4,
    "FIN_WAIT_2": 5,
    "TIME_WAIT": 6,
    "CLOSED": 7,
    "CLOSE_WAIT": 8,
    "LAST_ACK": 9,
    "LISTEN": 10,
    "CLOSING": 11,
}
_STATE_ALIASES: Final = {
    "SYN_RCVD": "SYN_RECEIVED",
    "SYN_RECV": "SYN_RECEIVED",
    "FIN_WAIT1": "FIN_WAIT_1",
    "FIN_WAIT2": "FIN_WAIT_2",
    "CLOSE": "CLOSED",
}


def _state(core: TcpCore) -> str:
    """The core's state as an RFC 9293 name with underscores ("SYN_SENT", "FIN_WAIT_1", ...)."""
    name = core.state.name.upper().replace("-", "_")
    return _STATE_ALIASES.get(name, name)


# struct tcp_info (include/uapi/linux/tcp.h), the prefix up to tcpi_total_retrans: eight u8
# (state, ca_state, retransmits, probes, backoff, options, snd_wscale:4|rcv_wscale:4,
# delivery_rate_app_limited:1|fastopen_client_fail:2) then 24 u32, native byte order, 104 bytes.
_TCP_INFO: Final = _struct.Struct("=8B24I")
_TCP_INFO_U8: Final = (
    "tcpi_state",
    "tcpi_ca_state",
    "tcpi_retransmits",
    "tcpi_probes",
    "tcpi_backoff",
    "tcpi_options",
)
_TCP_INFO_U32: Final = (
    "tcpi_rto",
    "tcpi_ato",
    "tcpi_snd_mss",
    "tcpi_rcv_mss",
    "tcpi_unacked",
    "tcpi_sacked",
    "tcpi_lost",
    "tcpi_retrans",
    "tcpi_fackets",
    "tcpi_last_data_sent",
    "tcpi_last_ack_sent",
    "tcpi_last_data_recv",
    "tcpi_last_ack_recv",
    "tcpi_pmtu",
    "tcpi_rcv_ssthresh",
    "tcpi_rtt",
    "tcpi_rttvar",
    "tcpi_snd_ssthresh",
    "tcpi_snd_cwnd",
    "tcpi_advmss",
    "tcpi_reordering",
    "tcpi_rcv_rtt",
    "tcpi_rcv_space",
    "tcpi_total_retrans",
)


def _pack_tcp_info(info: dict[str, int]) -> bytes:
    u8 = [info.get(name, 0) & 0xFF for name in _TCP_INFO_U8]
    u8.append((info.get("tcpi_snd_wscale", 0) & 0xF) | (info.get("tcpi_rcv_wscale", 0) & 0xF) << 4)
    app_limited = info.get("tcpi_delivery_rate_app_limited", 0) & 1
    u8.append(app_limited | (info.get("tcpi_fastopen_client_fail", 0) & 3) << 1)
    return _TCP_INFO.pack(*u8, *(info.get(name, 0) & 0xFFFFFFFF for name in _TCP_INFO_U32))


def _tcp_layer_endpoint(rt: Runtime) -> Callable[[], TcpCore]:
    tcp: Any = getattr(rt.stack, "tcp", None)
    if tcp is None:
        raise _err(
            _errno.EPROTONOSUPPORT,
            f"stack {rt.stack.name!r} has no TCP core yet (stack.tcp is missing)",
        )
    endpoint: Callable[[], TcpCore] = tcp.endpoint
    return endpoint


# --- option values -----------------------------------------------------------------------------
def _pack_int(value: int) -> bytes:
    return _INT.pack(value)


def _opt_int(raw: bytes, level: int) -> int:
    """An int option's value: a C int, or for IPPROTO_IP one byte (as Linux's ip_setsockopt)."""
    if len(raw) >= _INT.size:
        value: int = _INT.unpack_from(raw)[0]
        return value
    if level == IPPROTO_IP:
        return raw[0] if raw else 0
    raise _err(_errno.EINVAL)


def _not_modelled(what: str) -> OSError:
    return _err(_errno.ENOPROTOOPT, f"{what} is {_NOT_MODELLED}")


def _enum(cls: Any, value: int) -> int:
    try:
        member: int = cls(value)
    except ValueError:
        return value
    return member


_MREQ_LEN: Final = 8  # struct ip_mreq {imr_multiaddr, imr_interface}
_MREQN_LEN: Final = 12  # struct ip_mreqn {imr_multiaddr, imr_address, imr_ifindex}
_MREQ_SOURCE_LEN: Final = 12  # struct ip_mreq_source {imr_multiaddr, imr_interface, imr_sourceaddr}


def _mreq(raw: bytes, *, multicast_if: bool = False) -> tuple[bytes, bytes, int]:
    """(group, interface address, interface index) from an ``ip_mreqn`` (12 bytes or
    more) or ``ip_mreq`` (8); IP_MULTICAST_IF also takes a bare ``in_addr`` (4)."""
    if len(raw) >= _MREQN_LEN:
        index: int = _INT.unpack_from(raw, 8)[0]
        return raw[0:4], raw[4:8], index
    if len(raw) >= _MREQ_LEN:
        return raw[0:4], raw[4:8], 0
    if multicast_if and len(raw) >= 4:
        return bytes(4), raw[0:4], 0
    raise _err(_errno.EINVAL)


def lingering(core: TcpCore) -> bool:
    """Whether a closed connection still waits for its FIN to be acknowledged
    (FIN-WAIT-1, CLOSING, LAST-ACK: what SO_LINGER's close waits out)."""
    return core.state.name in ("FIN_WAIT_1", "CLOSING", "LAST_ACK")


# --- open files: the kernel side of a socket -----------------------------------------------------
class _SocketFile:
    """A socket as the descriptor table holds it: the core plus what Linux keeps in ``struct sock``.

    Every operation here is one non-blocking attempt: it completes, raises
    ``BlockingIOError`` or raises the ``OSError`` Linux gives.  The ``*_ready`` methods are
    the conditions the blocking layer waits for.
    """

    kind: int
    protocol: int
    # Options each protocol keeps in its core or here (Linux keeps them for every socket).
    keepalive: bool
    broadcast: bool
    linger: int | None
    pmtudisc: int
    oobinline: bool

    def __init__(self, rt: Runtime, proto: int) -> None:
        self.rt = rt
        self.proto = proto
        self.bumps = 0  # wake-ups this layer causes (shutdown on UDP)
        self.linger_secs = 0  # the l_linger Linux keeps while SO_LINGER is off

    # --- OpenFile ---------------------------------------------------------------------------
    def poll_mask(self) -> int:
        raise NotImplementedError

    @property
    def activity(self) -> int:
        raise NotImplementedError

    @property
    def wake_events(self) -> int:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError

    # --- attempts --------------------------------------------------------------------------
    def bind(self, addr: Ipv4Addr, port: int) -> None:
        raise NotImplementedError

    def listen(self, backlog: int) -> None:
        raise _err(_errno.EOPNOTSUPP)

    def accept(self) -> tuple[_SocketFile, Address]:
        raise _err(_errno.EOPNOTSUPP)

    def connect(self, addr: Ipv4Addr, port: int, now: float) -> None:
        raise NotImplementedError

    def connect_pending(self) -> bool:
        return False

    def connect_error(self) -> int:
        return 0

    def send(self, data: bytes, dest: Address | None, now: float, *, urgent: bool = False) -> int:
        """Queue or send ``data``; ``urgent`` (MSG_OOB, TCP only) marks it as urgent data."""
        raise NotImplementedError

    def recv(self, n: int, *, peek: bool, may_wait: bool) -> tuple[bytes, Address | None, int]:
        """(data cut to ``n``, source, msg_flags).  ``may_wait``: the caller would sleep in the
        kernel if this blocked (a UDP reader woken by SHUT_RD then gets 0 bytes)."""
        raise NotImplementedError

    def shutdown(self, how: int, now: float) -> None:
        raise NotImplementedError

    def sockname(self) -> Address | None:
        raise NotImplementedError

    def peername(self) -> Address:
        raise NotImplementedError

    def take_error(self) -> int:
        raise NotImplementedError

    def accepting(self) -> bool:
        return False

    def at_mark(self) -> bool:
        """SIOCATMARK: the next octet to read is TCP's urgent octet."""
        return False

    # --- conditions ------------------------------------------------------------------------
    def recv_ready(self) -> bool:
        raise NotImplementedError

    def send_ready(self) -> bool:
        raise NotImplementedError

    def accept_ready(self) -> bool:
        return True

    # --- options ---------------------------------------------------------------------------
    def getopt(self, level: int, name: int) -> bytes:
        if level == SOL_SOCKET:
            return self._get_socket_opt(name)
        if level == IPPROTO_IP:
            return self._get_ip_opt(name)
        return self._get_proto_opt(level, name)

    def setopt(self, level: int, name: int, raw: bytes) -> None:
        if level == SOL_SOCKET:
            self._set_socket_opt(name, raw)
        elif level == IPPROTO_IP:
            self._set_ip_opt(name, raw)
        else:
            self._set_proto_opt(level, name, raw)

    def _get_socket_opt(self, name: int) -> bytes:
        core = self._core_opts()
        value: int
        if name == SO_TYPE:
            value = self.kind
        elif name == SO_PROTOCOL:
            value = self.protocol
        elif name == SO_DOMAIN:
            value = AF_INET
        elif name == SO_ERROR:
            value = self.take_error()
        elif name == SO_ACCEPTCONN:
            value = int(self.accepting())
        elif name == SO_REUSEADDR:
            value = int(core.reuseaddr)
        elif name == SO_REUSEPORT:
            value = 0
        elif name == SO_RCVBUF:
            value = core.rcvbuf
        elif name == SO_SNDBUF:
            value = core.sndbuf
        elif name == SO_KEEPALIVE:
            value = int(self.keepalive)
        elif name == SO_OOBINLINE:
            value = int(self.oobinline)
        elif name == SO_BROADCAST:
            value = int(self.broadcast)
        elif name == SO_LINGER:
            linger = self.linger
            return _LINGER.pack(0, self.linger_secs) if linger is None else _LINGER.pack(1, linger)
        else:
            raise _err(_errno.ENOPROTOOPT)
        return _pack_int(value)

    def _set_socket_opt(self, name: int, raw: bytes) -> None:
        core = self._core_opts()
        profile = self.rt.stack.profile
        if name in (SO_TYPE, SO_PROTOCOL, SO_DOMAIN, SO_ERROR, SO_ACCEPTCONN):
            raise _err(_errno.ENOPROTOOPT)
        if name == SO_LINGER:
            if len(raw) < _LINGER.size:
                raise _err(_errno.EINVAL)
            onoff, secs = _LINGER.unpack_from(raw)
            self.linger_secs = secs if secs >= 0 else _LINGER_FOREVER
            self.linger = self.linger_secs if onoff else None
            return
        value = _opt_int(raw, SOL_SOCKET)
        if name == SO_REUSEADDR:
            core.reuseaddr = value != 0
        elif name == SO_REUSEPORT:
            if value:
                raise _not_modelled("SO_REUSEPORT")
        elif name == SO_RCVBUF:  # Linux sock_setsockopt: clamp to rmem_max, then double
            core.rcvbuf = max(min(value & 0xFFFFFFFF, profile.rmem_max) * 2, _SOCK_MIN_RCVBUF)
            if isinstance(self, _TcpFile):
                self.core.rcvbuf_locked = True  # Linux SOCK_RCVBUF_LOCK: no autotuning after this
        elif name == SO_SNDBUF:
            core.sndbuf = max(min(value & 0xFFFFFFFF, profile.wmem_max) * 2, _SOCK_MIN_SNDBUF)
            if isinstance(self, _TcpFile):
                self.core.sndbuf_locked = True  # Linux SOCK_SNDBUF_LOCK: no autotuning after this
        elif name == SO_KEEPALIVE:
            self.keepalive = value != 0
        elif name == SO_OOBINLINE:
            self.oobinline = value != 0
        elif name == SO_BROADCAST:
            self.broadcast = value != 0
        else:
            raise _err(_errno.ENOPROTOOPT)

    def _get_ip_opt(self, name: int) -> bytes:
        core = self._core_opts()
        if name == IP_TTL:
            return _pack_int(core.ttl if core.ttl is not None else self.rt.stack.profile.ip_default_ttl)
        if name == IP_TOS:
            return _pack_int(core.tos)
        if name == IP_MTU_DISCOVER:
            return _pack_int(self.pmtudisc)
        raise _err(_errno.ENOPROTOOPT)

    def _set_ip_opt(self, name: int, raw: bytes) -> None:
        core = self._core_opts()
        value = _opt_int(raw, IPPROTO_IP)
        if name == IP_TTL:
            if value == -1:
                core.ttl = None  # back to ip_default_ttl
            elif 1 <= value <= 255:
                core.ttl = value
            else:
                raise _err(_errno.EINVAL)
        elif name == IP_TOS:
            self.set_tos(value & 0xFF)
        elif name == IP_MTU_DISCOVER:
            if not IP_PMTUDISC_DONT <= value <= IP_PMTUDISC_OMIT:
                raise _err(_errno.EINVAL)
            self.pmtudisc = value
        else:
            raise _err(_errno.ENOPROTOOPT)

    def _get_proto_opt(self, level: int, name: int) -> bytes:
        raise _err(_errno.EOPNOTSUPP)

    def _set_proto_opt(self, level: int, name: int, raw: bytes) -> None:
        raise _err(_errno.ENOPROTOOPT)

    def _core_opts(self) -> _CoreOptions:
        raise NotImplementedError

    def set_tos(self, tos: int) -> None:
        self._core_opts().tos = tos


class _CoreOptions(Protocol):
    """The option attributes both socket cores have."""

    reuseaddr: bool
    rcvbuf: int
    sndbuf: int
    ttl: int | None
    tos: int


_PMTUDISC_TO_CORE: Final[dict[int, bool | None]] = {
    IP_PMTUDISC_DONT: False,
    IP_PMTUDISC_WANT: None,
    IP_PMTUDISC_DO: True,
}


class _UdpFile(_SocketFile):
    """A UDP socket: :class:`~refstack.udp.UdpEndpoint` plus the shutdown state Linux keeps."""

    kind = SOCK_DGRAM
    protocol = IPPROTO_UDP

    def __init__(self, rt: Runtime, proto: int) -> None:
        super().__init__(rt, proto)
        self.core: UdpEndpoint = rt.stack.udp.endpoint()
        self.shut_rd = False
        self.shut_wr = False
        self.keepalive = False  # stored, as Linux does for any socket; no effect on UDP
        self.linger = None
        self.oobinline = False  # likewise

    def _core_opts(self) -> _CoreOptions:
        return self.core

    @property
    def broadcast(self) -> bool:
        return self.core.broadcast

    @broadcast.setter
    def broadcast(self, value: bool) -> None:
        self.core.broadcast = value

    @property
    def pmtudisc(self) -> int:
        return {False: IP_PMTUDISC_DONT, None: IP_PMTUDISC_WANT, True: IP_PMTUDISC_DO}[self.core.pmtudisc]

    @pmtudisc.setter
    def pmtudisc(self, value: int) -> None:
        if value not in _PMTUDISC_TO_CORE:
            raise _not_modelled(f"IP_MTU_DISCOVER {value} (only DONT, WANT and DO are)")
        self.core.pmtudisc = _PMTUDISC_TO_CORE[value]

    # --- multicast options (Linux do_ip_setsockopt / do_ip_getsockopt) --------------------
    def _get_ip_opt(self, name: int) -> bytes:
        core = self.core
        if name == IP_MULTICAST_TTL:
            return _pack_int(core.mc_ttl)
        if name == IP_MULTICAST_LOOP:
            return _pack_int(int(core.mc_loop))
        if name == IP_MULTICAST_ALL:
            return _pack_int(int(core.mc_all))
        if name == IP_MULTICAST_IF:
            return bytes(core.mc_if)
        return super()._get_ip_opt(name)

    def _set_ip_opt(self, name: int, raw: bytes) -> None:
        core = self.core
        now = self.rt.now()
        if name in (IP_ADD_MEMBERSHIP, IP_DROP_MEMBERSHIP):
            group, address, ifindex = _mreq(raw)
            (core.join if name == IP_ADD_MEMBERSHIP else core.leave)(group, address, ifindex, None, now)
        elif name in (IP_ADD_SOURCE_MEMBERSHIP, IP_DROP_SOURCE_MEMBERSHIP):
            if len(raw) != _MREQ_SOURCE_LEN:
                raise _err(_errno.EINVAL)
            group, address, source = raw[0:4], raw[4:8], raw[8:12]
            (core.join if name == IP_ADD_SOURCE_MEMBERSHIP else core.leave)(group, address, 0, source, now)
        elif name == IP_MULTICAST_IF:
            _, address, ifindex = _mreq(raw, multicast_if=True)
            if not ifindex and address == bytes(4):
                core.mc_if, core.mc_ifindex = address, 0
                return
            iface = self.rt.stack.udp.multicast_interface(ifindex, address)
            if iface is None:
                raise _err(_errno.EADDRNOTAVAIL)
            core.mc_if, core.mc_ifindex = address, iface.index
        elif name in (IP_MULTICAST_TTL, IP_MULTICAST_LOOP, IP_MULTICAST_ALL):
            if not raw:
                raise _err(_errno.EINVAL)
            value = _opt_int(raw, IPPROTO_IP)
            if name == IP_MULTICAST_TTL:
                if value == -1:
                    value = 1
                if not 0 <= value <= 255:
                    raise _err(_errno.EINVAL)
                core.mc_ttl = value
            elif name == IP_MULTICAST_LOOP:
                core.mc_loop = value != 0
            else:
                core.mc_all = value != 0
        else:
            super()._set_ip_opt(name, raw)

    # Linux datagram_poll(): error, shutdown, queue, then writability.
    def poll_mask(self) -> int:
        core = self.core
        mask = 0
        if core.error:
            mask |= _sel.POLLERR
        if self.shut_rd:
            mask |= _sel.POLLRDHUP | _sel.POLLIN | _sel.POLLRDNORM
        if self.shut_rd and self.shut_wr:
            mask |= _sel.POLLHUP
        if core.rx:
            mask |= _sel.POLLIN | _sel.POLLRDNORM
        if core.writable:
            mask |= _sel.POLLOUT | _sel.POLLWRNORM | _sel.POLLWRBAND
        return mask

    @property
    def activity(self) -> int:
        return self.core.activity + self.bumps

    @property
    def wake_events(self) -> int:
        return _READ_EVENTS  # UDP's activity is arrivals, errors and shutdown, never send space

    def release(self) -> None:
        self.core.close()

    def bind(self, addr: Ipv4Addr, port: int) -> None:
        self.core.bind(addr, port)

    def connect(self, addr: Ipv4Addr, port: int, now: float) -> None:
        self.core.connect(addr, port, now)

    def send(self, data: bytes, dest: Address | None, now: float, *, urgent: bool = False) -> int:
        if self.shut_wr:  # Linux sock_alloc_send_pskb: a pending error first, then EPIPE
            pending = self.core.take_error()
            raise _err(pending or _errno.EPIPE)
        self.rt.stack.onload.udp_send(self.core.onload, len(data))  # Onload packet buffers
        return self.core.sendto(data, dest, now)

    def recv(self, n: int, *, peek: bool, may_wait: bool) -> tuple[bytes, Address | None, int]:
        core = self.core
        if core.error:
            raise _err(core.take_error())
        if not core.rx:
            if self.shut_rd and may_wait:
                return b"", None, 0  # a reader woken by shutdown(SHUT_RD) gets 0 bytes
            raise _would_block()
        data, source = core.rx[0] if peek else core.recvfrom()
        return data[:n], source, MSG_TRUNC if len(data) > n else 0

    def shutdown(self, how: int, now: float) -> None:
        # Linux inet_shutdown on a datagram socket: the flags are set even when it then
        # answers ENOTCONN for an unconnected socket, and waiters are woken.
        self.shut_rd |= how in (SHUT_RD, SHUT_RDWR)
        self.shut_wr |= how in (SHUT_WR, SHUT_RDWR)
        self.bumps += 1
        if self.core.remote is None:
            raise _err(_errno.ENOTCONN)

    def sockname(self) -> Address | None:
        return self.core.local

    def peername(self) -> Address:
        if self.core.remote is None:
            raise _err(_errno.ENOTCONN)
        return self.core.remote

    def take_error(self) -> int:
        return self.core.take_error()

    def recv_ready(self) -> bool:
        core = self.core
        return bool(core.rx) or core.error != 0 or self.shut_rd

    def send_ready(self) -> bool:
        writable = self.core.writable and self.rt.stack.onload.udp_send_ready(self.core.onload)
        return writable or self.core.error != 0


class _TcpFile(_SocketFile):
    """A TCP socket: the core from ``stack.tcp.endpoint()``."""

    kind = SOCK_STREAM
    protocol = IPPROTO_TCP

    def __init__(self, rt: Runtime, proto: int, core: TcpCore | None = None) -> None:
        super().__init__(rt, proto)
        self.core: TcpCore = core if core is not None else _tcp_layer_endpoint(rt)()
        if core is None:  # EF_TCP_SNDBUF / EF_TCP_RCVBUF (accepted sockets inherit)
            rt.stack.onload.tcp_buffer_defaults(self.core)
        self.connecting = False  # a non-blocking connect said EINPROGRESS, nothing since
        self.broadcast = False  # stored, as Linux does for any socket; no effect on TCP
        self.tcp_pmtudisc = IP_PMTUDISC_WANT
        self.shut_rd = False
        self.shut_wr = False

    def _core_opts(self) -> _CoreOptions:
        return self.core

    # IP_RECVERR on a TCP socket (Linux tcp_v4_err): an ICMP soft error is reported at
    # once as the socket error (POLLERR), not only kept for SO_ERROR (RFC 9293 SHLD-20).
    def _get_ip_opt(self, name: int) -> bytes:
        if name == IP_RECVERR:
            return _pack_int(int(self.core.recverr))
        return super()._get_ip_opt(name)

    def _set_ip_opt(self, name: int, raw: bytes) -> None:
        if name == IP_RECVERR:
            self.core.recverr = _opt_int(raw, IPPROTO_IP) != 0
        else:
            super()._set_ip_opt(name, raw)

    @property
    def keepalive(self) -> bool:
        return self.core.keepalive

    @keepalive.setter
    def keepalive(self, value: bool) -> None:
        self.core.keepalive = value

    @property
    def oobinline(self) -> bool:
        return self.core.oobinline

    @oobinline.setter
    def oobinline(self, value: bool) -> None:
        self.core.oobinline = value

    @property
    def linger(self) -> int | None:
        return self.core.linger

    @linger.setter
    def linger(self, value: int | None) -> None:
        self.core.linger = value

    @property
    def pmtudisc(self) -> int:
        return self.tcp_pmtudisc

    @pmtudisc.setter
    def pmtudisc(self, value: int) -> None:
        # TCP sets DF on every segment under WANT and DO alike; the others would need the core.
        if value not in (IP_PMTUDISC_WANT, IP_PMTUDISC_DO):
            raise _not_modelled(f"IP_MTU_DISCOVER {value} on TCP (WANT and DO are)")
        self.tcp_pmtudisc = value

    def set_tos(self, tos: int) -> None:
        # Linux keeps the ECN bits of a stream socket's TOS: TCP owns them (RFC 3168 §6.1.1).
        self.core.tos = (tos & ~0x3) | (self.core.tos & 0x3)

    def never_connected(self) -> bool:
        core = self.core
        return _state(core) == "CLOSED" and core.remote is None and not core.connecting

    # Linux tcp_poll(), from the core's readiness plus the shutdowns made through this socket
    # (Linux's sk_shutdown): SEND_SHUTDOWN keeps POLLOUT, RCV_SHUTDOWN gives POLLIN|POLLRDHUP.
    def poll_mask(self) -> int:
        core = self.core
        if _state(core) == "LISTEN":
            return _sel.POLLIN | _sel.POLLRDNORM if core.readable else 0
        if self.never_connected():
            mask = _sel.POLLHUP | _sel.POLLOUT | _sel.POLLWRNORM  # state CLOSE, nothing shut, send space free
        else:
            mask = 0
            if core.hup or (self.shut_rd and self.shut_wr):
                mask |= _sel.POLLHUP
            if core.rdhup or self.shut_rd:
                mask |= _sel.POLLIN | _sel.POLLRDNORM | _sel.POLLRDHUP
            if core.readable:
                mask |= _sel.POLLIN | _sel.POLLRDNORM
            if core.writable or self.shut_wr:
                mask |= _sel.POLLOUT | _sel.POLLWRNORM
        if core.urgent_pending:  # an urgent octet to read out of band (RFC 9293 MUST-32)
            mask |= _sel.POLLPRI
        if core.error:
            mask |= _sel.POLLERR
        return mask

    @property
    def activity(self) -> int:
        return self.core.activity + self.bumps

    @property
    def wake_events(self) -> int:
        return 0xFFFF  # the core's activity does not say which direction moved

    def release(self) -> None:
        self.core.close(self.rt.now())

    def bind(self, addr: Ipv4Addr, port: int) -> None:
        self.core.bind(addr, port)

    def listen(self, backlog: int) -> None:
        if _state(self.core) not in ("CLOSED", "LISTEN"):
            raise _err(_errno.EINVAL)  # Linux inet_listen: only an unconnected socket may listen
        self.core.listen(min(backlog, self.rt.stack.profile.somaxconn))

    def accepting(self) -> bool:
        return _state(self.core) == "LISTEN"

    def accept(self) -> tuple[_SocketFile, Address]:
        if not self.accepting():
            raise _err(_errno.EINVAL)
        child = _TcpFile(self.rt, self.proto, self.core.accept())
        remote = child.core.remote
        assert remote is not None, "an accepted TCP core has a remote address"
        return child, remote

    def connect(self, addr: Ipv4Addr, port: int, now: float) -> None:
        self.core.connect(addr, port, now)

    def connect_pending(self) -> bool:
        return self.core.connecting

    def connect_error(self) -> int:
        result = self.core.connect_result()
        if result:
            self.core.take_error()  # a failed blocking connect consumes SO_ERROR, as Linux's sock_error
        return result

    def send(self, data: bytes, dest: Address | None, now: float, *, urgent: bool = False) -> int:
        # The address of sendto is ignored, as on Linux.
        try:
            return self.core.send(data, now, urgent=urgent)
        except BlockingIOError:
            raise
        except OSError as e:
            if e.errno == _errno.ENOTCONN:
                # Linux tcp_sendmsg -> sk_stream_wait_connect: EPIPE outside SYN-SENT/SYN-RECEIVED.
                raise _err(_errno.EPIPE, "send on a TCP socket that is not connected") from None
            raise

    def recv(self, n: int, *, peek: bool, may_wait: bool) -> tuple[bytes, Address | None, int]:
        if n == 0:
            return b"", None, 0
        return self.core.recv(n, peek=peek), None, 0

    def recv_urgent(self, *, peek: bool) -> tuple[bytes, Address | None, int]:
        """recv(MSG_OOB): the urgent octet, with MSG_OOB in msg_flags (Linux tcp_recv_urg)."""
        data = self.core.recv_urgent(peek=peek)
        return data, None, MSG_OOB if data else 0

    def at_mark(self) -> bool:
        return self.core.at_mark

    def shutdown(self, how: int, now: float) -> None:
        listening = _state(self.core) in ("LISTEN", "SYN_SENT")
        self.core.shutdown(how, now)
        if not listening:  # Linux disconnects a listener (or a connecting socket) instead of marking it shut
            self.shut_rd |= how in (SHUT_RD, SHUT_RDWR)
            self.shut_wr |= how in (SHUT_WR, SHUT_RDWR)
        self.bumps += 1

    def sockname(self) -> Address | None:
        return self.core.local

    def peername(self) -> Address:
        # Linux inet_getname: no peer in CLOSE or SYN-SENT.
        if self.core.remote is None or _state(self.core) in ("CLOSED", "SYN_SENT", "LISTEN"):
            raise _err(_errno.ENOTCONN)
        return self.core.remote

    def take_error(self) -> int:
        # SO_ERROR: the pending error, else the last ICMP soft error, which Linux's
        # sock_getsockopt reports (and clears) from sk_err_soft (RFC 1122 §4.2.3.9).
        err = self.core.take_error()
        if err == 0:
            err, self.core.soft_error = self.core.soft_error, 0
        return err

    def recv_ready(self) -> bool:
        core = self.core
        return core.readable or core.rdhup or core.hup or core.error != 0

    def send_ready(self) -> bool:
        core = self.core
        return core.writable or core.hup or core.error != 0 or self.shut_wr

    def accept_ready(self) -> bool:
        return self.core.readable or self.core.error != 0 or not self.accepting()

    def _get_proto_opt(self, level: int, name: int) -> bytes:
        if level != IPPROTO_TCP:
            raise _err(_errno.EOPNOTSUPP)
        core = self.core
        value: int
        if name == TCP_NODELAY:
            value = int(core.nodelay)
        elif name == TCP_CORK:
            value = int(core.cork)
        elif name == TCP_QUICKACK:
            value = int(core.quickack)
        elif name == TCP_MAXSEG:
            # Linux: the user's MSS before connecting (or while listening), else mss_cache.
            if _state(core) in ("CLOSED", "LISTEN"):
                value = core.maxseg if core.maxseg is not None else _TCP_MSS_DEFAULT
            else:
                value = core.tcp_info().get("tcpi_snd_mss", _TCP_MSS_DEFAULT)
        elif name == TCP_KEEPIDLE:
            value = round(core.keepidle)
        elif name == TCP_KEEPINTVL:
            value = round(core.keepintvl)
        elif name == TCP_KEEPCNT:
            value = core.keepcnt
        elif name == TCP_USER_TIMEOUT:
            value = round(core.user_timeout * 1000)
        elif name == TCP_INFO:
            return _pack_tcp_info(_tcp_info(core))
        else:
            raise _err(_errno.ENOPROTOOPT)
        return _pack_int(value)

    def _set_proto_opt(self, level: int, name: int, raw: bytes) -> None:
        if level != IPPROTO_TCP or name == TCP_INFO:
            raise _err(_errno.ENOPROTOOPT)
        core = self.core
        value = _opt_int(raw, level)
        if name == TCP_NODELAY:
            core.nodelay = value != 0
        elif name == TCP_CORK:
            core.cork = value != 0
        elif name == TCP_QUICKACK:
            core.quickack = value != 0
        elif name == TCP_MAXSEG:
            if value and not _TCP_MIN_MSS <= value <= _MAX_TCP_WINDOW:
                raise _err(_errno.EINVAL)
            core.maxseg = value or None
        elif name == TCP_KEEPIDLE:
            core.keepidle = float(_in_range(value, 1, _MAX_TCP_KEEPIDLE))
        elif name == TCP_KEEPINTVL:
            core.keepintvl = float(_in_range(value, 1, _MAX_TCP_KEEPINTVL))
        elif name == TCP_KEEPCNT:
            core.keepcnt = _in_range(value, 1, _MAX_TCP_KEEPCNT)
        elif name == TCP_USER_TIMEOUT:  # milliseconds; Linux: negative is EINVAL, 0 is off
            core.user_timeout = _in_range(value, 0, 0x7FFFFFFF) / 1000.0
        else:
            raise _err(_errno.ENOPROTOOPT)


def _in_range(value: int, low: int, high: int) -> int:
    if not low <= value <= high:
        raise _err(_errno.EINVAL)
    return value


def _tcp_info(core: TcpCore) -> dict[str, int]:
    info = dict(core.tcp_info())
    info.setdefault("tcpi_state", _LINUX_STATE.get(_state(core), 0))
    return info


def _open(rt: Runtime, family: int, kind: int, proto: int) -> _SocketFile:
    """Linux socket(2)/inet_create: check the triple, then make the core."""
    if family != AF_INET:
        raise _err(_errno.EAFNOSUPPORT, "refstack models AF_INET only")
    if kind == SOCK_DGRAM:
        if proto not in (0, IPPROTO_UDP):
            raise _err(_errno.EPROTONOSUPPORT)
        return _UdpFile(rt, proto)
    if kind == SOCK_STREAM:
        if proto not in (0, IPPROTO_TCP):
            raise _err(_errno.EPROTONOSUPPORT)
        return _TcpFile(rt, proto)
    if kind == SOCK_RAW:
        raise _err(_errno.EPROTONOSUPPORT, f"SOCK_RAW is {_NOT_MODELLED}")
    raise _err(_errno.EINVAL)


# --- the default timeout -----------------------------------------------------------------------
_default_timeout: float | None = None


def _check_timeout(value: float | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise TypeError("Timeout value must be int, float or None") from None
    if math.isnan(seconds):
        raise ValueError("Invalid value NaN (not a number)")
    if seconds < 0:
        raise ValueError("Timeout value out of range")
    return seconds


def getdefaulttimeout() -> float | None:
    """The timeout new sockets start with (None: blocking)."""
    return _default_timeout


def setdefaulttimeout(value: float | None) -> None:
    global _default_timeout  # noqa: PLW0603 - Python's socket module keeps the same global
    _default_timeout = _check_timeout(value)


# --- the socket ----------------------------------------------------------------------------------
_SEND_FLAGS: Final = MSG_DONTWAIT | MSG_NOSIGNAL
_RECV_FLAGS: Final = MSG_PEEK | MSG_DONTWAIT | MSG_WAITALL


class socket:  # noqa: N801 - the name of Python's socket.socket
    """A BSD socket on a refstack runtime, with the methods and errors of ``socket.socket``."""

    def __init__(
        self,
        family: int = AF_INET,
        type: int = SOCK_STREAM,
        proto: int = 0,
        fileno: int | None = None,
        *,
        runtime: Runtime | None = None,
    ) -> None:
        rt = runtime if runtime is not None else _runtime.current()
        self._rt = rt
        self._timeout = _default_timeout
        if fileno is not None:
            file = rt.file(fileno)
            if not isinstance(file, _SocketFile):
                raise _err(_errno.ENOTSOCK)
            self._file: _SocketFile | None = file
            self._fd = fileno
            self._family, self._type, self._proto = AF_INET, file.kind, file.proto
            return
        kind = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)
        new = _open(rt, family, kind, proto)
        self._file = new
        self._fd = rt.install(new)
        self._family, self._type, self._proto = family, kind, proto
        if type & SOCK_NONBLOCK:
            self._timeout = 0.0

    # --- identity ---------------------------------------------------------------------------
    @property
    def runtime(self) -> Runtime:
        return self._rt

    @property
    def family(self) -> int:
        return _enum(_pysocket.AddressFamily, self._family)

    @property
    def type(self) -> int:
        return _enum(_pysocket.SocketKind, self._type)

    @property
    def proto(self) -> int:
        return self._proto

    @property
    def timeout(self) -> float | None:
        return self._timeout

    def fileno(self) -> int:
        """The descriptor, or -1 once closed or detached."""
        return self._fd

    def __repr__(self) -> str:
        closed = self._file is None
        head = f"<refstack.socket.socket{' [closed]' if closed else ''} fd={self._fd},"
        head += f" family={self._family}, type={self._type}, proto={self._proto}"
        if not closed:
            with suppress(OSError):
                head += f", laddr={self.getsockname()}"
            with suppress(OSError):
                head += f", raddr={self.getpeername()}"
        return head + ">"

    def __enter__(self) -> socket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _live(self) -> _SocketFile:
        if self._file is None:
            raise _err(_errno.EBADF)
        return self._file

    # --- blocking ---------------------------------------------------------------------------
    def _deadline(self, nonblocking: bool = False) -> float | None:
        if nonblocking or self._timeout == 0.0:
            return self._rt.now()
        return None if self._timeout is None else self._rt.now() + self._timeout

    def _io(
        self,
        attempt: Callable[[], _T],
        ready: Callable[[], bool],
        what: str,
        *,
        nonblocking: bool,
        deadline: float | None,
    ) -> _T:
        """Attempt; on ``BlockingIOError`` wait for ``ready`` (until ``deadline``) and retry."""
        nonblocking = nonblocking or self._timeout == 0.0
        file = self._live()
        while True:
            before = file.activity
            try:
                with _translated():
                    return attempt()
            except BlockingIOError:
                if nonblocking:
                    raise _would_block() from None
            self._wait(file, ready, before, what, deadline)

    def _wait(
        self, file: _SocketFile, ready: Callable[[], bool], before: int, what: str, deadline: float | None
    ) -> None:
        rt = self._rt
        if ready():
            # The core says ready, yet the attempt would block: wait for anything to change
            # rather than spin.
            condition = Condition(f"activity on {self!r} ({what})", lambda: file.activity != before)
        else:
            condition = Condition(f"{what} on {self!r}", ready)
        left = None if deadline is None else deadline - rt.now()
        if left is not None and left <= 0:
            raise _timed_out()
        if not rt.wait_until(condition, left):
            raise _timed_out()

    # --- set-up -----------------------------------------------------------------------------
    def bind(self, address: tuple[str, int]) -> None:
        file = self._live()
        addr, port = _parse_address(address, "bind")
        with _translated():
            file.bind(addr, port)

    def listen(self, backlog: int | None = None) -> None:
        """``backlog`` defaults to min(SOMAXCONN, 128) as in Python; Linux caps it at somaxconn."""
        file = self._live()
        backlog = min(SOMAXCONN, 128) if backlog is None else max(_operator.index(backlog), 0)
        with _translated():
            file.listen(backlog)

    def accept(self) -> tuple[socket, tuple[str, int]]:
        file = self._live()
        child, remote = self._io(
            file.accept, file.accept_ready, "accept", nonblocking=False, deadline=self._deadline()
        )
        fd = self._rt.install(child)
        return socket(fileno=fd, runtime=self._rt), _format(remote)

    def connect(self, address: tuple[str, int]) -> None:
        file = self._live()
        addr, port = _parse_address(address, "connect")
        rt = self._rt
        if isinstance(file, _TcpFile) and file.connecting:
            # Linux __inet_stream_connect: the socket stays SS_CONNECTING after a
            # non-blocking connect; the first connect() once the handshake is over
            # reports its outcome (0, or the error), and only later ones EISCONN.
            if file.connect_pending():
                raise _err(_errno.EALREADY)
            file.connecting = False
            result = file.connect_error()
            if result:
                raise _err(result)
            return
        with _translated():
            file.connect(addr, port, rt.now())
        if file.connect_pending():
            if self._timeout == 0.0:
                if isinstance(file, _TcpFile):
                    file.connecting = True
                raise _err(_errno.EINPROGRESS)
            done = Condition(f"connect of {self!r} to finish", lambda: not file.connect_pending())
            if not rt.wait_until(done, self._timeout):
                raise _timed_out()
        result = file.connect_error()
        if result:
            raise _err(result)

    def connect_ex(self, address: tuple[str, int]) -> int:
        """connect() returning an errno (0 on success; EAGAIN when the timeout passed, as CPython)."""
        _parse_address(address, "connect_ex")
        try:
            self.connect(address)
        except TimeoutError:
            return _errno.EAGAIN
        except OSError as e:
            if e.errno is None or isinstance(e, _pysocket.gaierror):
                raise
            return e.errno
        return 0

    # --- sending ----------------------------------------------------------------------------
    def _send_flags(self, file: _SocketFile, flags: int) -> bool:
        """Check ``flags``; True when MSG_DONTWAIT makes this one call non-blocking.
        MSG_OOB is TCP's urgent data; UDP refuses it (Linux udp_sendmsg)."""
        if flags & MSG_OOB and not isinstance(file, _TcpFile):
            raise _err(_errno.EOPNOTSUPP)
        if flags & ~(_SEND_FLAGS | MSG_OOB):
            raise _err(_errno.EOPNOTSUPP, f"send flags {flags & ~_SEND_FLAGS:#x} are {_NOT_MODELLED}")
        return bool(flags & MSG_DONTWAIT)

    def _send(self, data: bytes, flags: int, dest: Address | None, what: str) -> int:
        file = self._live()
        nonblocking = self._send_flags(file, flags)
        urgent = bool(flags & MSG_OOB)
        rt = self._rt
        if isinstance(file, _TcpFile) and self._timeout is None and not nonblocking:
            return self._send_all(
                file, data, dest, nonblocking=False, deadline=None, partial=True, urgent=urgent
            )
        return self._io(
            lambda: file.send(data, dest, rt.now(), urgent=urgent),
            file.send_ready,
            what,
            nonblocking=nonblocking,
            deadline=self._deadline(nonblocking),
        )

    def _send_all(
        self,
        file: _SocketFile,
        data: bytes,
        dest: Address | None,
        *,
        nonblocking: bool,
        deadline: float | None,
        partial: bool,
        urgent: bool = False,
    ) -> int:
        """Queue all of ``data``.  ``partial``: an error after some progress returns the
        count (Linux's blocking tcp_sendmsg); otherwise it propagates (Python's sendall).
        ``urgent``: each part queued moves the urgent mark to its end, as Linux's
        tcp_push does each time a blocking MSG_OOB send waits."""
        rt = self._rt
        view = memoryview(data)
        sent = 0

        def attempt() -> int:
            return file.send(view[sent:].tobytes(), dest, rt.now(), urgent=urgent)

        while True:
            try:
                sent += self._io(attempt, file.send_ready, "send", nonblocking=nonblocking, deadline=deadline)
            except OSError:
                if partial and sent:
                    return sent
                raise
            if sent >= len(data):
                return sent

    def send(self, data: bytes, flags: int = 0) -> int:
        return self._send(_as_bytes(data), flags, None, "send")

    def sendall(self, data: bytes, flags: int = 0) -> None:
        """Send everything; the socket timeout bounds the whole call (as CPython since 3.5)."""
        file = self._live()
        payload = _as_bytes(data)
        nonblocking = self._send_flags(file, flags)
        self._send_all(
            file,
            payload,
            None,
            nonblocking=nonblocking,
            deadline=self._deadline(nonblocking),
            partial=False,
            urgent=bool(flags & MSG_OOB),
        )

    def sendto(self, data: bytes, flags_or_address: Any, address: Any = None) -> int:
        """``sendto(data, address)`` or ``sendto(data, flags, address)``."""
        if address is None:
            flags, address = 0, flags_or_address
        else:
            flags = _operator.index(flags_or_address)
        payload = _as_bytes(data)
        dest = _parse_address(address, "sendto")
        return self._send(payload, flags, dest, "sendto")

    def sendmsg(
        self,
        buffers: Iterable[bytes],
        ancdata: Iterable[tuple[int, int, bytes]] = (),
        flags: int = 0,
        address: tuple[str, int] | None = None,
    ) -> int:
        payload = b"".join(_as_bytes(b) for b in buffers)
        if list(ancdata):
            raise _err(_errno.EINVAL, f"ancillary data is {_NOT_MODELLED}")
        dest = None if address is None else _parse_address(address, "sendmsg")
        return self._send(payload, flags, dest, "sendmsg")

    # --- receiving --------------------------------------------------------------------------
    def _recv(self, n: int, flags: int, what: str) -> tuple[bytes, Address | None, int]:
        file = self._live()
        oob = flags & MSG_OOB
        flags &= ~MSG_OOB  # Linux UDP ignores it
        # MSG_TRUNC on a datagram socket: Linux returns the datagram's real length, and
        # CPython grows its buffer to that length (the octets past ``n`` are not data).
        trunc = bool(flags & MSG_TRUNC) and not isinstance(file, _TcpFile)
        if flags & ~(_RECV_FLAGS | (MSG_TRUNC if trunc else 0)):
            raise _err(_errno.EOPNOTSUPP, f"recv flags {flags & ~_RECV_FLAGS:#x} are {_NOT_MODELLED}")
        peek = bool(flags & MSG_PEEK)
        if oob and isinstance(file, _TcpFile):
            # TCP urgent data (Linux tcp_recv_urg): one octet, and the call never waits,
            # whatever the socket's blocking mode: EAGAIN when it has not arrived yet.
            with _translated():
                return file.recv_urgent(peek=peek)
        nonblocking = bool(flags & MSG_DONTWAIT) or self._timeout == 0.0
        deadline = self._deadline(nonblocking)
        # Only a truly blocking call sleeps in the kernel; with a timeout CPython polls and
        # then makes a non-blocking call, which is what the core sees.
        sleeps = self._timeout is None and not nonblocking

        def attempt(want: int = n) -> tuple[bytes, Address | None, int]:
            if trunc:
                data, source, _ = file.recv(1 << 17, peek=peek, may_wait=sleeps)
                return data[:want].ljust(len(data), b"\0"), source, MSG_TRUNC if len(data) > want else 0
            return file.recv(want, peek=peek, may_wait=sleeps)

        got = self._io(attempt, file.recv_ready, what, nonblocking=nonblocking, deadline=deadline)
        waitall = flags & MSG_WAITALL and isinstance(file, _TcpFile) and not peek
        if not (waitall and sleeps):
            return got
        # MSG_WAITALL on a blocking stream socket: until n bytes, EOF or an error, or the
        # urgent mark (Linux tcp_recvmsg_locked stops there once it has copied anything).
        chunks = [got[0]]
        have = len(got[0])
        while have < n and got[0] and not file.at_mark():
            rest = functools.partial(attempt, n - have)
            try:
                got = self._io(rest, file.recv_ready, what, nonblocking=False, deadline=None)
            except OSError:
                break  # the data received so far is returned; the error comes with the next call
            chunks.append(got[0])
            have += len(got[0])
        return b"".join(chunks), None, 0

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        if bufsize < 0:
            raise ValueError("negative buffersize in recv")
        if bufsize == 0:
            return b""  # CPython returns at once without a system call
        return self._recv(bufsize, flags, "recv")[0]

    def recvfrom(self, bufsize: int, flags: int = 0) -> tuple[bytes, tuple[str, int] | None]:
        if bufsize < 0:
            raise ValueError("negative buffersize in recvfrom")
        data, source, _ = self._recv(bufsize, flags, "recvfrom")
        return data, None if source is None else _format(source)

    def recvmsg(
        self, bufsize: int, ancbufsize: int = 0, flags: int = 0
    ) -> tuple[bytes, list[tuple[int, int, bytes]], int, tuple[str, int] | None]:
        """(data, ancillary data (always empty), msg_flags (MSG_TRUNC when cut), address)."""
        if bufsize < 0 or ancbufsize < 0:
            raise ValueError("negative buffer size in recvmsg()")
        data, source, msg_flags = self._recv(bufsize, flags, "recvmsg")
        return data, [], msg_flags, None if source is None else _format(source)

    @staticmethod
    def _into(buffer: Any, nbytes: int, what: str) -> tuple[memoryview, int]:
        view = memoryview(buffer).cast("B")
        if view.readonly:
            raise TypeError(f"{what}() argument 1 must be read-write bytes-like object")
        if nbytes < 0:
            raise ValueError(f"negative buffersize in {what}")
        if nbytes == 0:
            nbytes = len(view)
        if nbytes > len(view):
            raise ValueError("buffer too small for requested bytes")
        return view, nbytes

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        view, nbytes = self._into(buffer, nbytes, "recv_into")
        if nbytes == 0:
            return 0
        data = self._recv(nbytes, flags, "recv_into")[0]
        view[: len(data)] = data
        return len(data)

    def recvfrom_into(
        self, buffer: Any, nbytes: int = 0, flags: int = 0
    ) -> tuple[int, tuple[str, int] | None]:
        view, nbytes = self._into(buffer, nbytes, "recvfrom_into")
        data, source, _ = self._recv(nbytes, flags, "recvfrom_into")
        view[: len(data)] = data
        return len(data), None if source is None else _format(source)

    # --- ending -----------------------------------------------------------------------------
    def shutdown(self, how: int) -> None:
        file = self._live()
        if how not in (SHUT_RD, SHUT_WR, SHUT_RDWR):
            raise _err(_errno.EINVAL)
        with _translated():
            file.shutdown(how, self._rt.now())

    def close(self) -> None:
        """Close the descriptor (idempotent); the core goes when its last descriptor does.

        With SO_LINGER on and a positive timeout, a blocking TCP socket's close waits
        until what it sent, FIN included, is acknowledged or the timeout passes, as
        Linux's tcp_close (sk_stream_wait_close); it returns 0 either way."""
        if self._file is not None:
            file = self._file
            fd, self._file, self._fd = self._fd, None, -1
            self._rt.close(fd)
            if isinstance(file, _TcpFile) and file.linger and self._timeout != 0.0:
                core = file.core
                done = Condition("the FIN to be acknowledged (SO_LINGER)", lambda: not lingering(core))
                self._rt.wait_until(done, float(file.linger))

    def detach(self) -> int:
        """Leave the descriptor open and return it; this object acts closed afterwards."""
        fd = self._fd
        self._file, self._fd = None, -1
        return fd

    def dup(self) -> socket:
        """A new socket object on a new descriptor for the same socket (``dup(2)``)."""
        self._live()
        copy = socket(fileno=self._rt.dup(self._fd), runtime=self._rt)
        copy._timeout = self._timeout
        return copy

    # --- names ------------------------------------------------------------------------------
    def getsockname(self) -> tuple[str, int]:
        return _format(self._live().sockname())

    def getpeername(self) -> tuple[str, int]:
        file = self._live()
        with _translated():
            return _format(file.peername())

    # --- options ----------------------------------------------------------------------------
    def setsockopt(
        self, level: int, optname: int, value: int | bytes | None, optlen: int | None = None
    ) -> None:
        """``value`` an int (a C int), a bytes-like object, or None with ``optlen``."""
        file = self._live()
        raw: bytes
        if value is None:
            if optlen is None:
                raise TypeError("setsockopt() takes 3 or 4 arguments; None needs optlen")
            raise _err(_errno.EFAULT if optlen else _errno.EINVAL)
        if isinstance(value, int):
            if optlen is not None:
                raise TypeError("setsockopt() with an int value takes no optlen")
            if not -(2**31) <= value < 2**31:
                bound = "greater than maximum" if value > 0 else "less than minimum"
                raise OverflowError(f"signed integer is {bound}")
            raw = _pack_int(value)
        else:
            raw = _as_bytes(value)
        with _translated():
            file.setopt(level, optname, raw)

    def getsockopt(self, level: int, optname: int, buflen: int | None = None) -> int | bytes:
        """An int, or with ``buflen`` the option's bytes cut to ``buflen`` (as Linux copies them)."""
        file = self._live()
        if buflen is not None and buflen != 0 and not 0 < buflen <= 1024:
            raise OSError("getsockopt buflen out of range")
        with _translated():
            raw = file.getopt(level, optname)
        if not buflen:
            value: int = _INT.unpack(raw[: _INT.size].ljust(_INT.size, b"\0"))[0]
            return value
        return raw[:buflen]

    # --- timeouts ---------------------------------------------------------------------------
    def settimeout(self, value: float | None) -> None:
        self._live()
        self._timeout = _check_timeout(value)

    def gettimeout(self) -> float | None:
        return self._timeout

    def setblocking(self, flag: bool) -> None:
        self._live()
        self._timeout = None if flag else 0.0

    def getblocking(self) -> bool:
        return self._timeout != 0.0


def tcp_info(sock: socket) -> dict[str, int]:
    """The TCP_INFO fields of a TCP socket (Linux names, Linux units), ``tcpi_state`` filled in."""
    file = sock._live()
    if not isinstance(file, _TcpFile):
        raise _err(_errno.EOPNOTSUPP)
    return _tcp_info(file.core)


def sockatmark(sock: socket) -> bool:
    """POSIX sockatmark() (Linux ``ioctl(SIOCATMARK)``): is the next octet to read the
    urgent one?  RFC 9293 §3.8.5 MUST-33: the application learns whether urgent data
    remains.  Like Linux, only a TCP socket answers (others: ENOTTY)."""
    file = sock._live()
    if not isinstance(file, _TcpFile):
        raise _err(_errno.ENOTTY)
    return file.at_mark()
