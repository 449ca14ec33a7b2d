"""TCP demultiplexing, port allocation and replies for segments nobody owns.

- Demultiplexing (RFC 9293 §3.10.7): a segment goes to the connection with the
  same 4-tuple, else to a listener on the local address or the wildcard.
- A segment for no connection is answered per §3.10.7.1 (CLOSED): an RST is
  dropped; a segment with ACK gets <SEQ=SEG.ACK><CTL=RST>; any other gets
  <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.  Segments to broadcast or multicast
  addresses are dropped silently (MUST-57).
- Ephemeral ports for connect follow RFC 6056 §3.3.1 (random in
  ip_local_port_range), preferring even ports as Linux's connect() does.
- ISNs come from RFC 6528 (:mod:`refstack.tcp.isn`), keyed from the stack's seed.
- SYN cookies (RFC 4987 §3.6, :mod:`refstack.tcp.syncookies`): the decision
  (:meth:`TcpLayer.want_cookie`), the cookie SYN-ACK and the check of the ACK that
  returns one, which creates the connection, as Linux's tcp_conn_request and
  cookie_v4_check; counted as Linux does (``SyncookiesSent``, ``SyncookiesRecv``,
  ``SyncookiesFailed``, ``TCPReqQFullDoCookies``).
"""

from __future__ import annotations

import dataclasses
import errno
import os
from typing import TYPE_CHECKING

from ..net.icmp import error_errno
from ..net.interface import Interface
from ..nic.offload import RxOffload
from ..wire.addresses import Ipv4Addr, is_multicast_ipv4
from ..wire.checksum import checksum, checksum_ok, pseudo_header_sum, transport_checksum_ok
from ..wire.errors import WireError
from ..wire.icmp import DEST_UNREACHABLE, UNREACH_FRAG_NEEDED, IcmpMessage
from ..wire.ipv4 import PROTO_TCP, Ipv4Packet
from ..wire.tcp import ACK, RST, TcpSegment, build_tcp, predicted_fields
from .endpoint import TcpEndpoint
from .isn import IsnGenerator
from .segment import Incoming, incoming
from .seq import MASK
from .state import TcpState
from .syncookies import COOKIE_VALID, NO_OPTIONS, SynCookies, decode_ts

if TYPE_CHECKING:
    from ..net.ipv4 import TxRoute
    from ..stack import Stack

ANY = bytes(4)
FourTuple = tuple[Ipv4Addr, int, Ipv4Addr, int]
_FIXED_OPTION_LENGTHS = {2: 4, 3: 3, 4: 2, 8: 10}  # MSS, window scale, SACK-permitted, timestamps


def _options_cut_at_bad_length(buf: bytes, src: Ipv4Addr, dst: Ipv4Addr) -> TcpSegment | None:
    """RFC 9293 §3.1 MUST-7: cope with an illegal option length.  As Linux's
    tcp_parse_options, the options before the bad one (length below 2, past the
    header, or not its kind's fixed length) are kept and the rest of the option area
    is read as padding; the segment is processed.  None when the header itself is
    malformed or the checksum (over the bytes as received) is wrong."""
    if len(buf) < 20 or not 20 <= (hlen := (buf[12] >> 4) * 4) <= len(buf):
        return None
    if not checksum_ok(pseudo_header_sum(src, dst, PROTO_TCP, len(buf)), buf):
        return None
    i = 20
    while i < hlen and buf[i] != 0:  # EOL ends the list
        if buf[i] == 1:  # NOP
            i += 1
            continue
        length = buf[i + 1] if i + 1 < hlen else 0
        if length < 2 or i + length > hlen or length != _FIXED_OPTION_LENGTHS.get(buf[i], length):
            break
        if buf[i] == 5 and (length < 10 or (length - 2) % 8):  # SACK: 2 + 8n octets, n >= 1
            break
        i += length
    cut = bytearray(buf[:i] + bytes(hlen - i) + buf[hlen:])
    cut[16:18] = b"\0\0"
    cut[16:18] = checksum(pseudo_header_sum(src, dst, PROTO_TCP, len(cut)), cut).to_bytes(2, "big")
    try:
        return TcpSegment(bytes(cut))
    except WireError:
        return None


class TcpLayer:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.isn = IsnGenerator(stack.rng.randbytes(16))
        self.connections: dict[FourTuple, TcpEndpoint] = {}
        self.listeners: dict[tuple[Ipv4Addr, int], TcpEndpoint] = {}
        self._bound: dict[int, list[TcpEndpoint]] = {}
        self.reopen_isn: int | None = None  # the ISS for a SYN that reopens TIME-WAIT
        # RFC 5961 §7 system-wide challenge-ACK budget (Linux tcp_challenge_ack_limit):
        # the second it was drawn for and what is left of it.
        self.challenge_second = -1
        self.challenge_left = 0
        self._syncookies: SynCookies | None = None
        # Header prediction: on, the segment a connection expects next takes
        # TcpEndpoint.predicted_arrives (counted in tcp_rx_predicted); off, every
        # segment takes the general path of RFC 9293 §3.10.7 (the tests compare the two).
        self.header_prediction = True

    def endpoint(self) -> TcpEndpoint:
        """A new socket's core; the Onload model gives it an endpoint or hands it over
        (EF_NO_FAIL=0 and no endpoint left: ENOMEM)."""
        record = self.stack.onload.new_socket(6)
        ep = TcpEndpoint(self)
        ep.onload = record
        return ep

    # --- ports ----------------------------------------------------------------------
    def bind(self, ep: TcpEndpoint, addr: Ipv4Addr, port: int) -> None:
        if addr != ANY and not self.stack.ip.is_local(addr):
            raise OSError(errno.EADDRNOTAVAIL, os.strerror(errno.EADDRNOTAVAIL))
        if not 0 <= port <= 0xFFFF:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        if port == 0:
            port = self._ephemeral(addr, None, even=False)
        elif self._conflicts(ep, addr, port):
            raise OSError(errno.EADDRINUSE, os.strerror(errno.EADDRINUSE))
        ep.local = (addr, port)
        self._bound.setdefault(port, []).append(ep)

    def _conflicts(self, ep: TcpEndpoint, addr: Ipv4Addr, port: int) -> bool:
        """Linux's bind conflict rule: same port and overlapping address conflict unless
        both set SO_REUSEADDR and the other is not listening (TIME-WAIT sockets never
        block a SO_REUSEADDR bind)."""
        for other in self._bound.get(port, ()):
            if other is ep or other.local is None:
                continue
            if not (other.local[0] == addr or ANY in (other.local[0], addr)):
                continue
            if ep.reuseaddr and other.reuseaddr and other.state != TcpState.LISTEN:
                continue
            if ep.reuseaddr and other.state == TcpState.TIME_WAIT:
                continue
            return True
        return False

    def _ephemeral(self, addr: Ipv4Addr, remote: tuple[Ipv4Addr, int] | None, *, even: bool) -> int:
        low, high = self.stack.profile.ip_local_port_range
        count = high - low + 1
        start = self.stack.rng.randrange(count)
        for parity_pass in (0, 1) if even else (None,):
            for i in range(count):
                port = low + (start + i) % count
                if parity_pass is not None and (port % 2) != parity_pass:
                    continue
                if remote is not None:
                    if (addr, port, remote[0], remote[1]) in self.connections:
                        continue
                    if any(
                        o.local is not None and o.state == TcpState.LISTEN for o in self._bound.get(port, ())
                    ):
                        continue
                    if port in self._bound and any(o.remote is None for o in self._bound[port]):
                        continue
                elif port in self._bound:
                    continue
                return port
        code = errno.EADDRNOTAVAIL if remote is not None else errno.EADDRINUSE  # connect / bind, listen
        raise OSError(code, os.strerror(code))  # Linux: ports exhausted

    def connect(self, ep: TcpEndpoint, addr: Ipv4Addr, port: int, source: Ipv4Addr) -> None:
        """Pick the local address/port of an active open and index the connection."""
        if ep.local is None:
            local_port = self._ephemeral(source, (addr, port), even=True)
            ep.local = (source, local_port)
            self._bound.setdefault(local_port, []).append(ep)
        elif ep.local[0] == ANY:
            ep.local = (source, ep.local[1])
        key = (ep.local[0], ep.local[1], addr, port)
        if key in self.connections:
            raise OSError(errno.EADDRNOTAVAIL, os.strerror(errno.EADDRNOTAVAIL))
        if ep.onload is not None:  # a full-match filter (EBUSY when full and EF_NO_FAIL=0)
            self.stack.onload.connected(ep.onload.owner, 6, (ep.local[0], ep.local[1]), (addr, port))
        ep.remote = (addr, port)
        self.connections[key] = ep

    def listen(self, ep: TcpEndpoint) -> None:
        assert ep.local is not None
        if ep.onload is not None:  # wild filters (EBUSY when full and EF_NO_FAIL=0)
            self.stack.onload.bound(ep.onload.owner, 6, ep.local[0], ep.local[1], listen=True)
        self.listeners[ep.local] = ep

    def forget(self, ep: TcpEndpoint, *, listener: bool) -> None:
        if ep.onload is not None:  # the TCB is gone: its endpoint and filters are free
            self.stack.onload.close(ep.onload.owner)
            ep.onload = None
        if ep.local is not None:
            if listener and self.listeners.get(ep.local) is ep:
                del self.listeners[ep.local]
            if ep.remote is not None:
                key = (ep.local[0], ep.local[1], ep.remote[0], ep.remote[1])
                if self.connections.get(key) is ep:
                    del self.connections[key]
            peers = self._bound.get(ep.local[1])
            if peers is not None and ep in peers:
                peers.remove(ep)
                if not peers:
                    del self._bound[ep.local[1]]

    def spawn_child(self, listener: TcpEndpoint, syn: Incoming, now: float) -> None:
        """A SYN reached a listener (§3.10.7.2 third): a new connection in SYN-RECEIVED."""
        child = TcpEndpoint(self, parent=listener)
        if listener.onload is not None:
            child.onload = self.stack.onload.accepted(listener.onload.owner)
        child.local = syn.destination
        child.remote = syn.source
        self.connections[(child.local[0], child.local[1], child.remote[0], child.remote[1])] = child
        self._bound.setdefault(child.local[1], []).append(child)
        listener.syn_queue.append(child)
        child.start_passive(listener, syn, now)

    # --- SYN cookies (RFC 4987 §3.6; Linux tcp_conn_request, cookie_v4_check) --------------
    @property
    def syncookies(self) -> SynCookies:
        """The stack's cookie secret, drawn from its seed when first needed."""
        if self._syncookies is None:
            self._syncookies = SynCookies(self.stack.rng.randbytes(16))
        return self._syncookies

    def want_cookie(self, listener: TcpEndpoint) -> bool:
        """Whether a SYN to ``listener`` is answered with a cookie (Linux
        tcp_conn_request): always with ``tcp_syncookies`` = 2; with 1 (the default) once
        the SYN queue holds more than the listen backlog (inet_csk_reqsk_queue_is_full);
        never with 0.  With the Onload SYN limits set (EF_TCP_SYNRECV_MAX,
        EF_TCP_BACKLOG_MAX) Onload's rules apply, and its cookies (EF_TCP_SYNCOOKIES)
        are off: :meth:`refstack.nic.model.OnloadModel.syn_queue_full` decides."""
        mode = self.stack.profile.tcp_syncookies
        if not mode:
            return False
        config = self.stack.config
        if config.is_set("EF_TCP_SYNRECV_MAX") or config.is_set("EF_TCP_BACKLOG_MAX"):
            return False
        if mode != 2 and len(listener.syn_queue) <= listener.backlog:
            return False
        self.stack.counters["TCPReqQFullDoCookies"] += 1  # tcp_syn_flood_action
        return True

    def send_cookie(self, listener: TcpEndpoint, syn: Incoming, now: float) -> None:
        """Answer ``syn`` with a cookie SYN-ACK and keep nothing but the listener's
        "last overflow" time (Linux tcp_synq_overflow), which makes it check ACKs as
        cookies for the next two minutes.  The MSS the cookie encodes is the SYN's
        (536 without the option), clamped by the listener's TCP_MAXSEG."""
        mss = syn.mss or self.stack.profile.tcp_default_mss
        if listener.maxseg:
            mss = min(mss, listener.maxseg)
        (remote, rport), (local, lport) = syn.source, syn.destination
        cookie, _ = self.syncookies.make((remote, rport, local, lport), syn.seq & MASK, mss, now)
        listener.syncookie_stamp = now
        self.stack.counters["SyncookiesSent"] += 1
        synack = TcpEndpoint(self, parent=listener)  # never indexed: dropped once sent
        synack.local, synack.remote = syn.destination, syn.source
        synack.send_cookie_synack(listener, syn, cookie, now)

    def cookie_ack(self, listener: TcpEndpoint, ack: Incoming, now: float) -> bool:
        """Linux cookie_v4_check for an ACK (no SYN, no RST) that reached ``listener``:
        True when it returned a valid cookie, which makes the connection (or is dropped
        when the accept queue is full, as tcp_v4_syn_recv_sock drops it); False when
        the listener handles it as usual (a RST): cookies off, none sent in the last
        two minutes (tcp_synq_no_recent_overflow), an invalid cookie
        (``SyncookiesFailed``), or an echoed timestamp asking for an option this stack
        has turned off (cookie_timestamp_decode)."""
        profile = self.stack.profile
        counters = self.stack.counters
        stamp = listener.syncookie_stamp
        if not profile.tcp_syncookies or ack.rst or stamp is None or now - stamp > COOKIE_VALID:
            return False
        (remote, rport), (local, lport) = ack.source, ack.destination
        conn = (remote, rport, local, lport)
        mss = self.syncookies.check((ack.ack - 1) & MASK, conn, (ack.seq - 1) & MASK, now)
        if mss is None:
            counters["SyncookiesFailed"] += 1
            return False
        counters["SyncookiesRecv"] += 1
        options = NO_OPTIONS
        if ack.ts is not None and profile.tcp_timestamps:
            tsecr = ack.ts[1]
            if tsecr:
                tsecr = (tsecr - self.isn.ts_offset(local, remote)) & MASK
            options = decode_ts(tsecr)
            if (options.sack and not profile.tcp_sack) or (
                options.wscale is not None and not profile.tcp_window_scaling
            ):
                return False
        if listener.accept_queue_full:
            counters["tcp_accept_queue_overflow"] += 1  # Linux drops the ACK
            return True
        child = TcpEndpoint(self, parent=listener)
        if listener.onload is not None:
            child.onload = self.stack.onload.accepted(listener.onload.owner)
        child.local, child.remote = ack.destination, ack.source
        self.connections[(local, lport, remote, rport)] = child
        self._bound.setdefault(lport, []).append(child)
        child.start_from_cookie(listener, ack, mss, options, now)
        return True

    def reopen_from_time_wait(self, tw: TcpEndpoint, syn: Incoming, now: float) -> bool:
        """RFC 9293 §3.6.1 MAY-2: a listener on the address takes a new SYN that reached
        a TIME-WAIT connection; the old TCB goes and the new one's ISS is above anything
        the old one used (Linux tcp_timewait_state_process: old SND.NXT + 65537).
        False (nothing done) when no listener owns the address."""
        listener = self.listeners.get(syn.destination) or self.listeners.get((ANY, syn.destination[1]))
        if listener is None:
            return False
        self.stack.counters["tcp_timewait_reopened"] += 1
        isn = (tw.snd_nxt + 65537) & MASK
        tw._delete()
        self.reopen_isn = isn or 1
        listener.segment_arrives(dataclasses.replace(syn, seq=syn.seq & MASK, ack=syn.ack & MASK), now)
        self.reopen_isn = None
        return True

    # --- input -----------------------------------------------------------------------
    def input(
        self,
        ip: Ipv4Packet,
        iface: Interface,
        now: float,
        *,
        link_broadcast: bool,
        offload: RxOffload | None = None,
    ) -> None:
        """A TCP segment arrived (RFC 9293 §3.10.7).  ``offload``: the device vouched
        for the checksum, or the segment is a super-segment (GSO) of its ``gso_size``."""
        counters = self.stack.counters
        if link_broadcast or is_multicast_ipv4(ip.dst) or self.stack.ip.is_broadcast(ip.dst):
            counters["tcp_rx_broadcast_dropped"] += 1  # MUST-57
            return
        payload = ip.payload
        csum_valid = offload is not None and offload.csum_valid
        gso_size = offload.gso_size if offload is not None else 0
        fields = predicted_fields(payload) if self.header_prediction else None
        if fields is not None:
            key = (ip.dst, fields[1], ip.src, fields[0])
            ep = self.connections.get(key)
            if ep is not None:
                if not (csum_valid or transport_checksum_ok(ep.rx_pseudo_base(), payload)):
                    counters["tcp_rx_bad_checksum"] += 1
                    return
                counters["tcp_rx_segments"] += 1
                if ip.tos & 3 != 3 and ep.predicted_arrives(fields, payload[fields[7] :], gso_size, now):
                    counters["tcp_rx_predicted"] += 1
                    return
                inc = incoming(TcpSegment(payload), ep.rcv_nxt, ep.snd_una, ip.src, ip.dst)
                inc.ce = ip.tos & 3 == 3
                inc.gso_size = gso_size
                ep.segment_arrives(inc, now)
                return
        try:
            seg = TcpSegment(payload)
        except WireError:
            cut = _options_cut_at_bad_length(bytes(payload), ip.src, ip.dst)
            if cut is None:
                counters["tcp_rx_malformed"] += 1
                return
            seg = cut
        if not csum_valid and not seg.checksum_ok(ip.src, ip.dst):
            counters["tcp_rx_bad_checksum"] += 1
            return
        counters["tcp_rx_segments"] += 1
        key = (ip.dst, seg.dst_port, ip.src, seg.src_port)
        ep = self.connections.get(key)
        if ep is not None:
            inc = incoming(seg, ep.rcv_nxt, ep.snd_una, ip.src, ip.dst)
            inc.ce = ip.tos & 3 == 3
            inc.gso_size = gso_size
            ep.segment_arrives(inc, now)
            return
        inc = incoming(seg, seg.seq, seg.ack, ip.src, ip.dst)
        listener = self.listeners.get((ip.dst, seg.dst_port)) or self.listeners.get((ANY, seg.dst_port))
        if listener is not None:
            listener.segment_arrives(inc, now)
            return
        counters["tcp_rx_no_socket"] += 1
        if not inc.rst:  # §3.10.7.1: an incoming RST is discarded
            self.send_reset_for(inc, None, now)

    def send_reset_for(self, inc: Incoming, ep: TcpEndpoint | None, now: float) -> None:
        """The reset owed for ``inc`` (§3.10.7.1-3), from the connection's addresses, or
        the segment's own when there is no connection (a closed port, a listener)."""
        if ep is not None and ep.local is not None and ep.remote is not None:
            self._reset_reply(ep.local, ep.remote, inc, now)
        else:
            self._reset_reply(inc.destination, inc.source, inc, now)

    def _reset_reply(
        self, local: tuple[Ipv4Addr, int], remote: tuple[Ipv4Addr, int], inc: Incoming, now: float
    ) -> None:
        """<SEQ=SEG.ACK><CTL=RST> when the segment has ACK, else
        <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK> (RFC 9293 §3.10.7.1, §3.5.2)."""
        if inc.has_ack:
            self._send_reset(local, remote, seq=inc.ack, ack=None, now=now)
        else:
            self._send_reset(local, remote, seq=0, ack=inc.seq + inc.seg_len, now=now)

    def _send_reset(
        self,
        local: tuple[Ipv4Addr, int],
        remote: tuple[Ipv4Addr, int],
        *,
        seq: int,
        ack: int | None,
        now: float,
    ) -> None:
        flags = RST | (ACK if ack is not None else 0)
        (src, sport), (dst, dport) = local, remote
        segment = build_tcp(
            src, dst, sport, dport, seq=seq & MASK, ack=(ack or 0) & MASK, flags=flags, window=0
        )
        self.stack.counters["tcp_tx_rst"] += 1
        try:
            self.stack.ip.output(dst, PROTO_TCP, segment, now, src=src, df=True)
        except OSError:
            self.stack.counters["tcp_tx_rst_unroutable"] += 1

    def output(
        self,
        ep: TcpEndpoint,
        segment: bytes,
        now: float,
        *,
        ect: bool = False,
        gso_size: int = 0,
        route: TxRoute | None = None,
    ) -> None:
        """Send one segment of ``ep``; ``ect``: mark it ECT(0) (RFC 3168 §6.1.2);
        ``gso_size``: it is a TSO super-segment of segments that size.  On a route with
        checksum offload the segment carries the pseudo-header sum and the device
        finishes it (:mod:`refstack.nic.offload`)."""
        assert ep.remote is not None and ep.local is not None
        stack = self.stack
        stack.counters["tcp_tx_segments"] += 1
        tos = (ep.tos & ~3) | 2 if ect else ep.tos
        try:
            if route is None:  # the caller found none: this lookup raises and counts it
                ep.route = route = stack.ip.route(ep.route, ep.remote[0], PROTO_TCP, ep.local[0], now)
            stack.ip.send_routed(
                route,
                segment,
                now,
                ttl=ep.ttl,
                tos=tos,
                l4_csum_offset=16,
                gso_size=gso_size,
                l4_header_len=(segment[12] >> 4) * 4,
            )
        except OSError as e:
            self.stack.counters["tcp_tx_error"] += 1
            ep.error = e.errno or 0

    def icmp_error(self, msg: IcmpMessage, quoted: Ipv4Packet, now: float) -> None:
        """RFC 1122 §4.2.3.9 / RFC 9293 §3.9.2 (SHLD-19...): frag-needed makes TCP
        re-segment (RFC 1191 §6.4); hard errors abort a connection still in SYN-SENT
        or SYN-RECEIVED; soft errors are recorded (Linux sk_err_soft)."""
        payload = quoted.payload
        if len(payload) < 8:
            return
        sport = int.from_bytes(payload[0:2], "big")
        dport = int.from_bytes(payload[2:4], "big")
        ep = self.connections.get((quoted.src, sport, quoted.dst, dport))
        if ep is None:
            self.stack.counters["tcp_icmp_no_socket"] += 1
            return
        seq = int.from_bytes(payload[4:8], "big")
        in_flight = ((seq - (ep.snd_una & MASK)) & MASK) <= ((ep.snd_max - ep.snd_una) & MASK)
        if not in_flight:
            self.stack.counters["tcp_icmp_out_of_window"] += 1  # RFC 5927 §4.1 check
            return
        if msg.type == DEST_UNREACHABLE and msg.code == UNREACH_FRAG_NEEDED:
            self.stack.counters["tcp_pmtu_resegment"] += 1
            ep.resegment(now)
            return
        mapped = error_errno(msg.type, msg.code)
        if mapped is None:
            return
        err, fatal = mapped
        if fatal and ep.state in (TcpState.SYN_SENT, TcpState.SYN_RECEIVED):
            ep._abort(err)
        elif ep.recverr:  # Linux tcp_v4_err: with IP_RECVERR the soft error is reported at once
            ep.error = err
            ep._wake()
        else:
            ep.soft_error = err
