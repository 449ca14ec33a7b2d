"""ICMP for the host (RFC 792, RFC 1122 §3.2.2): echo, errors sent and errors received.

Sent errors obey RFC 1122 §3.2.2: never about an ICMP error, a datagram sent to a
broadcast or multicast address or as a link-layer broadcast, a non-initial
fragment, or a source that does not name a single host; and they are rate
limited per destination (RFC 1812 §4.3.2.8, as Linux's icmp_ratelimit /
icmp_ratemask token bucket).  The quoted datagram is the offending one cut to fit
576 bytes (RFC 1812 §4.3.2.3).

Received errors are handed to the transport named by the quoted header, which
finds the socket from the quoted ports (RFC 1122 §4.2.3.9 for TCP, §4.1.3.3 UDP);
frag-needed also lowers the path MTU (RFC 1191 §6.1).
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from ..wire import icmp as w
from ..wire.addresses import Ipv4Addr, is_multicast_ipv4
from ..wire.errors import WireError
from ..wire.ipv4 import PROTO_ICMP, Ipv4Packet

if TYPE_CHECKING:
    from ..stack import Stack
    from .interface import Interface

LIMITED_BROADCAST = b"\xff\xff\xff\xff"


def names_single_host(addr: Ipv4Addr) -> bool:
    """RFC 1122 §3.2.1.3 / §3.2.2: not 0.0.0.0, loopback, broadcast or class D/E."""
    return addr[0] not in (0, 127) and addr[0] < 224 and addr != LIMITED_BROADCAST


class IcmpLayer:
    def __init__(self, stack: Stack) -> None:
        self._stack = stack
        self._buckets: dict[Ipv4Addr, tuple[float, float]] = {}  # dst -> (tokens, last refill)

    # --- input --------------------------------------------------------------------
    def input(self, ip: Ipv4Packet, iface: Interface, now: float, *, to_broadcast: bool) -> None:
        counters = self._stack.counters
        try:
            msg = w.IcmpMessage(ip.payload)
        except WireError:
            counters["icmp_rx_malformed"] += 1
            return
        if not msg.checksum_ok():
            counters["icmp_rx_bad_checksum"] += 1
            return
        counters["icmp_rx"] += 1
        if msg.type == w.ECHO_REQUEST:
            self._echo(ip, msg, now, to_broadcast=to_broadcast)
        elif msg.quoted is not None:
            self._deliver_error(ip, msg, now)

    def _echo(self, ip: Ipv4Packet, msg: w.IcmpMessage, now: float, *, to_broadcast: bool) -> None:
        """RFC 1122 §3.2.2.6: reply to an echo with the same id, sequence and data.
        Echoes to broadcast/multicast are ignored (Linux icmp_echo_ignore_broadcasts=1)."""
        profile = self._stack.profile
        if profile.icmp_echo_ignore_all or to_broadcast:
            self._stack.counters["icmp_echo_ignored"] += 1
            return
        reply = w.build_icmp(w.ECHO_REPLY, 0, msg.rest, msg.body)
        # RFC 1349 §5.1, the reply SHOULD keep the request's TOS (Linux copies
        # it); ECN bits are not copied (RFC 3168 §5: ICMP is not ECN-capable).
        if self._output(ip.src, reply, now, src=ip.dst, tos=ip.tos & 0xFC):
            self._stack.counters["icmp_tx_echo_reply"] += 1

    def _output(self, dst: Ipv4Addr, msg: bytes, now: float, *, src: Ipv4Addr | None, tos: int) -> bool:
        """Send an ICMP message we owe.  with no route back the message is
        dropped and counted; input must never raise to the driver (it used to raise
        ENETUNREACH out of ``Stack.receive``)."""
        try:
            self._stack.ip.output(dst, PROTO_ICMP, msg, now, src=src, df=False, tos=tos)
        except OSError:
            self._stack.counters["icmp_tx_no_route"] += 1
            return False
        return True

    def _deliver_error(self, ip: Ipv4Packet, msg: w.IcmpMessage, now: float) -> None:
        quoted = msg.quoted
        assert quoted is not None
        stack = self._stack
        if not stack.ip.is_local(quoted.src):
            stack.counters["icmp_rx_error_not_ours"] += 1
            return
        if msg.type == w.DEST_UNREACHABLE and msg.code == w.UNREACH_FRAG_NEEDED:
            stack.ip.update_pmtu(quoted.dst, msg.next_hop_mtu, quoted.total_length, now)
        handler = stack.transports.get(quoted.protocol)
        if handler is None:
            stack.counters["icmp_rx_error_no_transport"] += 1
            return
        handler.icmp_error(msg, quoted, now)

    # --- output -------------------------------------------------------------------
    def send_error(
        self,
        icmp_type: int,
        code: int,
        offending: Ipv4Packet,
        now: float,
        *,
        link_broadcast: bool = False,
        next_hop_mtu: int = 0,
    ) -> bool:
        """Send an ICMP error about ``offending`` if RFC 1122 §3.2.2 allows it."""
        stack = self._stack
        if not self._may_send_error_about(offending, link_broadcast):
            stack.counters["icmp_error_suppressed"] += 1
            return False
        if not self._rate_ok(icmp_type, offending.src, now):
            stack.counters["icmp_error_ratelimited"] += 1
            return False
        quoted = w.quote_datagram(bytes(offending))
        if icmp_type == w.DEST_UNREACHABLE:
            msg = w.build_icmp_unreachable(code, quoted, next_hop_mtu=next_hop_mtu)
        elif icmp_type == w.TIME_EXCEEDED:
            msg = w.build_icmp_time_exceeded(code, quoted)
        else:
            msg = w.build_icmp(icmp_type, code, body=quoted)
        src = offending.dst if stack.ip.is_local(offending.dst) else None
        if not self._output(offending.src, msg, now, src=src, tos=0xC0):
            return False
        stack.counters[f"icmp_tx_type{icmp_type}_code{code}"] += 1
        return True

    def _may_send_error_about(self, ip: Ipv4Packet, link_broadcast: bool) -> bool:
        # a 127/8 source names this host when it came over ``lo`` (IP input drops
        # 127/8 from any other interface, RFC 1122 §3.2.1.3 (g)), so loopback UDP to a
        # closed port draws port unreachable (ECONNREFUSED), as on Linux.
        if link_broadcast or not (names_single_host(ip.src) or ip.src[0] == 127):
            return False
        if is_multicast_ipv4(ip.dst) or self._stack.ip.is_broadcast(ip.dst):
            return False
        if ip.fragment_offset != 0:
            return False
        if ip.protocol == PROTO_ICMP:
            # Never about an ICMP error; errors about queries (echo...) are allowed.
            payload = ip.payload
            if not payload or payload[0] in w.ERROR_TYPES or payload[0] not in w.TYPE_NAMES:
                return False
        return True

    def _rate_ok(self, icmp_type: int, dst: Ipv4Addr, now: float) -> bool:
        """Token bucket per destination for the types in icmp_ratemask (Linux xrlim)."""
        profile = self._stack.profile
        if profile.icmp_ratelimit <= 0 or not (profile.icmp_ratemask >> icmp_type) & 1:
            return True
        burst = profile.icmp_burst * profile.icmp_ratelimit
        tokens, last = self._buckets.get(dst, (burst, now))
        tokens = min(burst, tokens + (now - last))
        if tokens < profile.icmp_ratelimit:
            self._buckets[dst] = (tokens, now)
            return False
        self._buckets[dst] = (tokens - profile.icmp_ratelimit, now)
        return True


# RFC 1122 §3.2.2.1 / §4.2.3.9 and Linux's icmp_err_convert: the errno a socket
# reports for a destination-unreachable code, and whether Linux treats it as fatal.
UNREACH_ERRNO: dict[int, tuple[int, bool]] = {
    0: (errno.ENETUNREACH, False),
    1: (errno.EHOSTUNREACH, False),
    2: (errno.ENOPROTOOPT, True),
    3: (errno.ECONNREFUSED, True),
    4: (errno.EMSGSIZE, False),
    5: (errno.EOPNOTSUPP, False),
    6: (errno.ENETUNREACH, True),
    7: (errno.EHOSTDOWN, True),
    8: (errno.ENONET, True),
    9: (errno.ENETUNREACH, True),
    10: (errno.EHOSTUNREACH, True),
    11: (errno.ENETUNREACH, False),
    12: (errno.EHOSTUNREACH, False),
    13: (errno.EHOSTUNREACH, True),
    14: (errno.EHOSTUNREACH, True),
    15: (errno.EHOSTUNREACH, True),
}


def error_errno(icmp_type: int, code: int) -> tuple[int, bool] | None:
    """(errno, fatal) for an ICMP error as Linux maps it, or None to ignore it."""
    if icmp_type == w.DEST_UNREACHABLE:
        return UNREACH_ERRNO.get(code, (errno.EHOSTUNREACH, False))
    if icmp_type == w.TIME_EXCEEDED:
        return (errno.EHOSTUNREACH, False)
    if icmp_type == w.PARAMETER_PROBLEM:
        return (errno.EPROTO, True)
    return None
