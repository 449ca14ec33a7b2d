"""One TCP endpoint: the transmission control block and its state machine (RFC 9293).

Everything a TCP socket is, sans-I/O: application calls (``connect``, ``send``,
``recv``, ``shutdown``, ``close``) and events (``segment_arrives``, timers) move
the state machine of RFC 9293 §3.3.2; segments leave through the layer.  Sequence
numbers are unwrapped stream positions (see :mod:`refstack.tcp.seq`); they are
reduced modulo 2**32 only on the wire.

Clauses: ``grep "3.10.7.4"`` finds the segment-arrival steps; every transition
names the clause it implements.  Where the RFCs leave a choice, the stack does
what Linux does (see :mod:`refstack.profile`).
"""

from __future__ import annotations

import dataclasses
import errno
import os
import struct
from collections import deque
from typing import TYPE_CHECKING

from ..nic.offload import TSO_MAX_DATAGRAM
from ..timers import Timer
from ..wire.addresses import Ipv4Addr, ipv4_str
from ..wire.checksum import pseudo_header_base
from ..wire.ipv4 import PROTO_TCP
from ..wire.tcp import ACK, CWR, ECE, FIN, PSH, RST, SYN, URG, build_tcp
from ..wire.tcp_options import NOP, SACK_PERMITTED, Mss, Sack, TcpOption, Timestamps, WindowScale
from .congestion import INFINITE_SSTHRESH, NewReno
from .reassembly import ReassemblyQueue
from .rto import RtoEstimator
from .sack import Scoreboard, sack_blocks
from .segment import Incoming
from .seq import MASK
from .state import TcpState
from .syncookies import CookieOptions, encode_ts
from .urgent import UrgentReceive, UrgentState, pointer_for, urgent_octet

if TYPE_CHECKING:
    from ..net.ipv4 import TxRoute
    from ..nic.model import SocketRecord
    from .layer import TcpLayer

Address = tuple[Ipv4Addr, int]
S = TcpState
IP_TCP_HEADERS = 40
TS_OPTION_LEN = 12  # NOP NOP TS
_TS_OPTION = struct.Struct("!III")  # NOP NOP kind=8 len=10, TSval, TSecr (RFC 7323 App. A)
_NOP_NOP_TS_WORD = 0x0101080A
# The sizes behind tcp_sndbuf_expand's per-segment memory on this machine's kernel (x86-64,
# 6.x): MAX_TCP_HEADER plus the aligned skb_shared_info (192 + 320) around the data,
# rounded up to a power of two, then the aligned sk_buff (256).  Checked: a fresh
# namespace with Reno reports SO_SNDBUF 46080 (2 x 10 x 2304) once connected at MSS 1460.
_SKB_OVERHEAD = 512
_SKB_STRUCT = 256
_OUTPUT_STATES = frozenset(
    (TcpState.ESTABLISHED, TcpState.CLOSE_WAIT, TcpState.FIN_WAIT_1, TcpState.CLOSING, TcpState.LAST_ACK)
)


def _oserror(code: int) -> OSError:
    return OSError(code, os.strerror(code))


class TcpEndpoint:
    """A TCP socket core: the TCB of RFC 9293 §3.3.1 plus its buffers and timers."""

    def __init__(self, layer: TcpLayer, *, parent: TcpEndpoint | None = None) -> None:
        self.layer = layer
        stack = layer.stack
        profile = stack.profile
        self.state = S.CLOSED
        self.onload: SocketRecord | None = None  # the Onload model's view (refstack.nic)
        self.local: Address | None = None
        self.remote: Address | None = None
        self.parent = parent  # the listener of a passively opened connection
        self.passive = False  # RFC 9293 §3.5 MUST-11: SYN-RECEIVED remembers how it got there
        # --- socket options --------------------------------------------------------
        self.nodelay = False
        self.cork = False
        self.quickack = False
        self._keepalive = False
        self._keepidle = profile.tcp_keepalive_time
        self.keepintvl = profile.tcp_keepalive_intvl
        self.keepcnt = profile.tcp_keepalive_probes
        self.user_timeout = 0.0  # TCP_USER_TIMEOUT in seconds, 0 = off: R2 per connection (MUST-21)
        self.recverr = False  # IP_RECVERR: ICMP soft errors become the socket error at once
        self._rtx_stamp = 0.0  # when the segment now being retransmitted was first resent
        self.linger: int | None = None
        self.reuseaddr = False
        self.rcvbuf = profile.tcp_rmem[1]
        self.sndbuf = profile.tcp_wmem[1]
        # SO_SNDBUF (or EF_TCP_SNDBUF) was set: no send-buffer autotuning (SOCK_SNDBUF_LOCK).
        self.sndbuf_locked = False
        self._nospace = False  # a send found the buffer full (SOCK_NOSPACE)
        # SO_RCVBUF (or EF_TCP_RCVBUF) was set: no receive-buffer autotuning (SOCK_RCVBUF_LOCK).
        self.rcvbuf_locked = False
        # Receive-buffer autotuning (_rcv_space_adjust): the receiver's RTT estimate in
        # seconds (0: none yet), what it was measured from, and the bytes the application
        # read in the last RTT with where and when that measure started.
        self._rcv_rtt = 0.0
        self._rcv_rtt_tsecr = 0
        self._rcv_rtt_seq = 0
        self._rcv_rtt_time = -1.0
        self._rcvq_space = 0
        self._rcvq_seq = 0
        self._rcvq_time = 0.0
        self.maxseg: int | None = None
        self.ttl: int | None = None
        self.tos = 0
        self.oobinline = False  # SO_OOBINLINE: the urgent octet stays in the normal stream
        # --- send sequence space (RFC 9293 §3.3.1) ------------------------------------
        self.iss = 0
        self.snd_una = 0
        self.snd_nxt = 0
        self.snd_max = 0  # highest sequence number sent + 1
        self.snd_wnd = 0
        self.snd_wl1 = 0
        self.snd_wl2 = 0
        self.max_snd_wnd = 0
        self.snd_wscale = 0
        self.snd_up = 0  # SND.UP: the octet after the last urgent one (RFC 6093; Linux snd_up)
        self._snd_sml = 0  # end of the last small segment sent (Minshall's Nagle)
        self._pushed_seq = 0  # end of the last segment sent with PSH (Linux pushed_seq)
        self._psh_ends: set[int] = set()  # ends of unacked segments first sent with PSH
        self._psh_order: deque[int] = deque()  # the same, in the (increasing) order sent
        self._pmtu_cookie: int | None = None  # path MTU when data was last sent (Linux icsk_pmtu_cookie)
        self.route: TxRoute | None = None  # the cached route (refstack.net.ipv4.TxRoute)
        self._pseudo: tuple[Ipv4Addr, Ipv4Addr, int] | None = None  # (local, remote, pseudo-header base)
        self._rtx_next: int | None = None  # go-back retransmission cursor after an RTO
        self.snd_buf = bytearray()  # unacknowledged and unsent data, starting at iss + 1 + _buf_acked
        self._buf_seq = 0  # sequence number of snd_buf[0]
        self.fin_queued = False  # the application shut down writing: a FIN follows the data
        self.fin_seq: int | None = None  # sequence number of our FIN once sent
        # --- receive sequence space ------------------------------------------------
        self.irs = 0
        self.rcv_nxt = 0
        self.rcv_adv = 0  # right edge of the window we last advertised
        self.rcv_wscale = 0
        self.rcv_buf = bytearray()
        self.rcv_closed = False  # shutdown(SHUT_RD)
        self.fin_received = False
        self.urgent = UrgentReceive()  # RCV.UP and the out-of-band octet (refstack.tcp.urgent)
        self.ooo = ReassemblyQueue(profile.tcp_rmem[2])
        self._ooo_fin: int | None = None
        self._sack_previous: list[tuple[int, int]] = []
        self._sack_latest: tuple[int, int] | None = None
        self._dsack: tuple[int, int] | None = None
        # --- negotiated options ------------------------------------------------------
        self.mss_advertised = 0
        self.peer_mss = profile.tcp_default_mss  # RFC 9293 §3.7.1 MUST-15: 536 without the option
        self.ts_ok = False
        self.ts_offset = 0
        self.ts_recent = 0
        self.last_ack_sent = 0
        self.sack_ok = False
        self.ws_ok = False
        # --- retransmission and congestion -----------------------------------------
        self.rto = RtoEstimator(
            initial=profile.tcp_rto_initial,
            minimum=profile.tcp_rto_min,
            maximum=profile.tcp_rto_max,
            linux_style=profile.tcp_rto_linux_style,
        )
        self.cc = NewReno(profile.tcp_default_mss, profile.tcp_initial_cwnd)
        self.dupacks = 0
        self.scoreboard: Scoreboard | None = None  # RFC 6675 sender scoreboard, with SACK
        self._sack_recovery = False
        self.high_rxt = 0
        self.rescue_rxt: int | None = None
        self.retransmits = 0  # consecutive timer-driven retransmissions (tcpi_retransmits)
        self.total_retrans = 0
        self._rtt_seq: int | None = None  # Karn: the segment being timed, RFC 6298 §3
        self._rtt_start = 0.0
        self._last_send = 0.0
        self._last_recv = 0.0
        self._unacked_segments = 0  # received full-size segments not yet ACKed (RFC 1122 §4.2.3.2)
        self._rcv_mss = min(profile.tcp_default_mss, 536)  # Linux tcp_initialize_rcv_mss
        # Linux's delayed-ACK timeout (icsk_ack.ato): 0 until the first data segment
        # starts the delayed-ACK engine, then TCP_ATO_MIN.  So a FIN that arrives before
        # any data is ACKed at once, and one after data 40 ms later.
        self._ato = 0.0
        self._quickacks = profile.tcp_quickack_segments
        self._last_oow_ack = -1e9
        self._keepalive_probes = 0
        self._persist_backoff = 0
        self._probes_out = 0  # unanswered zero-window probes (Linux icsk_probes_out)
        # RFC 3168 ECN: negotiated; ECE owed on our ACKs until the peer's CWR; CWR owed on
        # our next new data after a reduction; the reduction's end (one per window).
        self.ecn_ok = False
        self._ece_pending = False
        self._cwr_pending = False
        self._ecn_recover = 0
        # --- socket-facing state -----------------------------------------------------
        self.error = 0
        self.soft_error = 0  # ICMP soft errors (Linux sk_err_soft), reported on timeout
        self.activity = 0
        self.connecting = False
        self._connect_errno = 0
        self._bind_request: tuple[Ipv4Addr, int] | None = None  # what bind() asked for
        self.backlog = 0
        self.syn_queue: list[TcpEndpoint] = []
        self.accept_queue: list[TcpEndpoint] = []
        self.closed_by_app = False
        timers = stack.timers
        self._rtx_timer: Timer = timers.timer("tcp-rtx", self._on_rtx_timer)
        self._delack_timer: Timer = timers.timer("tcp-delack", self._on_delack_timer)
        self._persist_timer: Timer = timers.timer("tcp-persist", self._on_persist_timer)
        self._keepalive_timer: Timer = timers.timer("tcp-keepalive", self._on_keepalive_timer)
        self._timewait_timer: Timer = timers.timer("tcp-timewait", self._on_timewait_timer)

    # ======================================================================================
    # Socket-facing properties
    # ======================================================================================
    @property
    def readable(self) -> bool:
        if self.state == S.LISTEN:
            return bool(self.accept_queue)
        return self._in_band_octets() > 0 or self.fin_received or self.error != 0 or self.state == S.CLOSED

    @property
    def urgent_pending(self) -> bool:
        """POLLPRI (select's exceptional condition): an urgent octet has arrived and not
        been read (Linux tcp_poll: ``urg_data & TCP_URG_VALID``); RFC 9293 MUST-32."""
        return self.urgent.state is UrgentState.VALID

    @property
    def at_mark(self) -> bool:
        """SIOCATMARK (sockatmark): the next octet to read is the urgent one (Linux
        tcp_ioctl: ``urg_data && urg_seq == copied_seq``); RFC 9293 MUST-33."""
        return self.urgent.active and self.urgent.seq == self._copied_seq()

    def _copied_seq(self) -> int:
        """The sequence number of the next octet the application reads (Linux copied_seq)."""
        return self.rcv_nxt - len(self.rcv_buf) - (1 if self.fin_received else 0)

    def _in_band_octets(self) -> int:
        """Octets a read can return now: the receive buffer less an urgent octet that
        is next and will be skipped (Linux tcp_poll raises its read target by one)."""
        skip = 1 if self.at_mark and not self.oobinline else 0
        return max(0, len(self.rcv_buf) - skip)

    @property
    def writable(self) -> bool:
        if self.state in (S.ESTABLISHED, S.CLOSE_WAIT):
            return not self.fin_queued and self.send_space() > 0
        return self.error != 0 or (self.state == S.CLOSED and not self.connecting and self.remote is not None)

    @property
    def hup(self) -> bool:
        """POLLHUP: both directions are finished (Linux: SHUTDOWN_MASK or CLOSED)."""
        if self.state == S.LISTEN or (self.state == S.CLOSED and self.remote is None):
            return False
        return self.state == S.CLOSED or (self.fin_received and self.fin_queued)

    @property
    def rdhup(self) -> bool:
        """EPOLLRDHUP: the peer sent FIN (or the connection is gone)."""
        return self.fin_received or (self.state == S.CLOSED and self.remote is not None)

    def take_error(self) -> int:
        err, self.error = self.error, 0
        return err

    # TCP_NODELAY takes effect at once: turning it on sends what Nagle was holding
    # (Linux __tcp_sock_set_nodelay pushes the pending frames).
    @property
    def nodelay(self) -> bool:
        return self._nodelay

    @nodelay.setter
    def nodelay(self, on: bool) -> None:
        self._nodelay = on
        if on and self.remote is not None:
            self._output(self.now)

    # TCP_CORK: removing the cork sends what it held (Linux __tcp_sock_set_cork).
    @property
    def cork(self) -> bool:
        return self._cork

    @cork.setter
    def cork(self, on: bool) -> None:
        self._cork = on
        if not on and self.remote is not None:
            self._output(self.now)

    # SO_KEEPALIVE and TCP_KEEPIDLE take effect at once: setting either re-arms the
    # keep-alive timer from the last segment received (Linux tcp_sock_set_keepidle).
    @property
    def keepalive(self) -> bool:
        return self._keepalive

    @keepalive.setter
    def keepalive(self, on: bool) -> None:
        self._keepalive = on
        self.arm_keepalive(self.now)

    @property
    def keepidle(self) -> float:
        return self._keepidle

    @keepidle.setter
    def keepidle(self, seconds: float) -> None:
        self._keepidle = seconds
        self.arm_keepalive(self.now)

    def connect_result(self) -> int:
        return self._connect_errno

    @property
    def accept_queue_full(self) -> bool:
        """Linux's sk_acceptq_is_full: more connections queued than the backlog."""
        return len(self.accept_queue) > self.backlog

    def send_space(self) -> int:
        return max(0, self.sndbuf - len(self.snd_buf))

    def _wake(self) -> None:
        self.activity += 1

    def _current_route(self, now: float) -> TxRoute | None:
        """The connection's route (:class:`~refstack.net.ipv4.TxRoute`, cached), or None
        when there is none: sending then fails in the layer, which records the error."""
        assert self.remote is not None and self.local is not None
        try:
            self.route = self.layer.stack.ip.route(
                self.route, self.remote[0], PROTO_TCP, self.local[0], now, probe=True
            )
        except OSError:
            return None
        return self.route

    def rx_pseudo_base(self) -> int:
        """The constant part of this connection's pseudo-header sum (RFC 9293 §3.1),
        the same both ways (the sum does not depend on the order of the addresses)."""
        assert self.local is not None and self.remote is not None
        cached = self._pseudo
        if cached is None or cached[0] != self.local[0] or cached[1] != self.remote[0]:
            cached = self._pseudo = (
                self.local[0],
                self.remote[0],
                pseudo_header_base(self.local[0], self.remote[0], PROTO_TCP),
            )
        return cached[2]

    @property
    def now(self) -> float:
        return self.layer.stack.now

    # ======================================================================================
    # Application calls (RFC 9293 §3.10.1-3.10.6)
    # ======================================================================================
    def bind(self, addr: Ipv4Addr, port: int) -> None:
        if self.local is not None:
            raise _oserror(errno.EINVAL)
        self.layer.bind(self, addr, port)
        self._bind_request = (addr, port)

    def listen(self, backlog: int) -> None:
        """RFC 9293 §3.10.1 OPEN (passive): CLOSED -> LISTEN.  The accept queue holds
        min(backlog, somaxconn) connections, as Linux."""
        if self.state not in (S.CLOSED, S.LISTEN) or self.remote is not None:
            raise _oserror(errno.EINVAL)
        if self.local is None:
            self.layer.bind(self, bytes(4), 0)
        self.backlog = max(0, min(backlog, self.layer.stack.profile.somaxconn))
        if self.state == S.CLOSED:
            self.layer.listen(self)  # may fail (EF_NO_FAIL=0, filter table full): still CLOSED
            self.state = S.LISTEN

    def accept(self) -> TcpEndpoint:
        if self.state != S.LISTEN:
            raise _oserror(errno.EINVAL)
        if not self.accept_queue:
            raise BlockingIOError(errno.EAGAIN, os.strerror(errno.EAGAIN))
        child = self.accept_queue.pop(0)
        child.parent = None
        return child

    def connect(self, addr: Ipv4Addr, port: int, now: float) -> None:
        """RFC 9293 §3.10.1 OPEN (active): send SYN, CLOSED -> SYN-SENT."""
        if self.state == S.LISTEN:
            raise _oserror(errno.EISCONN)
        if self.connecting:
            raise _oserror(errno.EALREADY)
        if self.state == S.CLOSED and self.remote is not None and self._connect_errno:
            # A failed attempt may be retried (Linux: the socket is SS_UNCONNECTED again,
            # and inet_put_port released its port unless bind() chose one).
            self.remote, self.local, self.retransmits = None, None, 0
            self.rto = RtoEstimator(
                initial=self.rto.initial,
                minimum=self.rto.minimum,
                maximum=self.rto.maximum,
                linux_style=self.rto.linux_style,
            )
            if self._bind_request is not None:
                self.layer.bind(self, *self._bind_request)
        if self.state != S.CLOSED or self.remote is not None:
            raise _oserror(errno.EISCONN)
        if port == 0:
            raise _oserror(errno.ECONNREFUSED)
        stack = self.layer.stack
        if stack.ip.is_broadcast(addr) or addr[0] >= 224:
            raise _oserror(errno.ENETUNREACH)  # RFC 9293 MUST-46: no OPEN to broadcast/multicast
        hop = stack.routes.lookup(addr)
        if hop is None:
            raise _oserror(errno.ENETUNREACH)
        self.layer.connect(self, addr, port, hop.source)
        assert self.local is not None
        self.iss = self.layer.isn.isn(self.local[0], self.local[1], addr, port, now)
        self.ts_offset = self.layer.isn.ts_offset(self.local[0], addr)
        self._init_send_space(now)
        self.state = S.SYN_SENT
        self.connecting = True
        self._connect_errno = 0
        self._rtx_stamp = now  # TCP_USER_TIMEOUT in SYN-SENT counts from the first SYN (Linux)
        self._send_syn(now)

    def send(self, data: bytes | bytearray | memoryview, now: float, *, urgent: bool = False) -> int:
        """RFC 9293 §3.10.2 SEND: queue data; SYN-SENT and SYN-RECEIVED queue too.

        ``urgent`` (MSG_OOB, the urgent flag of §3.10.2): SND.UP moves to the end of
        the data queued, so the last octet queued is the urgent one (RFC 6093 §2,
        Linux tcp_mark_urg); nothing queued, nothing marked."""
        if self.error and self.state == S.CLOSED:
            raise _oserror(self.take_error())
        if self.fin_queued or self.state in (S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSING, S.LAST_ACK, S.TIME_WAIT):
            raise _oserror(errno.EPIPE)
        if self.state in (S.CLOSED, S.LISTEN):
            raise _oserror(errno.EPIPE if self.remote is not None else errno.ENOTCONN)
        if self.state in (S.SYN_SENT, S.SYN_RECEIVED):
            raise BlockingIOError(errno.EAGAIN, os.strerror(errno.EAGAIN))  # Linux waits for ESTABLISHED
        room = self.send_space()
        if room <= 0:
            self._nospace = True
            raise BlockingIOError(errno.EAGAIN, os.strerror(errno.EAGAIN))
        before = len(self.snd_buf)
        self.snd_buf += data[:room]
        taken = len(self.snd_buf) - before
        if taken < len(data):
            self._nospace = True
        if urgent and taken:
            self.snd_up = self._buf_seq + len(self.snd_buf)
        self._output(now)
        return taken

    def recv(self, n: int, *, peek: bool = False) -> bytes:
        """RFC 9293 §3.10.3 RECEIVE.  With urgent data, as Linux's tcp_recvmsg: a read
        stops at the urgent mark, and one that starts there skips the urgent octet
        unless SO_OOBINLINE; reading past the mark ends the urgent data."""
        if self.rcv_buf:
            skip, take = self._readable_span(n)
            data = bytes(self.rcv_buf[skip : skip + take])
            if not peek:
                del self.rcv_buf[: skip + take]
                if self.urgent.active and self._copied_seq() > self.urgent.seq:
                    self.urgent.state = UrgentState.NONE
                if data:
                    self._rcv_space_adjust(self.now)
                    self._maybe_window_update(self.now)
            if data:
                return data
        if self.error:
            raise _oserror(self.take_error())
        if self.fin_received or self.rcv_closed:
            return b""
        if self.state in (S.CLOSED, S.LISTEN):
            if self.remote is not None:
                return b""
            raise _oserror(errno.ENOTCONN)
        raise BlockingIOError(errno.EAGAIN, os.strerror(errno.EAGAIN))

    def _readable_span(self, n: int) -> tuple[int, int]:
        """(octets to skip, octets to return) for a read of ``n`` from the receive buffer:
        the urgent octet is skipped when the read starts at it (not with SO_OOBINLINE),
        and a read that starts before it stops there (Linux tcp_recvmsg_locked)."""
        skip, limit = 0, len(self.rcv_buf)
        if self.urgent.active:
            mark = self.urgent.seq - self._copied_seq()
            if mark == 0 and not self.oobinline:
                skip = 1
            elif mark > 0:
                limit = min(limit, mark)
        return skip, max(0, min(n, limit - skip))

    def recv_urgent(self, *, peek: bool = False) -> bytes:
        """recv(MSG_OOB): the urgent octet (RFC 9293 §3.8.5 MUST-33), with the errors of
        Linux's tcp_recv_urg, in its order: ENOTCONN on a listener; EINVAL with
        SO_OOBINLINE, with no urgent data, or once it was read; ENOTCONN once the
        connection is gone without a FIN; b"" when the octet cannot come any more
        (closed, FIN received, or shut down for reading); otherwise EAGAIN, even on a
        blocking socket (the call never waits).  ``peek`` (MSG_PEEK) leaves it unread."""
        urgent = self.urgent
        if self.state == S.LISTEN:
            raise _oserror(errno.ENOTCONN)
        if self.oobinline or urgent.state in (UrgentState.NONE, UrgentState.READ):
            raise _oserror(errno.EINVAL)
        if self.state == S.CLOSED and not self.fin_received:
            raise _oserror(errno.ENOTCONN)
        if urgent.state is UrgentState.VALID:
            if not peek:
                urgent.state = UrgentState.READ
            return bytes([urgent.octet])
        if self.state == S.CLOSED or self.fin_received or self.rcv_closed:
            return b""
        raise BlockingIOError(errno.EAGAIN, os.strerror(errno.EAGAIN))

    def shutdown(self, how: int, now: float) -> None:
        if self.state in (S.CLOSED, S.LISTEN, S.SYN_SENT) and not self.connecting:
            if self.state == S.LISTEN and how in (0, 2):
                self._close_listener(now)
                return
            raise _oserror(errno.ENOTCONN)
        if self.state == S.SYN_SENT:
            # Linux inet_shutdown disconnects a connecting socket (tcp_disconnect, no RST):
            # the attempt is abandoned, as CLOSE in SYN-SENT deletes the TCB (§3.10.4).
            self.connecting = False
            self._delete()
            return
        if how in (0, 2):
            self.rcv_closed = True
            self._wake()
        if how in (1, 2):
            self._close_write(now)

    def close(self, now: float) -> None:
        """RFC 9293 §3.10.4 CLOSE, with Linux's two abortive cases: SO_LINGER with
        a zero timeout, and unread received data (RFC 9293 §3.10.4 leaves it open;
        RFC 2525 §2.17 recommends the RST), both send RST and drop the connection."""
        if self.closed_by_app:
            return
        self.closed_by_app = True
        if self.state == S.LISTEN:
            self._close_listener(now)
            return
        if self.state in (S.CLOSED, S.SYN_SENT):
            self.connecting = False
            self._delete()
            return
        if (self.state.synchronized or self.state == S.SYN_RECEIVED) and (self.linger == 0 or self.rcv_buf):
            self.layer.stack.counters["tcp_abort_on_close"] += 1
            self._send_rst_for_abort(now)
            self._delete()
            return
        self._close_write(now)

    def _close_listener(self, now: float) -> None:
        for child in self.syn_queue + self.accept_queue:
            if child in self.accept_queue:  # Linux drops a half-open request silently
                child._send_rst_for_abort(now)
            child._delete()
        self.syn_queue.clear()
        self.accept_queue.clear()
        self._delete()

    def _close_write(self, now: float) -> None:
        """RFC 9293 §3.10.4: queue a FIN after the data; ESTABLISHED -> FIN-WAIT-1,
        CLOSE-WAIT -> LAST-ACK (the state changes once the FIN is sent)."""
        if self.fin_queued:
            return
        self.fin_queued = True
        self._wake()
        if self.state == S.SYN_RECEIVED and not self.snd_buf:
            # §3.10.4 SYN-RECEIVED with nothing to send: FIN now, -> FIN-WAIT-1 (Linux tcp_close_state)
            self._send_fin(now, self.snd_nxt)
            return
        if self.state in (S.ESTABLISHED, S.CLOSE_WAIT, S.SYN_RECEIVED):
            self._output(now)

    # ======================================================================================
    # Option negotiation and sizes (RFC 9293 §3.7.1, RFC 6691, RFC 7323, RFC 2018)
    # ======================================================================================
    def _init_send_space(self, now: float) -> None:
        profile = self.layer.stack.profile
        self.snd_una = self.snd_nxt = self.snd_max = self.iss
        self._buf_seq = self._pushed_seq = self.iss + 1
        self.rcv_wscale = profile.rcv_wscale
        mtu = self.layer.stack.ip.path_mtu(self.remote[0], now) if self.remote else 1500
        # RFC 6691 §2 / RFC 9293 §3.7.1: MSS = MTU - 40 (fixed headers only).
        self.mss_advertised = min(self.maxseg or 65535, mtu - IP_TCP_HEADERS)

    def eff_mss(self, mtu: int | None = None) -> int:
        """The effective send MSS of RFC 9293 §3.7.1 (MUST-16): the peer's MSS capped by
        the path MTU, less the TCP options every segment carries (timestamps).

        As Linux (tcp_bound_to_half_wnd), it is also capped at half the largest window
        the peer has offered (the whole window when that is at most 536 bytes), but
        never below 68 bytes of IP datagram; RFC 9293 §3.8.6.2.1 leaves the sender's
        segment sizes to it, and small segments into a small window avoid stalls."""
        assert self.remote is not None
        if mtu is None:
            mtu = self.layer.stack.ip.path_mtu(self.remote[0], self.now)
        mss = min(self.peer_mss, mtu - IP_TCP_HEADERS)
        if self.maxseg:
            mss = min(mss, self.maxseg)
        options = TS_OPTION_LEN if self.ts_ok else 0
        mss = max(mss - options, self.layer.stack.profile.tcp_min_snd_mss)
        window = self.max_snd_wnd
        if window:
            cutoff = window >> 1 if window > self.layer.stack.profile.tcp_default_mss else window
            if mss > cutoff:
                mss = max(cutoff, 68 - 20 - options)
        return mss

    def _current_mss(self, mtu: int | None = None) -> int:
        """The payload that fits the next segment: the effective MSS less the SACK
        blocks it will carry (Linux tcp_current_mss), so data never exceeds the MTU."""
        mss = self.eff_mss(mtu)
        if self.sack_ok:
            blocks = len(self.ooo.ranges()) + (1 if self._dsack is not None else 0)
            blocks = min(blocks, 3 if self.ts_ok else 4)
            if blocks:
                mss -= 4 + 8 * blocks  # NOP NOP kind len, then 8 bytes a block
        return mss

    def _syn_options(self, *, reply_to: Incoming | None) -> list[TcpOption]:
        """Linux's SYN option layout: MSS, SACK-permitted+TS (or NOP NOP TS), NOP WS;
        without TS: MSS, NOP NOP SACK-permitted, NOP WS.  A SYN-ACK offers an option
        only if the SYN did (RFC 7323 §2.2, §3.2; RFC 2018 §2)."""
        profile = self.layer.stack.profile
        want_ts = profile.tcp_timestamps and (reply_to is None or reply_to.ts is not None)
        want_sack = profile.tcp_sack and (reply_to is None or reply_to.sack_permitted)
        want_ws = profile.tcp_window_scaling and (reply_to is None or reply_to.wscale is not None)
        opts: list[TcpOption] = [Mss(self.mss_advertised)]
        if want_ts:
            ecr = reply_to.ts[0] if reply_to is not None and reply_to.ts else 0
            ts = Timestamps(self._tsval(), ecr)
            opts += [SACK_PERMITTED, ts] if want_sack else [NOP, NOP, ts]
        elif want_sack:
            opts += [NOP, NOP, SACK_PERMITTED]
        if want_ws:
            opts += [NOP, WindowScale(self.rcv_wscale)]
        return opts

    def _negotiate(self, syn: Incoming) -> None:
        """Record what both SYNs agreed (RFC 7323 §2.2: WS only if both sent it;
        §3.2: TS likewise; RFC 2018 §2: SACK)."""
        profile = self.layer.stack.profile
        if syn.mss is not None:
            self.peer_mss = syn.mss
        self.ws_ok = profile.tcp_window_scaling and syn.wscale is not None
        if self.ws_ok:
            assert syn.wscale is not None
            self.snd_wscale = min(syn.wscale, 14)  # RFC 7323 §2.3: use 14 if larger
        else:
            self.snd_wscale = self.rcv_wscale = 0
        self.ts_ok = profile.tcp_timestamps and syn.ts is not None
        if self.ts_ok:
            assert syn.ts is not None
            self.ts_recent = syn.ts[0]
        self.sack_ok = profile.tcp_sack and syn.sack_permitted
        # RFC 3168 §6.1.1: an ECN-setup SYN carries ECE and CWR, its SYN-ACK ECE alone.
        ecn_bits = syn.flags & (ECE | CWR)
        if syn.has_ack:
            self.ecn_ok = profile.tcp_ecn == 1 and ecn_bits == ECE
        else:
            self.ecn_ok = profile.tcp_ecn in (1, 2) and ecn_bits == ECE | CWR
        self.cc = NewReno(self.eff_mss(), profile.tcp_initial_cwnd, iss=self.iss, full_ack_to_ssthresh=True)
        if self.sack_ok:
            self.scoreboard = Scoreboard(self.eff_mss(), profile.tcp_reordering)

    def _tsval(self) -> int:
        """RFC 7323 §5.4: a millisecond clock plus a per-connection random offset (Linux)."""
        return (int(self.now * 1000) + self.ts_offset) & MASK

    # ======================================================================================
    # Receive window (RFC 9293 §3.8.6.2.2 receiver SWS avoidance, RFC 7323 §2.3)
    # ======================================================================================
    def _window_space(self) -> int:
        """Free receive buffer space as Linux advertises it: half the buffer with
        tcp_adv_win_scale 1 (the rest is overhead), never below zero."""
        profile = self.layer.stack.profile
        space = self.rcvbuf - len(self.rcv_buf) - self.ooo.bytes_queued
        if profile.tcp_adv_win_scale > 0:
            space -= space >> profile.tcp_adv_win_scale
        return max(0, min(space, 65535 << self.rcv_wscale))

    def _rcv_window(self) -> int:
        """The window to advertise: the free space rounded down to whole MSS
        (receiver SWS avoidance, MUST-39), never shrinking the right edge already
        offered (SHLD-14).  Once the peer's FIN is in, nothing more can arrive and the
        right edge stays where it was (Linux: the FIN's skb holds receive memory, so
        the ACK of a FIN offers 64239, not 64240)."""
        if self.fin_received:
            return max(self.rcv_adv - self.rcv_nxt, 0)
        space = self._window_space()
        mss = max(1, self.mss_advertised - (TS_OPTION_LEN if self.ts_ok else 0))
        if space > mss:
            space -= space % mss
        elif space < mss and space < self.rcvbuf // 2:
            space = 0
        window = max(space, self.rcv_adv - self.rcv_nxt)
        return window

    def _window_field(self, *, syn: bool) -> int:
        window = self._rcv_window()
        if syn:
            # The window of a SYN is never scaled (RFC 7323 §2.2); Linux rounds it down
            # to a multiple of the MSS (64240 = 44 x 1460, 65160 = 45 x 1448 with TS).
            mss = self.mss_advertised - (TS_OPTION_LEN if self.ts_ok and self.state != S.SYN_SENT else 0)
            window = min(window, 65535)
            window = window - window % mss if window > mss else window
            self._syn_window = window
            if self.state == S.SYN_RECEIVED:
                self.rcv_adv = max(self.rcv_adv, self.rcv_nxt + window)
            return window
        shift = self.rcv_wscale
        field = min((window + (1 << shift) - 1) >> shift, 0xFFFF)  # Linux rounds up
        self.rcv_adv = max(self.rcv_adv, self.rcv_nxt + (field << shift))
        return field

    def _maybe_window_update(self, now: float) -> None:
        """After the application reads: send a window update, as Linux does
        (tcp_cleanup_rbuf), when the window still offered is at most half the largest
        window the buffer allows and the window now available is at least twice it.
        RFC 9293 §3.8.6.2.2 fixes which window to offer (receiver SWS avoidance, done
        in :meth:`_rcv_window`) but leaves to the receiver when to send an update."""
        if not self.state.synchronized or self.fin_received:
            return
        offered = max(self.rcv_adv - self.rcv_nxt, 0)
        shift = self.layer.stack.profile.tcp_adv_win_scale
        clamp = self.rcvbuf - (self.rcvbuf >> shift) if shift > 0 else self.rcvbuf
        if 2 * offered > min(clamp, 65535 << self.rcv_wscale):
            return
        window = self._rcv_window()
        if window > 0 and window >= 2 * offered:
            self._send_ack(now)

    # ======================================================================================
    # Output
    # ======================================================================================
    def _emit(
        self,
        flags: int,
        seq: int,
        payload: bytes | bytearray = b"",
        *,
        ack_no: int | None = None,
        options: list[TcpOption] | None = None,
        ts_on_rst: bool = False,
        gso_size: int = 0,
    ) -> None:
        """Build one segment and hand it to IP (``gso_size``: a TSO super-segment of
        segments this size, on a route with TSO).  Every segment but a bare RST carries
        the ACK of RCV.NXT (RFC 9293 §3.10.7.4 "once in the ESTABLISHED state all
        segments must carry current acknowledgment information")."""
        assert self.local is not None and self.remote is not None
        now = self.now
        syn = bool(flags & SYN)
        raw_options = b""
        if options is None:
            # Linux's layout for every non-SYN segment: NOP NOP TS, then NOP NOP SACK.
            if self.ts_ok and (not flags & RST or ts_on_rst):
                raw_options = _TS_OPTION.pack(_NOP_NOP_TS_WORD, self._tsval(), self.ts_recent)
            if self.sack_ok and flags & ACK and not flags & RST:
                blocks = self._sack_blocks_to_send()
                if blocks:
                    raw_options += Sack(tuple((a & MASK, b & MASK) for a, b in blocks)).encode_aligned()
        ect = False
        if not flags & RST and (self.ecn_ok or flags & SYN):
            ecn_flags, ect = self._ecn_marks(flags, seq, payload)
            flags |= ecn_flags
        window = 0 if flags & RST and not flags & ACK else self._window_field(syn=syn)
        ack_value = self.rcv_nxt if ack_no is None else ack_no
        if flags & ACK:
            self.last_ack_sent = ack_value
            self._unacked_segments = 0
            self._delack_timer.cancel()
        # RFC 9293 §3.8.5 / §3.10.2: in urgent mode every segment before SND.UP carries
        # URG and the pointer, data or not (Linux __tcp_transmit_skb; refstack.tcp.urgent).
        urgent_pointer = None
        if self.snd_up > self.snd_una:
            urgent_pointer = pointer_for(seq, self.snd_una, self.snd_up, self.snd_nxt)
            if urgent_pointer is not None:
                flags |= URG
        route = self._current_route(now)
        segment = build_tcp(
            self.local[0],
            self.remote[0],
            self.local[1],
            self.remote[1],
            seq=seq & MASK,
            ack=ack_value & MASK if flags & ACK else 0,
            flags=flags,
            window=window,
            urgent_pointer=urgent_pointer or 0,
            options=options or (),
            options_bytes=raw_options if options is None else None,
            payload=payload,
            pseudo_base=self.rx_pseudo_base(),
            partial_checksum=route is not None and route.csum_offload,
        )
        self.layer.output(self, segment, now, ect=ect, gso_size=gso_size, route=route)
        self._last_send = now

    def _ecn_marks(self, flags: int, seq: int, payload: bytes | bytearray) -> tuple[int, bool]:
        """(TCP flags to add, ECT(0) or not) per RFC 3168 §6.1, as Linux: ECE|CWR on the
        first SYN when tcp_ecn = 1 (not on its retransmissions), ECE on the SYN-ACK to
        an ECN-setup SYN; then ECE on ACKs until the peer's CWR, CWR on the first new
        data after a reduction, and ECT(0) on new data only (no pure ACK, no
        retransmission: §6.1.4, §6.1.5)."""
        if flags & SYN:
            if flags & ACK:
                return (ECE if self.ecn_ok else 0), False
            want = self.layer.stack.profile.tcp_ecn == 1 and self.retransmits == 0
            return (ECE | CWR if want else 0), False
        if not self.ecn_ok:
            return 0, False
        extra = ECE if self._ece_pending and flags & ACK else 0
        new_data = bool(payload) and seq >= self.snd_max
        if new_data and self._cwr_pending:
            extra |= CWR
            self._cwr_pending = False
        return extra, new_data

    def _send_syn(self, now: float) -> None:
        flags = SYN | (ACK if self.state == S.SYN_RECEIVED else 0)
        self._emit(flags, self.iss, options=self._syn_options(reply_to=self._syn_in))
        self.snd_nxt = self.snd_max = max(self.snd_max, self.iss + 1)
        if not self._rtx_timer.armed:
            self._rtx_timer.arm(now + self._syn_rto())

    _syn_in: Incoming | None = None
    syncookie_stamp: float | None = None  # a listener: when it last sent a cookie (tcp_synq_overflow)
    from_cookie = False  # made by a SYN cookie's ACK (refstack.tcp.syncookies)
    _last_data_sent = 0.0  # when new data last left (Linux lsndtime), for RFC 5681 §4.1
    _syn_window = 0

    def _syn_rto(self) -> float:
        """SYN retransmission timeout.  RFC 6298 §5.5 doubles it each time; Linux's
        tcp_syn_linear_timeouts keeps it at the initial RTO until more than N timeouts
        have passed (tcp_retransmit_timer: backoff only when total_rto > N)."""
        linear = self.layer.stack.profile.tcp_syn_linear_timeouts if self.state == S.SYN_SENT else 0
        doublings = max(0, self.retransmits - linear)
        return min(self.rto.initial * (1 << doublings), self.rto.maximum)

    def _send_ack(self, now: float) -> None:
        self._emit(ACK, self.snd_nxt)

    def _send_ack_ratelimited(self, now: float) -> None:
        """RFC 5961 §7 / Linux tcp_invalid_ratelimit: at most one ACK to an
        unacceptable segment (or challenge ACK) per socket per interval."""
        if now - self._last_oow_ack < self.layer.stack.profile.tcp_invalid_ratelimit:
            self.layer.stack.counters["tcp_oow_ack_ratelimited"] += 1
            return
        self._last_oow_ack = now
        self._send_ack(now)

    def _send_challenge_ack(self, now: float) -> None:
        """RFC 5961 §7 challenge ACK, as Linux's tcp_send_challenge_ack: the per-socket
        throttle first, then (unless tcp_challenge_ack_limit is INT_MAX, the default)
        a system-wide budget per second of ``limit`` ACKs (Linux draws it at random in
        [limit/2, limit*3/2); refstack takes the mean)."""
        profile = self.layer.stack.profile
        limit = profile.tcp_challenge_ack_limit
        if limit >= 0x7FFFFFFF or now - self._last_oow_ack < profile.tcp_invalid_ratelimit:
            self._send_ack_ratelimited(now)
            return
        self._last_oow_ack = now
        second = int(now)
        if second != self.layer.challenge_second:
            self.layer.challenge_second, self.layer.challenge_left = second, limit
        if self.layer.challenge_left <= 0:
            self.layer.stack.counters["tcp_challenge_ack_limited"] += 1
            return
        self.layer.challenge_left -= 1
        self._send_ack(now)

    def _send_rst_for_abort(self, now: float) -> None:
        """RFC 9293 §3.10.5 ABORT: <SEQ=SND.NXT><CTL=RST>; Linux sets ACK too, and
        (tcp_send_active_reset) a timestamp when negotiated (RFC 7323 §3.2 SHOULD)."""
        if self.state.synchronized or self.state == S.SYN_RECEIVED:
            self._emit(RST | ACK, self.snd_nxt, ts_on_rst=True)

    def _sack_blocks_to_send(self) -> list[tuple[int, int]]:
        if not self.ooo.bytes_queued and self._dsack is None:
            self._sack_previous = []  # nothing held, nothing duplicated: sack_blocks gives none
            return []
        max_blocks = 3 if self.ts_ok else 4
        blocks = sack_blocks(
            self.ooo.ranges(),
            self._sack_latest,
            self._sack_previous,
            max_blocks=max_blocks,
            dsack=self._dsack,
        )
        self._dsack = None
        self._sack_previous = [b for b in blocks if b[0] >= self.rcv_nxt]
        return blocks

    def _expand_sndbuf(self) -> None:
        """Linux's send-buffer autotuning (tcp_sndbuf_expand): room for two congestion
        windows of segments (at least the initial window and DupThresh + 1), each
        counted at its in-memory size, as Reno's factor 2 provisions; never beyond
        tcp_wmem[2], never shrinking, never once the application set SO_SNDBUF.  Run
        when the connection is established and, while a send found the buffer full,
        on ACKs that are not cwnd-limited (tcp_should_expand_sndbuf).  RFC 9293 leaves
        buffer sizes to the implementation.  Only the limit follows Linux; what counts
        against it is the data queued (Linux counts its buffers' true size)."""
        if self.sndbuf_locked or self.remote is None:
            return
        profile = self.layer.stack.profile
        mss = max(self.peer_mss, self.eff_mss())
        per_mss = 1 << (mss + _SKB_OVERHEAD - 1).bit_length()  # roundup_pow_of_two
        per_mss += _SKB_STRUCT
        cwnd_segments = self.cc.cwnd // max(self.cc.mss, 1)
        segments = max(profile.tcp_initial_cwnd, cwnd_segments, profile.tcp_reordering + 1)
        self.sndbuf = max(self.sndbuf, min(2 * segments * per_mss, profile.tcp_wmem[2]))

    def _flight_size(self) -> int:
        return self.snd_max - self.snd_una

    def _output(self, now: float, *, sws_override: bool = False) -> None:
        """Send what the windows, Nagle (RFC 9293 §3.7.4) and sender SWS avoidance
        (§3.8.6.2.1) allow, then a FIN if the application closed (§3.10.4).

        After a retransmission timeout the segments from SND.UNA on are resent from a
        retransmission cursor (RFC 6298 §5.4 and the go-back of RFC 5681 §3.1's slow
        start).  SND.NXT itself never moves back, as in Linux: a pure ACK sent then
        still carries a current sequence number, which the peer must find acceptable
        (§3.10.7.4 first); lowering it would make the peer drop our ACKs."""
        if self.state not in _OUTPUT_STATES:
            return
        if (
            self._rtx_next is None
            and not self.fin_queued
            and self._buf_seq + len(self.snd_buf) <= self.snd_nxt
        ):
            return  # nothing to send: Linux's cwnd restart and PMTU cookie wait for data too
        assert self.remote is not None
        route = self._current_route(now)
        mtu = route.mtu if route is not None else self.layer.stack.ip.path_mtu(self.remote[0], now)
        self._pmtu_cookie = mtu
        mss = self._current_mss(mtu)
        profile = self.layer.stack.profile
        # TSO (refstack.nic.offload): new data goes in super-segments of whole MSS the
        # device cuts up, as Linux's tcp_write_xmit with tcp_tso_segs; retransmissions
        # stay one MSS.
        tso_max = (TSO_MAX_DATAGRAM - 20 - 60) // mss * mss if route is not None and route.tso else mss
        while True:
            data_end = self._buf_seq + len(self.snd_buf)
            rtx = self._rtx_next
            if rtx is not None and rtx < self.snd_una:
                rtx = self.snd_una
            if rtx is not None and rtx >= self.snd_nxt:
                rtx = None
            self._rtx_next = rtx
            point = rtx if rtx is not None else self.snd_nxt
            cwnd = self.cc.cwnd
            if rtx is None and 0 < self.dupacks < profile.tcp_reordering and not self.cc.in_recovery:
                # RFC 5681 §3.2 step 1 (RFC 3042 limited transmit): the first and second
                # duplicate ACKs each let one segment of new data go beyond cwnd.
                cwnd += self.dupacks * mss
            if rtx is None and self.snd_max == self.snd_una and profile.tcp_slow_start_after_idle:
                # RFC 5681 §4.1: idle for more than an RTO since data was last sent,
                # restart from min(IW, cwnd) (Linux tcp_cwnd_restart on its lsndtime).
                self.cc.after_idle(now - self._last_data_sent, self.rto.rto)
                cwnd = self.cc.cwnd
            usable = self.snd_una + min(self.snd_wnd, cwnd) - point
            unsent = data_end - point
            # The FIN's sequence number is the end of the data; it is (re)sent while
            # the send point has not passed it.
            fin_pending = self.fin_queued and point <= data_end
            if unsent <= 0:
                if fin_pending:
                    self._send_fin(now, data_end)  # a bare FIN goes even into a closed window
                self._rtx_next = None
                break
            if usable <= 0:
                if self.snd_wnd == 0 and self.snd_max == self.snd_una:
                    self._arm_persist(now)
                break
            size = min(mss if rtx is not None else tso_max, unsent, usable)
            if size > mss:
                size -= size % mss  # a partial last segment goes on its own, under Nagle
            if rtx is not None:
                size = min(size, self.snd_nxt - point)  # the go-back resends only what was sent
            if rtx is None:
                # Sender SWS avoidance: a partial window only when it is half the peer's max.
                # The persist timer is the override timeout of RFC 9293 §3.8.6.2.1: when
                # it fires, what the window allows goes (Linux tcp_write_wakeup).
                if not sws_override and size < mss and size < unsent and size < self.max_snd_wnd // 2:
                    if self.snd_max == self.snd_una:
                        self._arm_persist(now)
                    break
                # Nagle (RFC 9293 §3.7.4, RFC 1122 §4.2.3.4) in Minshall's variant, as
                # Linux (tcp_minshall_check): hold a small segment while an earlier
                # *small* one is unacknowledged, unless TCP_NODELAY; TCP_CORK holds it.
                # Neither holds anything in urgent mode (SND.UP beyond SND.UNA: Linux
                # tcp_nagle_test "does not use the nagle rule for urgent data").
                small = size < mss and size == unsent and not fin_pending
                small = small and self.snd_up <= self.snd_una
                if small and (self.cork or (not self.nodelay and self._snd_sml > self.snd_una)):
                    break
            start = point - self._buf_seq
            payload = self.snd_buf[start : start + size]
            end = point + size
            with_fin = fin_pending and end == data_end  # Linux lets the FIN ride on the last data
            # PSH (RFC 9293 §3.9.1 leaves it to the sender) as Linux sets it: on the
            # segment that ends the queued data, and on one that takes the data pushed
            # past half the peer's largest window since the last push (forced_push).
            push = end == data_end or (rtx is None and end - self._pushed_seq > self.max_snd_wnd >> 1)
            push = push or sws_override  # Linux tcp_write_wakeup sets PSH on what it splits off
            push = push or end in self._psh_ends  # a retransmission keeps its PSH, as Linux's skb
            if push and rtx is None:
                self._pushed_seq = end
                self._psh_ends.add(end)
                self._psh_order.append(end)
            flags = ACK | (PSH if push else 0) | (FIN if with_fin else 0)
            self._emit(flags, point, payload, gso_size=mss if size > mss else 0)
            if rtx is None:
                if self._rtt_seq is None and not self.ts_ok:
                    self._rtt_seq, self._rtt_start = end, now
                self._last_data_sent = now
                self.snd_nxt = end
                if size < mss:
                    self._snd_sml = end
            else:
                self.total_retrans += 1
                self._rtx_next = end
            if with_fin:
                self._fin_sent(end)
            self.snd_max = max(self.snd_max, self.snd_nxt)
            if not self._rtx_timer.armed:
                self._rtx_timer.arm(now + self.rto.rto)
            if with_fin:
                break

    def _send_fin(self, now: float, seq: int) -> None:
        self._emit(FIN | ACK, seq)
        self._fin_sent(seq)
        self.snd_max = max(self.snd_max, self.snd_nxt)
        if not self._rtx_timer.armed:
            self._rtx_timer.arm(now + self.rto.rto)

    def _fin_sent(self, seq: int) -> None:
        """Our FIN is out (maybe again): ESTABLISHED -> FIN-WAIT-1, CLOSE-WAIT -> LAST-ACK (§3.10.4)."""
        self.fin_seq = seq
        self.snd_nxt = max(self.snd_nxt, seq + 1)
        self.snd_max = max(self.snd_max, self.snd_nxt)  # a retransmission may carry it first
        if self.state in (S.ESTABLISHED, S.SYN_RECEIVED):
            self.state = S.FIN_WAIT_1
        elif self.state == S.CLOSE_WAIT:
            self.state = S.LAST_ACK

    # ======================================================================================
    # Timers
    # ======================================================================================
    def _on_rtx_timer(self, now: float) -> None:
        """RFC 6298 §5.4-5.6: retransmit the earliest unacknowledged segment, back off,
        restart the timer; RFC 5681 §3.1 eq. 4 shrinks the window; RFC 9293 §3.8.3
        (MUST-20) gives up after R2 (tcp_retries2 / tcp_syn_retries)."""
        profile = self.layer.stack.profile
        counters = self.layer.stack.counters
        # A FIN sent from SYN-RECEIVED (close() after a simultaneous open) leaves the SYN
        # unacknowledged in FIN-WAIT-1: the SYN,ACK is what goes again, as on Linux.
        syn_unacked = self.state == S.FIN_WAIT_1 and self.snd_una == self.iss
        if self.state in (S.SYN_SENT, S.SYN_RECEIVED) or syn_unacked:
            # Linux allows tcp_syn_retries + tcp_syn_linear_timeouts SYN retransmissions
            # (tcp_write_timeout), so the linear knob adds tries rather than replacing them.
            if self.state == S.SYN_SENT:
                limit = profile.tcp_syn_retries + profile.tcp_syn_linear_timeouts
            elif not self.passive:  # a simultaneous open's SYN-ACK: tcp_syn_retries, as Linux
                limit = profile.tcp_syn_retries
            else:
                limit = profile.tcp_synack_retries
            user_timeout = self.user_timeout if self.state == S.SYN_SENT else 0.0
            if self.retransmits >= limit or (user_timeout and now - self._rtx_stamp >= user_timeout - 1e-9):
                counters["tcp_syn_timeout"] += 1
                self._abort(errno.ETIMEDOUT)
                return
            self.retransmits += 1
            self.total_retrans += 1
            counters["tcp_syn_retransmit"] += 1
            self._emit(
                SYN | (ACK if self.state != S.SYN_SENT else 0),
                self.iss,
                options=self._syn_options(reply_to=self._syn_in),
            )
            rto = self._syn_rto()
            if user_timeout:  # Linux tcp_clamp_rto_to_user_timeout
                rto = max(min(rto, self._rtx_stamp + user_timeout - now), 0.004)
            self._rtx_timer.arm(now + rto)
            return
        if self.snd_una >= self.snd_max:
            return
        if self.retransmits == 0:
            self._rtx_stamp = now  # Linux counts the user timeout from the first retransmission
        # Linux tcp_write_timeout: TCP_USER_TIMEOUT, when set, replaces tcp_retries2 as R2.
        if self.user_timeout:
            expired = self.retransmits > 0 and now - self._rtx_stamp >= self.user_timeout - 1e-9
        else:
            expired = self.retransmits >= profile.tcp_retries2
        if expired:
            counters["tcp_retransmit_timeout"] += 1
            self._abort(errno.ETIMEDOUT)
            return
        counters["tcp_rto_retransmit"] += 1
        self.cc.on_timeout(self._flight_size(), repeated=self.retransmits > 0, snd_nxt=self.snd_max)
        self._cwr_pending = self._cwr_pending or self.ecn_ok  # RFC 3168 §6.1.2: any reduction
        self._sack_recovery = False
        if self.scoreboard is not None:
            self.scoreboard.reset()  # RFC 2018 §8: the receiver may have reneged
        self.retransmits += 1
        self.rto.backoff()
        self.dupacks = 0
        self._rtt_seq = None  # Karn: no sample from a retransmitted segment
        rto = self.rto.rto
        if self.user_timeout:  # Linux tcp_clamp_rto_to_user_timeout
            rto = max(min(rto, self._rtx_stamp + self.user_timeout - now), 0.004)
        self._rtx_timer.arm(now + rto)
        # Go back: resend SND.UNA's segment now, the rest as the window reopens.
        self._rtx_next = self._retransmit_one(now)

    def _retransmit_one(self, now: float) -> int:
        """Resend one MSS from SND.UNA (with the FIN if it is the last data, or the FIN
        alone); return the sequence number after what was resent."""
        data_end = self._buf_seq + len(self.snd_buf)
        mss = self._current_mss()
        self.total_retrans += 1
        if self.snd_una < data_end:
            start = self.snd_una - self._buf_seq
            # Only what was sent before: the MSS may have grown since (fewer SACK blocks),
            # and octets past SND.NXT are new data the window may not allow.
            size = min(mss, max(self.snd_nxt - self.snd_una, 1))
            payload = bytes(self.snd_buf[start : start + size])
            end = self.snd_una + len(payload)
            fin = self.fin_queued and end == data_end
            push = end == data_end or end in self._psh_ends
            self._emit(ACK | (PSH if push else 0) | (FIN if fin else 0), self.snd_una, payload)
            if fin:
                self._fin_sent(end)
                return end + 1
            return end
        if self.fin_queued:
            self._emit(FIN | ACK, data_end)
            self._fin_sent(data_end)
            return data_end + 1
        return self.snd_una

    def resegment(self, now: float) -> None:
        """The path MTU fell (RFC 1191 §6.4): resend what is in flight at the new size.
        Only if it fell below the MTU the data was sent with (Linux tcp_v4_mtu_reduced:
        icsk_pmtu_cookie > mtu); a Too Big that lowers nothing changes nothing."""
        assert self.remote is not None
        mtu = self.layer.stack.ip.path_mtu(self.remote[0], now)
        if self._pmtu_cookie is not None and mtu >= self._pmtu_cookie:
            return
        self._pmtu_cookie = mtu
        if self.snd_max > self.snd_una:
            self._rtx_next = self._retransmit_one(now)
            self._output(now)

    def _on_delack_timer(self, now: float) -> None:
        if self.state.synchronized or self.state == S.SYN_RECEIVED:
            self._send_ack(now)

    def _arm_persist(self, now: float) -> None:
        if not self._persist_timer.armed and not self._rtx_timer.armed:
            self._persist_timer.arm(
                now + min(self.rto.base_rto * (2**self._persist_backoff), self.rto.maximum)
            )

    def _on_persist_timer(self, now: float) -> None:
        """Zero-window probe (RFC 9293 §3.8.6.1, MUST-36; SHLD-29/30 backoff).  Linux
        probes with a bare ACK at SND.UNA-1, which the peer must answer (§3.10.7.4 s1).
        In urgent mode (SND.UP within 0xFFFF above SND.UNA) an ACK at SND.UNA goes
        first: it carries the urgent pointer into the closed window, in a segment the
        peer finds acceptable (Linux tcp_write_wakeup: tcp_xmit_probe_skb(sk, 1))."""
        if self.snd_wnd > 0 or not self.state.synchronized:
            self._persist_backoff = 0
            self._output(now, sws_override=True)
            return
        if self._buf_seq + len(self.snd_buf) <= self.snd_una and not self.fin_queued:
            return
        if self._probes_out >= self.layer.stack.profile.tcp_retries2:  # Linux tcp_probe_timer
            self._abort(errno.ETIMEDOUT)
            return
        self.layer.stack.counters["tcp_zero_window_probe"] += 1
        if self.snd_una < self.snd_up < self.snd_una + 0x10000:
            self._emit(ACK, self.snd_una)
        self._emit(ACK, self.snd_una - 1)
        self._probes_out += 1
        self._persist_backoff += 1
        self._arm_persist(now)

    def _on_keepalive_timer(self, now: float) -> None:
        """RFC 1122 §4.2.3.6 / RFC 9293 §3.8.4: after idle time, probe with
        <SEQ=SND.UNA-1>, no data (SHLD-12); give up after keepcnt unanswered probes."""
        if not self.keepalive or self.state not in (S.ESTABLISHED, S.CLOSE_WAIT, S.FIN_WAIT_2):
            return
        idle = now - self._last_recv
        if self.snd_max > self.snd_una:
            self._keepalive_timer.arm(now + self.keepidle)
            return
        if self._keepalive_probes == 0 and idle < self.keepidle - 1e-9:
            self._keepalive_timer.arm(self._last_recv + self.keepidle)
            return
        if self._keepalive_probes >= self.keepcnt:
            # Linux resets the connection it gives up on (tcp_send_active_reset).
            self.layer.stack.counters["tcp_keepalive_timeout"] += 1
            self._send_rst_for_abort(now)
            self._abort(errno.ETIMEDOUT)
            return
        self._keepalive_probes += 1
        self.layer.stack.counters["tcp_keepalive_probe"] += 1
        self._emit(ACK, self.snd_una - 1)
        self._keepalive_timer.arm(now + self.keepintvl)

    def arm_keepalive(self, now: float) -> None:
        if self.keepalive and self.state.synchronized:
            # Idle time counts from the last segment received (Linux keepalive_time_elapsed).
            self._keepalive_timer.arm(max(now, self._last_recv + self.keepidle))
        else:
            self._keepalive_timer.cancel()

    def _on_timewait_timer(self, now: float) -> None:
        self._delete()

    def _enter_time_wait(self, now: float) -> None:
        """RFC 9293 §3.6.1 MUST-13: linger 2MSL (Linux: TCP_TIMEWAIT_LEN, 60 s)."""
        self.state = S.TIME_WAIT
        self._cancel_timers()
        self._timewait_timer.arm(now + self.layer.stack.profile.tcp_timewait_len)
        self._wake()

    def _cancel_timers(self) -> None:
        for t in (self._rtx_timer, self._delack_timer, self._persist_timer, self._keepalive_timer):
            t.cancel()

    # ======================================================================================
    # Teardown
    # ======================================================================================
    def _abort(self, err: int) -> None:
        """Drop the connection and report ``err`` (MUST-12: the app learns it was an abort)."""
        self.error = err
        if self.connecting:
            self._connect_errno = err
            self.connecting = False
        self._delete()

    def _delete(self) -> None:
        """-> CLOSED, delete the TCB (RFC 9293 §3.10.7 "enter the CLOSED state")."""
        was_listener = self.state == S.LISTEN
        self.state = S.CLOSED
        self._cancel_timers()
        self._timewait_timer.cancel()
        self.snd_buf.clear()
        self.ooo.clear()
        self.layer.forget(self, listener=was_listener)
        if self.parent is not None:
            parent = self.parent
            if self in parent.syn_queue:
                parent.syn_queue.remove(self)
            # An accept-queue child stays queued: Linux's accept() still returns a
            # connection reset before it was accepted, and reads then report the reset.
        self._wake()

    # ======================================================================================
    # SEGMENT ARRIVES (RFC 9293 §3.10.7)
    # ======================================================================================
    def predicted_arrives(self, fields: tuple[int, ...], data: bytes, gso_size: int, now: float) -> bool:
        """Header prediction (Van Jacobson's, RFC 1323 Appendix; Linux
        ``tcp_rcv_established``): take the segment the connection expects next without
        the general steps of §3.10.7.4, or return False, having changed nothing, for
        the general path to take it.

        ``fields`` are :func:`~refstack.wire.tcp.predicted_fields` of the segment,
        ``data`` its text.  Predicted: ESTABLISHED; ACK with at most PSH; SEG.SEQ =
        RCV.NXT; SND.UNA =< SEG.ACK =< SND.MAX, and a new ACK when it carries nothing
        while data is in flight (a duplicate ACK is loss recovery's); the timestamps
        option exactly when negotiated, passing PAWS (RFC 7323 §5.3); text only when
        it fits the window, nothing is queued out of order, no FIN is held, the
        receive side is open and no urgent pointer or D-SACK is pending.  Then the
        outcome is what the general steps give for such a segment: every check
        passes and the same ACK processing (fifth step), window update and text
        delivery (seventh) run, in the same order (tested in
        ``tests/tcp/test_header_prediction.py`` against the general path).  The
        caller has verified the checksum and that the IP header's ECN field is not
        CE."""
        if self.state is not S.ESTABLISHED or self.fin_seq is not None:
            return False
        if fields[4] & ~PSH != ACK:
            return False
        rcv_nxt = self.rcv_nxt
        if fields[2] != rcv_nxt & MASK:
            return False
        tsval = fields[8]
        if self.ts_ok:
            if tsval < 0 or (tsval - self.ts_recent) & MASK >= 1 << 31:
                return False
        elif tsval >= 0:
            return False
        snd_una = self.snd_una
        ack = snd_una + ((fields[3] - snd_una) & MASK)
        if ack > self.snd_max:
            return False
        n = len(data)
        if n:
            if (
                rcv_nxt + n > self.rcv_adv
                or self.ooo.bytes_queued
                or self._ooo_fin is not None
                or self._dsack is not None
                or self.rcv_closed
                or self.closed_by_app
            ):
                return False
        elif ack == snd_una and self.snd_max != snd_una:
            return False
        if self.urgent.state is UrgentState.PENDING:
            return False
        self._last_recv = now
        self._keepalive_probes = 0
        if tsval >= 0 and rcv_nxt <= self.last_ack_sent <= rcv_nxt + n:
            self.ts_recent = tsval  # RFC 7323 §4.3
        # fifth: the ACK field (the checks of _process_ack all pass here)
        self._probes_out = 0
        if self.scoreboard is not None:
            self.scoreboard.update(ack, (), snd_nxt=self.snd_max)
        if ack > snd_una:
            self._new_ack(ack, fields[9] if tsval >= 0 else None, now)
        self._take_window(rcv_nxt, ack, fields[5])
        self._output(now)
        # seventh: the text, in order
        if n:
            full = self._text_received(n, gso_size)
            self._take_in_order(data, fields[9] if tsval >= 0 else None, now)
            self._acknowledge_data(full, False, now)
        return True

    def segment_arrives(self, seg: Incoming, now: float) -> None:
        self._last_recv = now
        self._keepalive_probes = 0
        if self.state == S.LISTEN:
            self._listen_arrives(seg, now)
        elif self.state == S.SYN_SENT:
            self._syn_sent_arrives(seg, now)
        else:
            self._synchronized_arrives(seg, now)

    # --- §3.10.7.2 LISTEN ---------------------------------------------------------------------
    def _listen_arrives(self, seg: Incoming, now: float) -> None:
        counters = self.layer.stack.counters
        if seg.rst:  # L1: an incoming RST is ignored
            return
        if seg.has_ack:  # L2: <SEQ=SEG.ACK><CTL=RST>, unless it returns a SYN cookie
            if not seg.syn and self.layer.cookie_ack(self, seg, now):
                return
            self.layer.send_reset_for(seg, self, now)
            return
        if not seg.syn:  # L4: anything else is dropped
            counters["tcp_listen_drop"] += 1
            return
        # A FIN on the SYN is "queued for processing later" (L3): it is not acked, so
        # the peer sends it again once synchronized.  Linux drops SYN+FIN (D10).
        # L3: a SYN.  Linux (tcp_conn_request) first decides on a SYN cookie (the SYN
        # queue is full, or tcp_syncookies=2: refstack.tcp.syncookies), then drops the
        # SYN when the accept queue is full, full meaning more than the backlog
        # (sk_acceptq_is_full), so listen(1) queues 2.
        want_cookie = self.layer.want_cookie(self)
        if self.accept_queue_full or (not want_cookie and self.layer.stack.onload.syn_queue_full(self)):
            counters["tcp_listen_overflow"] += 1
            return
        if want_cookie:
            self.layer.send_cookie(self, seg, now)
            return
        self.layer.spawn_child(self, seg, now)

    def start_passive(self, listener: TcpEndpoint, syn: Incoming, now: float) -> None:
        """L3 continued: set IRS/RCV.NXT, choose ISS, send <SYN,ACK>, -> SYN-RECEIVED."""
        self._passive_setup(listener, syn, now, iss=None)
        self._send_syn(now)

    def send_cookie_synack(self, listener: TcpEndpoint, syn: Incoming, cookie: int, now: float) -> None:
        """The SYN-ACK answering ``syn`` with a SYN cookie (RFC 4987 §3.6), from a TCB
        that is set up as for L3 but never indexed, timed or kept (Linux sends it from a
        request it frees at once).  ISS = ``cookie``.  Without timestamps Linux clears the
        SYN's options (tcp_clear_options, ecn_ok = 0): MSS only; with them, the TSval's
        low bits carry window scale, SACK and ECN (:func:`refstack.tcp.syncookies.encode_ts`)."""
        profile = self.layer.stack.profile
        if not (profile.tcp_timestamps and syn.ts is not None):
            syn = dataclasses.replace(syn, wscale=None, sack_permitted=False, flags=syn.flags & ~(ECE | CWR))
        self._passive_setup(listener, syn, now, iss=cookie)
        options = self._syn_options(reply_to=syn)
        if self.ts_ok:
            carried = CookieOptions(self.snd_wscale if self.ws_ok else None, self.sack_ok, self.ecn_ok)
            tsval = (encode_ts(int(now * 1000), carried) + self.ts_offset) & MASK
            options = [Timestamps(tsval, o.tsecr) if isinstance(o, Timestamps) else o for o in options]
        self._emit(SYN | ACK, self.iss, options=options)

    def start_from_cookie(
        self, listener: TcpEndpoint, ack: Incoming, mss: int, options: CookieOptions, now: float
    ) -> None:
        """The connection a valid SYN cookie creates (Linux cookie_v4_check,
        tcp_get_cookie_sock): IRS = SEG.SEQ - 1, ISS = SEG.ACK - 1, the peer's MSS from
        the cookie, window scale, SACK and ECN from the echoed timestamp (none without
        one); then ``ack`` itself is processed as the handshake's last segment, so this
        connection goes ESTABLISHED and into the accept queue, data and FIN included."""
        flags = SYN | (ECE | CWR if options.ecn else 0)
        syn = Incoming(
            seq=(ack.seq - 1) & MASK,
            ack=0,
            flags=flags,
            wnd=ack.wnd,
            up=0,
            payload=b"",
            mss=mss,
            wscale=options.wscale,
            sack_permitted=options.sack,
            ts=(ack.ts[0], 0) if ack.ts is not None else None,
            source=ack.source,
            destination=ack.destination,
        )
        self.from_cookie = True
        self._passive_setup(listener, syn, now, iss=(ack.ack - 1) & MASK)
        self.snd_nxt = self.snd_max = self.iss + 1  # the cookie's SYN-ACK was sent
        self._window_field(syn=True)  # RCV.ADV: the window that SYN-ACK offered
        self._last_send = now
        ack = dataclasses.replace(ack, seq=self.rcv_nxt, ack=self.iss + 1, sack_blocks=())
        self.segment_arrives(ack, now)
        if self.state == S.SYN_RECEIVED:  # not taken after all: keep no half-open state
            self._delete()

    def _passive_setup(self, listener: TcpEndpoint, syn: Incoming, now: float, *, iss: int | None) -> None:
        """L3's TCB for ``syn``: options copied from the listener, IRS, ISS (``iss``, else
        RFC 6528's), the negotiated options, SYN-RECEIVED; nothing sent."""
        assert self.local is not None and self.remote is not None
        for name in (
            "nodelay",
            "keepalive",
            "keepidle",
            "keepintvl",
            "keepcnt",
            "user_timeout",
            "recverr",
            "linger",
            "rcvbuf",
            "sndbuf",
            "sndbuf_locked",
            "rcvbuf_locked",
            "maxseg",
            "ttl",
            "tos",
            "oobinline",
        ):
            setattr(self, name, getattr(listener, name))
        self.passive = True
        self.parent = listener
        self.irs = syn.seq
        self.rcv_nxt = self.rcv_adv = syn.seq + 1
        if iss is not None:
            self.iss = iss
        else:
            self.iss = self.layer.isn.isn(self.local[0], self.local[1], self.remote[0], self.remote[1], now)
            if self.layer.reopen_isn is not None:  # the SYN reopened a TIME-WAIT connection
                self.iss, self.layer.reopen_isn = self.layer.reopen_isn, None
        self.ts_offset = self.layer.isn.ts_offset(self.local[0], self.remote[0])
        self._init_send_space(now)
        self.state = S.SYN_RECEIVED
        self._syn_in = syn
        self._negotiate(syn)
        self.snd_wnd = syn.wnd  # the window in a SYN is never scaled (RFC 7323 §2.2)
        self.snd_wl1, self.snd_wl2 = syn.seq, self.iss
        self.max_snd_wnd = self.snd_wnd

    # --- §3.10.7.3 SYN-SENT ----------------------------------------------------------------
    def _syn_sent_arrives(self, seg: Incoming, now: float) -> None:
        # SS1: the ACK bit.
        if seg.has_ack and not (self.iss < seg.ack <= self.snd_nxt):
            if not seg.rst:
                self.layer.send_reset_for(seg, self, now)  # <SEQ=SEG.ACK><CTL=RST>
            return
        acceptable_ack = seg.has_ack
        # SS2: the RST bit.  With an acceptable ACK the connection is refused (Linux
        # reports ECONNREFUSED, divergence D10/D12); without one, drop.
        if seg.rst:
            if acceptable_ack:
                self.layer.stack.counters["tcp_connect_refused"] += 1
                self._abort(errno.ECONNREFUSED)
            return
        # SS4: the SYN bit.
        if not seg.syn:
            return  # SS5: neither SYN nor RST: drop
        self.irs = seg.seq
        self.rcv_nxt = seg.seq + 1
        self.rcv_adv = self.rcv_nxt + self._syn_window  # what our SYN offered
        self._syn_in = seg
        self._negotiate(seg)
        if acceptable_ack:
            self._rtx_timer.cancel()
            # Our SYN is acknowledged: -> ESTABLISHED, send <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>.
            self.snd_una = seg.ack
            if self.retransmits == 0 and not self.ts_ok:
                self.rto.on_rtt_sample(now - self._last_send)
            elif self.ts_ok and seg.ts is not None and seg.ts[1]:
                self._ts_rtt_sample(seg.ts[1], now)
            # RFC 6298 §5.7: no sample after a SYN (or SYN-ACK) timeout -> RTO 3 s.
            self.rto.on_handshake_complete(syn_was_retransmitted=self.retransmits > 0)
            self.retransmits = 0
            self._update_window(seg, force=True)
            self._establish(now)
            self._send_ack(now)
            self._output(now)
            self._urgent_arrives(seg)  # "continue processing at the sixth step" (Linux: tcp_urg)
            if seg.fin and not seg.payload:
                # "continue processing at the sixth step": the FIN is processed (eighth
                # step); Linux discards it with the SYN-ACK's payload (D10).
                self._fin_arrives(now)
            return
        # Simultaneous open (MUST-10): -> SYN-RECEIVED, send <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>.
        self.state = S.SYN_RECEIVED
        self.snd_wnd = seg.wnd
        self.snd_wl1 = seg.seq
        self.retransmits = 0
        self._emit(SYN | ACK, self.iss, options=self._syn_options(reply_to=seg))
        if not self._rtx_timer.armed:  # Linux keeps the SYN's timer running (tcp_rcv_synsent_state_process)
            self._rtx_timer.arm(now + self._syn_rto())

    def _establish(self, now: float) -> None:
        self.state = S.ESTABLISHED
        if self.connecting:
            self.connecting = False
            self._connect_errno = 0
        self.layer.stack.counters["tcp_established"] += 1
        self._last_data_sent = now  # Linux tcp_init_transfer: no restart on the first data
        self._expand_sndbuf()  # Linux tcp_init_buffer_space
        self._rcvq_space = min(max(self.rcv_adv - self.rcv_nxt, 0), 10 * self.mss_advertised)
        self._rcvq_seq, self._rcvq_time = self._copied_seq(), now
        self.arm_keepalive(now)
        self._wake()

    # --- §3.10.7.4 other states ----------------------------------------------------------
    def _acceptable(self, seg: Incoming) -> bool:
        """§3.10.7.4 first: the four cases of the acceptability test (SM-5)."""
        wnd = self.rcv_adv - self.rcv_nxt
        if self.state == S.SYN_RECEIVED and wnd <= 0:
            wnd = self._rcv_window()
        seg_len = len(seg.payload) + (1 if seg.syn else 0) + (1 if seg.fin else 0)
        if seg_len == 0:
            if wnd == 0:
                return seg.seq == self.rcv_nxt
            return self.rcv_nxt <= seg.seq < self.rcv_nxt + wnd
        if wnd == 0:
            return False
        return (self.rcv_nxt <= seg.seq < self.rcv_nxt + wnd) or (
            self.rcv_nxt <= seg.seq + seg_len - 1 < self.rcv_nxt + wnd
        )

    def _synchronized_arrives(self, seg: Incoming, now: float) -> None:
        counters = self.layer.stack.counters
        # SYN-RECEIVED reached passively: a retransmitted SYN gets the SYN-ACK again
        # (Linux, divergence D8; RFC 9293 ambiguity A4).
        # Reached actively (simultaneous open), it fails the first check and gets an ACK.
        if (
            self.state == S.SYN_RECEIVED
            and self.passive
            and seg.syn
            and not seg.has_ack
            and seg.seq == self.irs
        ):
            counters["tcp_syn_retransmit_received"] += 1
            self._emit(SYN | ACK, self.iss, options=self._syn_options(reply_to=seg))
            return
        # TIME-WAIT: a retransmitted FIN is acknowledged and the 2MSL timer restarted
        # (RFC 9293 §3.10.7.4 eighth, MUST-13).
        if self.state == S.TIME_WAIT and seg.fin and not seg.rst and seg.end == self.rcv_nxt:
            self._send_ack(now)
            self._timewait_timer.arm(now + self.layer.stack.profile.tcp_timewait_len)
            return
        # TIME-WAIT: a new SYN above RCV.NXT, or with a newer timestamp (RFC 6191), may
        # reopen the connection (MAY-2, SHLD-4) when a listener takes it, as Linux does.
        if (
            self.state == S.TIME_WAIT
            and seg.syn
            and not (seg.has_ack or seg.rst)
            and (
                seg.seq > self.rcv_nxt
                or (self.ts_ok and seg.ts is not None and 0 < ((seg.ts[0] - self.ts_recent) & MASK) < 1 << 31)
            )
            and self.layer.reopen_from_time_wait(self, seg, now)
        ):
            return
        # RFC 7323 §5.3 PAWS: a timestamp older than TS.Recent makes the segment
        # unacceptable (an RST is exempt, R1 of §5.3).
        if (
            self.ts_ok
            and seg.ts is not None
            and not seg.rst
            and ((self.ts_recent - seg.ts[0]) & MASK) != 0
            and ((seg.ts[0] - self.ts_recent) & MASK) >= 1 << 31
        ):
            counters["tcp_paws_reject"] += 1
            self._send_ack_ratelimited(now)
            return
        # first: sequence number check (SM-5).
        if not self._acceptable(seg):
            counters["tcp_rx_unacceptable"] += 1
            if seg.rst:
                return
            if seg.syn:  # Linux tcp_validate_incoming: an out-of-window SYN is a challenge
                counters["tcp_challenge_ack_syn"] += 1  # (rate-limited, RFC 5961 §4, §7)
                self._send_challenge_ack(now)
                return
            if seg.seg_len:
                # Linux's tcp_send_dupack: a segment carrying data or FIN is always
                # answered (only pure ACKs are rate limited, matrix D13), with a D-SACK
                # when it lies below RCV.NXT (RFC 2883 §4).
                if seg.seq < self.rcv_nxt and self.sack_ok and self.layer.stack.profile.tcp_dsack:
                    self._dsack = (seg.seq, min(seg.end, self.rcv_nxt))
                self._send_ack(now)
            else:
                self._send_ack_ratelimited(now)  # <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>
            return
        # RFC 7323 §4.3: remember the timestamp of the segment that covers Last.ACK.sent.
        if self.ts_ok and seg.ts is not None and seg.seq <= self.last_ack_sent <= seg.end:
            self.ts_recent = seg.ts[0]
        # second: the RST bit (RFC 5961 §3.2: exact -> reset, in window -> challenge ACK).
        if seg.rst:
            if seg.seq != self.rcv_nxt:
                counters["tcp_challenge_ack_rst"] += 1
                self._send_challenge_ack(now)
                return
            self._reset_received(now)
            return
        # fourth: the SYN bit (RFC 5961 §4: any SYN draws a challenge ACK).
        if seg.syn:
            if self.state == S.SYN_RECEIVED and self.passive:
                # "return this connection to the LISTEN state": the request is dropped and
                # nothing is sent (Linux sends an RST as well, divergence D8, ambiguity A5).
                self._delete()
                return
            counters["tcp_challenge_ack_syn"] += 1
            self._send_challenge_ack(now)
            return
        # fifth: the ACK field.
        if not seg.has_ack:
            return
        if not self._process_ack(seg, now):
            return
        # sixth: the URG bit.
        if self.state != S.TIME_WAIT:
            self._urgent_arrives(seg)
        # seventh: segment text.
        if seg.payload:
            new_data = seg.seq + len(seg.payload) > self.rcv_nxt
            shut_rd = self.closed_by_app or self.rcv_closed
            if shut_rd and self.state in (S.FIN_WAIT_1, S.FIN_WAIT_2) and new_data:
                # After close() (or shutdown(SHUT_RDWR)) new data cannot be delivered:
                # RST <SEQ=SEG.ACK> and abort (RFC 1122 §4.2.2.13, SHLD-3; Linux's
                # tcp_rcv_state_process checks RCV_SHUTDOWN).
                counters["tcp_abort_on_data"] += 1
                self.layer.send_reset_for(seg, self, now)
                self._abort(errno.ECONNRESET)
                return
            if self.state in (S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2):
                self._receive_data(seg, now)
            else:
                counters["tcp_rx_data_after_fin"] += 1
        # eighth: the FIN bit.  A second FIN once one is in is ignored: the state
        # does not change and nothing is sent (matrix A10; Linux).
        if seg.fin and not self.fin_received:
            if seg.end - 1 == self.rcv_nxt or (not seg.payload and seg.seq == self.rcv_nxt):
                self._fin_arrives(now)
            elif seg.seq + len(seg.payload) > self.rcv_nxt:
                self._ooo_fin = seg.seq + len(seg.payload)
                if not seg.payload:  # an out-of-order FIN draws a duplicate ACK, as data does
                    self._send_ack(now)
        elif self._ooo_fin is not None and self._ooo_fin == self.rcv_nxt:
            self._fin_arrives(now)

    def _reset_received(self, now: float) -> None:
        """§3.10.7.4 second step, per state."""
        counters = self.layer.stack.counters
        counters["tcp_rst_received"] += 1
        if self.state == S.SYN_RECEIVED:
            if self.passive:  # back to LISTEN: the request is simply dropped
                self._delete()
                return
            self._abort(errno.ECONNREFUSED)  # "connection refused"
            return
        if self.state in (S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSE_WAIT):
            self._abort(errno.ECONNRESET)
            return
        if self.state == S.TIME_WAIT and self.layer.stack.profile.tcp_rfc1337:
            counters["tcp_timewait_rst_ignored"] += 1  # RFC 1337 §3: no assassination
            return
        if self.state in (S.CLOSING, S.LAST_ACK, S.TIME_WAIT):
            self._delete()

    def _process_ack(self, seg: Incoming, now: float) -> bool:
        """§3.10.7.4 fifth step.  Returns False when the segment must be dropped."""
        counters = self.layer.stack.counters
        if self.state == S.SYN_RECEIVED:
            if not (self.snd_una < seg.ack <= self.snd_nxt):
                self.layer.send_reset_for(seg, self, now)  # <SEQ=SEG.ACK><CTL=RST>
                return False
            # -> ESTABLISHED; continue processing in that state.
            self.snd_una = seg.ack
            self._rtx_timer.cancel()
            if self.retransmits == 0 and not self.ts_ok and not self.from_cookie:  # cookie SYN-ACK: untimed
                self.rto.on_rtt_sample(now - self._last_send)
            elif self.ts_ok and seg.ts is not None and seg.ts[1]:
                self._ts_rtt_sample(seg.ts[1], now)
            # RFC 6298 §5.7: no sample after a SYN (or SYN-ACK) timeout -> RTO 3 s.
            self.rto.on_handshake_complete(syn_was_retransmitted=self.retransmits > 0)
            self.retransmits = 0
            self._update_window(seg, force=True)
            parent = self.parent
            if parent is not None and self.passive:
                if parent.accept_queue_full:
                    counters["tcp_accept_queue_overflow"] += 1  # Linux drops the ACK
                    if self.layer.stack.profile.tcp_abort_on_overflow:  # or resets it (tcp_check_req)
                        self.layer.send_reset_for(seg, self, now)
                        self._delete()
                        return False
                    self.snd_una = self.iss
                    self._rtx_timer.arm(now + self._syn_rto())
                    return False
                if self in parent.syn_queue:
                    parent.syn_queue.remove(self)
                parent.accept_queue.append(self)
                parent._wake()
            self._establish(now)
            if self.fin_queued:
                self._output(now)
        # RFC 5961 §5.2: an ACK beyond SND.NXT or older than the window the peer could
        # have seen is answered with an ACK and the segment dropped.  Linux's floor is
        # SND.UNA - min(MAX.SND.WND, bytes acked so far) (divergence D4).
        acked_so_far = self.snd_una - (self.iss + 1)
        floor = self.snd_una - min(self.max_snd_wnd, max(acked_so_far, 0))
        if seg.ack > self.snd_max:
            counters["tcp_ack_unsent"] += 1
            self._send_ack_ratelimited(now)
            return False
        if seg.ack < floor:
            counters["tcp_ack_too_old"] += 1
            self._send_challenge_ack(now)
            return False
        self._probes_out = 0  # Linux tcp_ack: an acceptable ACK answers the zero-window probes
        if self.ecn_ok and seg.flags & ECE and not seg.syn and self.snd_una >= self._ecn_recover:
            # RFC 3168 §6.1.2: react to congestion once per window, as to a loss
            # (ssthresh = cwnd = max(FlightSize/2, 2*SMSS)), and say so with CWR.
            self.cc.ssthresh = self.cc.cwnd = max(self._flight_size() // 2, 2 * self.cc.mss)
            self._cwr_pending = True
            self._ecn_recover = self.snd_max
        newly_sacked = 0
        if self.scoreboard is not None:
            # RFC 6675 §5: every ACK with SACK information updates the scoreboard.
            newly_sacked = self.scoreboard.update(seg.ack, seg.sack_blocks, snd_nxt=self.snd_max)
        if seg.ack > self.snd_una:
            self._new_ack(seg.ack, seg.ts[1] if seg.ts is not None else None, now)
        elif seg.ack == self.snd_una:
            self._maybe_dupack(seg, now, newly_sacked)
        self._update_window(seg)
        # FIN acknowledged?
        if self.fin_seq is not None and self.snd_una > self.fin_seq:
            if self.state == S.FIN_WAIT_1:
                self.state = S.FIN_WAIT_2
                self._wake()
                if self.closed_by_app:
                    self._timewait_timer.arm(now + self.layer.stack.profile.tcp_fin_timeout)
            elif self.state == S.CLOSING:
                self._enter_time_wait(now)
            elif self.state == S.LAST_ACK:
                self._delete()
                return False
        if self.state == S.TIME_WAIT:
            return True
        self._output(now)
        return True

    def _update_window(self, seg: Incoming, *, force: bool = False) -> None:
        self._take_window(seg.seq, seg.ack, seg.wnd, syn=seg.syn, force=force)

    def _take_window(self, seq: int, ack: int, wnd: int, *, syn: bool = False, force: bool = False) -> None:
        """§3.10.7.4 fifth: update SND.WND if SND.WL1 < SEG.SEQ, or equal and
        SND.WL2 =< SEG.ACK.  The window of a non-SYN segment is scaled (RFC 7323 §2.3)."""
        if force or self.snd_wl1 < seq or (self.snd_wl1 == seq and self.snd_wl2 <= ack):
            self.snd_wnd = snd_wnd = wnd if syn else wnd << self.snd_wscale
            self.snd_wl1, self.snd_wl2 = seq, ack
            self.max_snd_wnd = max(self.max_snd_wnd, snd_wnd)
            if snd_wnd > 0:
                self._persist_timer.cancel()
                self._persist_backoff = 0

    def _ts_rtt_sample(self, tsecr: int, now: float) -> None:
        """RFC 7323 §4.1: RTT from the echoed timestamp."""
        rtt_ms = (self._tsval() - tsecr) & MASK
        if rtt_ms < 1 << 31:
            self.rto.on_rtt_sample(max(rtt_ms, 1) / 1000.0)

    def _new_ack(self, ack: int, tsecr: int | None, now: float) -> None:
        """SND.UNA < SEG.ACK =< SND.NXT: data acknowledged (RFC 9293 §3.10.7.4 fifth,
        RFC 6298 §5.2-5.3, RFC 5681 §3.1, RFC 6582 §3.2).  ``tsecr``: the segment's
        TSecr, None without the timestamps option."""
        acked = ack - self.snd_una
        data_acked_end = min(ack, self._buf_seq + len(self.snd_buf))
        if data_acked_end > self._buf_seq:
            del self.snd_buf[: data_acked_end - self._buf_seq]
            self._buf_seq = data_acked_end
            order = self._psh_order
            while order and order[0] <= data_acked_end:
                self._psh_ends.discard(order.popleft())
        self.snd_una = ack
        self.snd_nxt = max(self.snd_nxt, ack)
        # RTT (RFC 6298 §3 Karn / RFC 7323 §4.1)
        if self.ts_ok and tsecr:
            self._ts_rtt_sample(tsecr, now)
        elif self._rtt_seq is not None and ack >= self._rtt_seq:
            self.rto.on_rtt_sample(now - self._rtt_start)
            self._rtt_seq = None
        # Karn (RFC 6298 §3, §5 note after 5.7): the backed-off RTO is kept until a
        # sample collapses it (on_rtt_sample resets the backoff), as Linux does.
        self.retransmits = 0
        # Congestion control
        cc = self.cc
        if cc.in_recovery:
            if ack >= cc.recover:
                # RFC 6675 §5 (A) / RFC 6582 §3.2: a full ACK ends recovery.
                cc.exit_recovery(self._flight_size())
                self._sack_recovery = False
            elif self._sack_recovery:
                self._sack_transmit(now)  # RFC 6675 §5 (B), (C)
            else:
                cc.on_partial_ack(acked)
                self._retransmit_one(now)  # RFC 6582 §3.2: resend the next hole
        else:
            cc.on_ack(acked)
        self.dupacks = 0
        if self._nospace:  # Linux tcp_check_space -> tcp_new_space
            if self._flight_size() < cc.cwnd:
                self._expand_sndbuf()
            if 2 * self.send_space() >= len(self.snd_buf):  # sk_stream_write_space's threshold
                self._nospace = False
        # RFC 6298 §5.2/5.3: stop or restart the timer
        if self.snd_una >= self.snd_max:
            self._rtx_timer.cancel()
        else:
            self._rtx_timer.arm(now + self.rto.rto)
        self._wake()

    def _maybe_dupack(self, seg: Incoming, now: float, newly_sacked: int) -> None:
        """Duplicate ACKs: RFC 5681 §2 / §3.2 (fast retransmit on the DupThresh-th,
        RFC 6582 §3.2 entry rule) without SACK; with SACK, RFC 6675 §2's definition (an
        ACK that SACKs new octets) and §5 steps (1)-(4) (also entering recovery when
        IsLost(HighACK + 1))."""
        if seg.payload or seg.syn or seg.fin or self.snd_max == self.snd_una:
            return
        cc = self.cc
        threshold = self.layer.stack.profile.tcp_reordering
        if self.scoreboard is not None:
            if self._sack_recovery:
                self._sack_transmit(now)  # RFC 6675 §5 (B), (C)
                return
            if newly_sacked <= 0:
                return
            self.dupacks += 1
            lost = self.scoreboard.is_lost(self.snd_una)
            if (self.dupacks >= threshold or lost) and cc.may_enter_fast_recovery(seg.ack):
                self._enter_sack_recovery(now)
            return
        if (seg.wnd << self.snd_wscale) != self.snd_wnd:
            return
        self.dupacks += 1
        if self.dupacks == threshold and not cc.in_recovery and cc.may_enter_fast_recovery(seg.ack):
            self.layer.stack.counters["tcp_fast_retransmit"] += 1
            # RFC 5681 §3.2 step 2: what limited transmit sent beyond cwnd is not
            # counted in the FlightSize that sets ssthresh (only it exceeds cwnd).
            cc.enter_fast_recovery(min(self._flight_size(), cc.cwnd), self.snd_max)
            self._cwr_pending = self._cwr_pending or self.ecn_ok  # RFC 3168 §6.1.2
            self._rtt_seq = None
            self._retransmit_one(now)
            self._rtx_timer.arm(now + self.rto.rto)
        elif self.dupacks > threshold and cc.in_recovery:
            cc.on_dupack_in_recovery()
            self._output(now)

    def _enter_sack_recovery(self, now: float) -> None:
        """RFC 6675 §5 step (4): RecoveryPoint = HighData, ssthresh = cwnd = FlightSize/2,
        retransmit HighACK + 1's segment, HighRxt = RescueRxt = its end, then (C)."""
        counters = self.layer.stack.counters
        counters["tcp_fast_retransmit"] += 1
        counters["tcp_sack_recovery"] += 1
        self.cc.enter_sack_recovery(self._flight_size(), self.snd_max)
        self._cwr_pending = self._cwr_pending or self.ecn_ok  # RFC 3168 §6.1.2
        self._sack_recovery = True
        self._rtt_seq = None
        end = self._retransmit_one(now)
        self.high_rxt = self.rescue_rxt = end
        self._rtx_timer.arm(now + self.rto.rto)
        self._sack_transmit(now)

    def _sack_transmit(self, now: float) -> None:
        """RFC 6675 §5 (C): while cwnd - pipe >= 1 SMSS, send what NextSeg() names."""
        sb = self.scoreboard
        assert sb is not None
        mss = self._current_mss()
        data_end = self._buf_seq + len(self.snd_buf)
        for _ in range(1000):  # bounded: each round sends one segment or stops
            pipe = sb.pipe(self.snd_una, self.snd_max, self.high_rxt)
            if self.cc.cwnd - pipe < mss:
                return
            window_end = self.snd_una + self.snd_wnd
            can_new = self.snd_nxt < data_end and self.snd_nxt < window_end
            found = sb.next_seg(self.snd_una, self.snd_max, self.high_rxt, self.rescue_rxt, can_new)
            if found is None:
                return
            rule = sb.last_rule
            start, end = found
            if rule == 2:
                end = min(end, data_end, window_end)
            end = min(end, start + mss)
            if start >= data_end:
                if not self.fin_queued:
                    return
                self._emit(FIN | ACK, data_end)  # the FIN alone is the missing octet
                end = data_end + 1
            else:
                end = min(end, data_end)
                if end <= start:
                    return
                payload = bytes(self.snd_buf[start - self._buf_seq : end - self._buf_seq])
                fin = self.fin_queued and end == data_end and self.fin_seq is not None
                push = end == data_end or end in self._psh_ends
                self._emit(ACK | (PSH if push else 0) | (FIN if fin else 0), start, payload)
            if rule == 2:
                self.snd_nxt = max(self.snd_nxt, end)  # (C.3) new data raises HighData
                self.snd_max = max(self.snd_max, self.snd_nxt)
            else:
                self.total_retrans += 1
                if rule == 4:
                    self.rescue_rxt = self.cc.recover  # the rescue retransmission
                else:
                    self.high_rxt = max(self.high_rxt, end)  # (C.2)

    def _urgent_arrives(self, seg: Incoming) -> None:
        """§3.10.7.4 sixth, check the URG bit, as Linux's tcp_urg and tcp_check_urg.

        "RCV.UP <- max(RCV.UP, SEG.UP)": a pointer beyond the current one becomes the
        new mark unless it points below RCV.NXT (data already received is not made
        urgent afterwards).  RFC 6093 §2 (MUST-62): the urgent octet is the one before
        the pointer (:func:`~refstack.tcp.urgent.urgent_octet`).  A new mark replaces
        an older one whose octet then stays in the normal stream, except an older
        octet that is the next to read, which is dropped (Linux).  Whenever the mark's
        octet is in a segment, in order or not, it is kept for recv(MSG_OOB) and the
        user is told (POLLPRI, MUST-32; SIGURG is not modelled).

        RFC 9293 says to ignore URG once a FIN has arrived (CLOSE-WAIT, CLOSING,
        LAST-ACK); Linux's tcp_rcv_state_process checks it in those states too, and
        so does this.  Its only effect there is a pointer beyond the FIN, which
        recv(MSG_OOB) then answers with 0 rather than EINVAL."""
        urgent = self.urgent
        if seg.urg:
            ptr = urgent_octet(seg.seq, seg.up, stdurg=self.layer.stack.profile.tcp_stdurg)
            if ptr >= self.rcv_nxt and not (urgent.active and ptr <= urgent.seq):
                if self.at_mark and not self.oobinline and self.rcv_buf:
                    del self.rcv_buf[0]  # the older urgent octet, next to read, goes
                urgent.state, urgent.seq = UrgentState.PENDING, ptr
        if urgent.state is UrgentState.PENDING:
            offset = urgent.seq - (seg.seq + (1 if seg.syn else 0))
            if 0 <= offset < len(seg.payload):
                urgent.state, urgent.octet = UrgentState.VALID, seg.payload[offset]
                self._wake()

    def _receive_data(self, seg: Incoming, now: float) -> None:
        """§3.10.7.4 seventh: deliver in-order text, keep out-of-order text (SHLD-31),
        and acknowledge per RFC 1122 §4.2.3.2 / RFC 5681 §4.2 (delayed ACK, immediate
        ACK for out-of-order data and gap filling), as Linux (quick-ack at start)."""
        counters = self.layer.stack.counters
        seq, data = seg.seq, seg.payload
        if self.ecn_ok and data:  # RFC 3168 §6.1.3 (Linux tcp_ecn_accept_cwr, tcp_ecn_check_ce)
            if seg.flags & CWR:
                self._ece_pending = False
            if seg.ce:
                self._ece_pending = True
                self._quickacks = max(self._quickacks, 2)
        if self.rcv_closed:
            counters["tcp_rx_after_shutdown_rd"] += 1
        if seq < self.rcv_nxt:  # trim what we already have (a D-SACK reports it, RFC 2883)
            dup_end = min(self.rcv_nxt, seq + len(data))
            if self.sack_ok and self.layer.stack.profile.tcp_dsack:
                self._dsack = (seq, dup_end)
            data = data[self.rcv_nxt - seq :]
            seq = self.rcv_nxt
        right = self.rcv_nxt + max(self.rcv_adv - self.rcv_nxt, 0)
        if seq + len(data) > right:  # beyond the window: keep what fits
            data = data[: max(0, right - seq)]
        if not data:
            self._send_ack(now)
            return
        full = self._text_received(len(data), seg.gso_size)
        if seq == self.rcv_nxt:
            filled_hole = bool(len(self.ooo))
            self._take_in_order(data, seg.ts[1] if seg.ts is not None else None, now)
            ready = self.ooo.pop_ready(self.rcv_nxt)
            if ready:
                self.rcv_buf += ready
                self.rcv_nxt += len(ready)
            if self._ooo_fin is not None and self._ooo_fin == self.rcv_nxt:
                # The gap before a held FIN is filled: take the FIN now and acknowledge
                # both at once (Linux: tcp_ofo_queue, then ICSK_ACK_NOW).
                was_established = self.state == S.ESTABLISHED
                self._fin_arrives(now)
                if was_established:
                    self._send_ack(now)
                return
            if seg.fin and seg.seq + len(seg.payload) == self.rcv_nxt:
                return  # the FIN right after this text (eighth step) is ACKed with it (MUST-58; Linux)
            self._acknowledge_data(full, filled_hole, now)
        else:
            refused = self.ooo.refused
            stored = self.ooo.insert(seq, data)
            counters["tcp_rx_out_of_order"] += 1
            dsack_on = self.sack_ok and self.layer.stack.profile.tcp_dsack
            if stored is None and self.ooo.refused == refused and dsack_on:
                # All of it was queued already: RFC 2883 §4.2 (Linux tcp_data_queue_ofo).
                self._dsack = (seq, seq + len(data))
            if stored is not None:
                self._sack_latest = next((r for r in self.ooo.ranges() if r[0] <= stored[0] < r[1]), stored)
            self._send_ack(now)  # RFC 5681 §4.2: an immediate duplicate ACK

    def _text_received(self, size: int, gso_size: int) -> int:
        """``size`` octets of text arrived, in order or not (Linux tcp_event_data_recv):
        the first starts the delayed-ACK engine; returns how many full-sized segments
        they make, for the ACK rule of RFC 1122 §4.2.3.2, with Linux's estimate of the
        peer's MSS (tcp_measure_rcv_mss): the largest segment seen, or the device's
        segment size for a super-segment (GRO, :class:`~refstack.nic.offload.RxOffload`)."""
        if not self._ato:
            self._ato = self.layer.stack.profile.tcp_ato_min
        seen = gso_size or size
        self._rcv_mss = max(self._rcv_mss, seen)
        return size // self._rcv_mss

    def _take_in_order(self, data: bytes, tsecr: int | None, now: float) -> None:
        """Text at RCV.NXT goes into the receive buffer (§3.10.7.4 seventh), after the
        receiver's RTT measure; ``tsecr``: the segment's TSecr, None without one."""
        self._rcv_rtt_measure(len(data), tsecr, now)
        self.rcv_buf += data
        self.rcv_nxt += len(data)
        self.layer.stack.counters["tcp_rx_bytes"] += len(data)
        self._sack_latest = None
        self._wake()

    def _rcv_rtt_measure(self, size: int, tsecr: int | None, now: float) -> None:
        """The receiver's RTT estimate, for receive-buffer autotuning, as Linux keeps it
        (tcp_rcv_rtt_measure_ts, tcp_rcv_rtt_measure): from the echoed timestamp of a
        full-sized in-order segment (RFC 7323 §4.1's clock: 1 ms, a 0 counted as 1),
        smoothed with gain 1/8; without timestamps, the time to receive a window's
        worth of data, keeping the smallest."""
        if self.ts_ok and tsecr is not None:
            if tsecr == self._rcv_rtt_tsecr:
                return
            self._rcv_rtt_tsecr = tsecr
            if size < self._rcv_mss:
                return
            delta = (self._tsval() - tsecr) & MASK
            if delta >= 1 << 31:
                return
            sample = max(delta, 1) / 1000.0
            self._rcv_rtt = sample if not self._rcv_rtt else self._rcv_rtt + (sample - self._rcv_rtt) / 8
            return
        if self._rcv_rtt_time >= 0 and self.rcv_nxt + size < self._rcv_rtt_seq:
            return
        if self._rcv_rtt_time >= 0:
            sample = now - self._rcv_rtt_time
            self._rcv_rtt = sample if not self._rcv_rtt else min(self._rcv_rtt, sample)
        self._rcv_rtt_seq = self.rcv_nxt + size + max(self.rcv_adv - self.rcv_nxt, 0)
        self._rcv_rtt_time = now

    def _rcv_space_adjust(self, now: float) -> None:
        """Linux's receive-buffer autotuning (dynamic right-sizing, tcp_rcv_space_adjust),
        after the application read: once per receiver RTT, when it read more than in
        the RTT before, the buffer grows to hold twice that plus 16 segments, more while
        the rate rises (the sender in slow start), up to tcp_rmem[2]; the window offered
        follows.  Not after SO_RCVBUF, not with tcp_moderate_rcvbuf off.  RFC 9293
        §3.8.6 leaves the window's size to the receiver."""
        if not self._rcv_rtt or now - self._rcvq_time < self._rcv_rtt or not self._rcvq_space:
            return
        copied = self._copied_seq() - self._rcvq_seq
        if copied > self._rcvq_space:
            profile = self.layer.stack.profile
            if profile.tcp_moderate_rcvbuf and not self.rcvbuf_locked:
                advmss = self.mss_advertised
                rcvwin = 2 * copied + 16 * advmss
                rcvwin += 2 * (rcvwin * (copied - self._rcvq_space) // self._rcvq_space)
                scale = profile.tcp_adv_win_scale
                space = (rcvwin << scale) // ((1 << scale) - 1) if scale > 0 else rcvwin
                self.rcvbuf = max(self.rcvbuf, min(space, profile.tcp_rmem[2]))
            self._rcvq_space = copied
        self._rcvq_seq, self._rcvq_time = self._copied_seq(), now

    def _acknowledge_data(self, full_segments: int, filled_hole: bool, now: float) -> None:
        """In-order text arrived: ACK at once (RFC 1122 §4.2.3.2: at least every second
        full-sized segment; RFC 5681 §4.2: when a hole is filled; Linux's quick-ACKs
        at the start, TCP_QUICKACK, a D-SACK to report), else arm the delayed ACK."""
        self._unacked_segments += full_segments
        if (
            filled_hole
            or self._quickacks > 0
            or self._unacked_segments >= 2
            or self.quickack
            or self._dsack is not None
        ):
            if self._quickacks > 0:
                self._quickacks -= 1
            self._send_ack(now)
        elif self._delack_timer.deadline is None:
            self._delack_timer.arm(now + self.layer.stack.profile.tcp_delack_min)

    def _fin_arrives(self, now: float) -> None:
        """§3.10.7.4 eighth: advance RCV.NXT over the FIN, acknowledge it, and move on.

        As Linux (tcp_fin): a FIN that moves ESTABLISHED to CLOSE-WAIT enters
        "pingpong" mode and its ACK is *delayed* (RFC 1122 §4.2.3.2 allows it), so an
        application that closes at once sends one FIN,ACK that carries it; in the
        closing states the ACK goes at once."""
        self._ooo_fin = None
        self.rcv_nxt += 1
        self.fin_received = True
        self._wake()
        if self.state in (S.SYN_RECEIVED, S.ESTABLISHED):
            self.state = S.CLOSE_WAIT
            self._quickacks = 0
            if not self._delack_timer.armed:
                self._delack_timer.arm(now + self._ato)
            return
        self._send_ack(now)
        if self.state == S.FIN_WAIT_1:
            if self.fin_seq is not None and self.snd_una > self.fin_seq:
                self._enter_time_wait(now)
            else:
                self.state = S.CLOSING
        elif self.state == S.FIN_WAIT_2:
            self._enter_time_wait(now)
        elif self.state == S.TIME_WAIT:
            self._timewait_timer.arm(now + self.layer.stack.profile.tcp_timewait_len)

    # ======================================================================================
    # Introspection
    # ======================================================================================
    def tcp_info(self) -> dict[str, int]:
        """TCP_INFO fields with Linux's names and units (microseconds for times)."""
        mss = self.eff_mss() if self.remote is not None and self.state.synchronized else 0
        return {
            "tcpi_state": int(self.state),
            "tcpi_retransmits": self.retransmits,
            "tcpi_backoff": self.rto.backoffs,
            "tcpi_options": (1 if self.ts_ok else 0) | (2 if self.sack_ok else 0) | (4 if self.ws_ok else 0),
            "tcpi_snd_wscale": self.snd_wscale,
            "tcpi_rcv_wscale": self.rcv_wscale,
            "tcpi_rto": int(self.rto.rto * 1e6),
            "tcpi_snd_mss": mss,
            "tcpi_rcv_mss": self._rcv_mss,  # Linux's estimate of the peer's MSS (536 at first)
            "tcpi_unacked": (self.snd_max - self.snd_una + mss - 1) // mss if mss else 0,
            "tcpi_rtt": int((self.rto.srtt or 0.0) * 1e6),
            "tcpi_rttvar": int(self.rto.rttvar * 1e6),
            # Linux reports an unset ("infinite") ssthresh as 0x7fffffff, else in segments.
            "tcpi_snd_ssthresh": 0x7FFFFFFF
            if self.cc.ssthresh >= INFINITE_SSTHRESH or not mss
            else self.cc.ssthresh // mss,
            "tcpi_snd_cwnd": self.cc.cwnd // mss if mss else self.layer.stack.profile.tcp_initial_cwnd,
            "tcpi_total_retrans": self.total_retrans,
            "tcpi_rcv_space": self._rcv_window(),
        }

    def __repr__(self) -> str:
        def fmt(a: Address | None) -> str:
            return f"{ipv4_str(a[0])}:{a[1]}" if a else "*"

        return f"<TcpEndpoint {fmt(self.local)} -> {fmt(self.remote)} {self.state.name}>"
