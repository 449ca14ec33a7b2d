"""IPv4 input and output for a host (RFC 791, RFC 1122 §3.2.1 and §3.3).

Input (RFC 1122 §3.2.1): the header is checked (version, lengths, checksum —
§3.2.1.1-2 silently discard), datagrams with a source that cannot be a single
host are dropped (§3.2.1.3, RFC 1112 §7.2), and only datagrams for one of our
addresses, a broadcast address or a joined group are accepted (a host does not
forward, §3.3.1.1).  Fragments never take Onload's accelerated path: each is
counted as kernel-path traffic (``kernel_path_rx_fragments``) and handed to the
kernel path's reassembly (:mod:`refstack.net.reassembly`, RFC 791 §3.2, RFC 815),
whose complete datagrams are then delivered like any other; a queue that times
out holding fragment 0 draws ICMP Time Exceeded code 1 (RFC 1122 §3.3.2).

Output: route lookup (longest prefix), the source address of the outgoing
interface unless the caller gives one, the Identification of RFC 6864 (unique per
source, destination and protocol for non-atomic datagrams, §4.1; a per-caller
counter for atomic ones), and fragmentation of datagrams larger than the path MTU
unless DF is set (RFC 791 §3.2 fragmentation procedure; DF -> EMSGSIZE locally,
RFC 1122 §3.3.3).  The path MTU per destination is learned from frag-needed
(RFC 1191 §6.1), never below ``min_pmtu``, and ages out after ``mtu_expires``
(RFC 1191 §6.3).
"""

from __future__ import annotations

import errno
import hashlib
import math
import random
from collections.abc import Iterable
from dataclasses import InitVar, dataclass, field
from typing import TYPE_CHECKING

from ..counters import KERNEL_PATH_RX_FRAGMENTS
from ..nic.offload import TSO_MAX_DATAGRAM, RxOffload, TxOffloadFrame
from ..wire.addresses import Ipv4Addr, ipv4_str, is_multicast_ipv4
from ..wire.errors import WireError
from ..wire.icmp import DEST_UNREACHABLE, TIME_EXCEEDED, TIME_EXCEEDED_REASSEMBLY, UNREACH_PROTOCOL
from ..wire.ipv4 import (
    HEADER_LEN,
    PROTO_ICMP,
    PROTO_IGMP,
    Ipv4Option,
    Ipv4Packet,
    build_ipv4,
)
from .icmp import LIMITED_BROADCAST, names_single_host
from .interface import Interface
from .reassembly import Reassembler
from .routing import NextHop

if TYPE_CHECKING:
    from ..stack import Stack


class IpIdGenerator:
    """RFC 6864 §4.1/§4.2: Identification values that do not repeat quickly for a
    (src, dst, protocol), from a fixed table of counters indexed by a hash of the
    triple, as Linux's ip_idents (2048 buckets): memory stays bounded however many
    peers send (a SYN flood from random sources must not grow it), each counter
    starts at a random value drawn on its first use, and triples sharing a bucket
    share a counter, which keeps their IDs distinct too."""

    BUCKETS = 2048

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._counters: list[int | None] = [None] * self.BUCKETS  # drawn on first use

    def next(self, src: Ipv4Addr, dst: Ipv4Addr, protocol: int) -> int:
        return self.next_in(self.bucket(src, dst, protocol))

    def bucket(self, src: Ipv4Addr, dst: Ipv4Addr, protocol: int) -> int:
        """The counter a triple uses (a connection keeps it, as Linux's inet_id)."""
        digest = hashlib.blake2s(src + dst + bytes((protocol,)), digest_size=4).digest()
        return int.from_bytes(digest, "big") % self.BUCKETS

    def next_in(self, bucket: int) -> int:
        """The next Identification from counter ``bucket``."""
        value = self._counters[bucket]
        if value is None:
            value = self._rng.getrandbits(16)
        self._counters[bucket] = (value + 1) & 0xFFFF
        return value


@dataclass(eq=False, slots=True, kw_only=True)
class TxRoute:
    """A connection's cached route (Onload's cached headers, ``ci_ip_cached_hdrs``;
    Linux's ``sk_dst_cache``): the routing decision, the path MTU and the IP ID
    counter of one (source, destination, protocol), taken once and reused for every
    datagram until the routing table, an interface or the path MTU changes, or a
    learned path MTU expires (RFC 1191 §6.3).  :meth:`Ipv4Layer.route` makes and
    checks them; :meth:`Ipv4Layer.send_routed` sends on one.

    ``csum_offload`` and ``tso`` are the interface's transmit offloads
    (:mod:`refstack.nic.offload`), never towards one of our own addresses (``local``):
    that traffic loops back to our input and must be complete."""

    generation: int
    valid_until: float
    iface: Interface
    next_hop: Ipv4Addr
    src: Ipv4Addr
    dst: Ipv4Addr
    protocol: int
    mtu: int
    id_bucket: int
    local: InitVar[bool] = False
    csum_offload: bool = field(init=False)
    tso: bool = field(init=False)

    def __post_init__(self, local: bool) -> None:
        self.csum_offload = self.iface.tx_csum_offload and not local
        self.tso = self.iface.tso and self.csum_offload


class Ipv4Layer:
    def __init__(self, stack: Stack) -> None:
        self._stack = stack
        self.ids = IpIdGenerator(stack.rng)
        self._generation = 0  # moves when interfaces or path MTUs change (TxRoute)
        self._good_sources: dict[tuple[Ipv4Addr, Ipv4Addr], bool] = {}  # martian verdicts
        self._pmtu: dict[Ipv4Addr, tuple[int, float]] = {}  # dst -> (mtu, expires)
        self._local: frozenset[Ipv4Addr] = frozenset()
        self._broadcast: frozenset[Ipv4Addr] = frozenset([LIMITED_BROADCAST])
        self.reassembly = Reassembler(stack.timers, stack.counters, self._reassembly_expired)

    # --- addresses ----------------------------------------------------------------
    def interfaces_changed(self) -> None:
        """Recompute the address sets (called by the stack when interfaces change)."""
        ifaces = self._stack.interfaces.values()
        self._generation += 1
        self._good_sources = {}
        self._local = frozenset(i.address for i in ifaces)
        self._broadcast = frozenset([LIMITED_BROADCAST, *(i.broadcast for i in ifaces if i.prefix_len < 31)])

    def is_local(self, addr: Ipv4Addr) -> bool:
        return addr in self._local

    def is_broadcast(self, addr: Ipv4Addr) -> bool:
        """The limited broadcast or a connected subnet's directed broadcast (RFC 919, RFC 922)."""
        return addr in self._broadcast

    # --- input --------------------------------------------------------------------
    def input(
        self,
        data: bytes,
        iface: Interface,
        now: float,
        *,
        link_broadcast: bool = False,
        offload: RxOffload | None = None,
    ) -> None:
        stack = self._stack
        counters = stack.counters
        try:
            ip = Ipv4Packet(data)
        except WireError as e:
            counters["ip_rx_malformed"] += 1
            stack.log_drop(now, f"ipv4: {e}")
            return
        if not ip.checksum_ok():
            counters["ip_rx_bad_checksum"] += 1
            return
        # RFC 1122 §3.2.1.3, RFC 1112 §7.2: a source that cannot name one host.
        # 0.0.0.0 (a) is a source only while a host learns its address, i.e. towards
        # the limited broadcast (BOOTP/DHCP; Linux accepts it nowhere else), and the
        # directed broadcast (e) of a connected net is as martian as 255.255.255.255.
        # One of our own addresses arriving from outside is a spoof (the LAND attack: a
        # SYN from us to us makes the stack answer itself); Linux drops it too
        # (fib_validate_source without accept_local).  Our multicast comes back
        # on its interface by design (IP_MULTICAST_LOOP, Stack.loop_back).
        src = ip.src
        dst = ip.dst
        if iface.name != "lo" and self._martian_source(src, dst):
            counters["ip_rx_martian_source"] += 1
            return
        if iface.name != "lo" and dst[0] == 127:
            # RFC 1122 §3.2.1.3 (g), 127/8 "MUST NOT appear outside a host" (Linux:
            # martian destination); it used to reach wildcard-bound sockets.
            counters["ip_rx_martian_destination"] += 1
            return
        to_broadcast = self.is_broadcast(dst)
        multicast = is_multicast_ipv4(dst)
        # IGMP to a joined group is taken whatever the group's source filter (Linux
        # ip_check_mc_rcv): a querier is seldom one of the sources a host includes.
        mc_source = None if ip.protocol == PROTO_IGMP else ip.src
        if not (
            to_broadcast
            or self.is_local(dst)
            or (multicast and stack.accepts_multicast(dst, iface, mc_source))
        ):
            counters["ip_rx_not_for_us"] += 1
            return
        if ip.is_fragment:
            # Onload's filters match on ports, which only fragment 0 carries: every
            # fragment goes to the kernel path, which reassembles (RFC 791 §3.2).
            counters[KERNEL_PATH_RX_FRAGMENTS] += 1
            whole = self._reassemble(ip, now)
            if whole is None:
                return
            ip = whole
            offload = None  # the device vouched for none of the fragments' transport data
        counters["ip_rx_delivered"] += 1
        if ip.protocol in (6, 17) and iface.name != "lo" and ip.total_length - ip.header_length >= 4:
            ports = ip.ports
            stack.onload.classify(ip.protocol, (dst, ports[1]), (src, ports[0]))
        handler = stack.transports.get(ip.protocol)
        if ip.protocol == PROTO_ICMP:
            stack.icmp.input(ip, iface, now, to_broadcast=to_broadcast or multicast or link_broadcast)
        elif handler is not None:
            broadcast = link_broadcast or to_broadcast or multicast
            if offload is None:
                handler.input(ip, iface, now, link_broadcast=broadcast)
            else:
                handler.input(ip, iface, now, link_broadcast=broadcast, offload=offload)
        else:
            # RFC 1122 §3.2.2.1: protocol unreachable for an unknown protocol.
            counters["ip_rx_unknown_protocol"] += 1
            stack.icmp.send_error(DEST_UNREACHABLE, UNREACH_PROTOCOL, ip, now, link_broadcast=link_broadcast)

    def _martian_source(self, src: Ipv4Addr, dst: Ipv4Addr) -> bool:
        """RFC 1122 §3.2.1.3, RFC 1112 §7.2: a source that cannot name one host (see
        :meth:`input`), remembered per (source, destination) until the interfaces change."""
        key = (src, dst)
        verdict = self._good_sources.get(key)
        if verdict is None:
            verdict = (
                (src != bytes(4) and not names_single_host(src))
                or (src == bytes(4) and dst != LIMITED_BROADCAST)
                or self.is_broadcast(src)
                or (self.is_local(src) and not is_multicast_ipv4(dst))
            )
            if len(self._good_sources) >= 4096:  # a flood of random sources: start over
                self._good_sources = {}
            self._good_sources[key] = verdict
        return verdict

    # --- reassembly (the kernel path) -----------------------------------------------
    def _reassemble(self, fragment: Ipv4Packet, now: float) -> Ipv4Packet | None:
        profile = self._stack.profile
        r = self.reassembly
        r.timeout = profile.ipfrag_time
        r.high_thresh = profile.ipfrag_high_thresh
        r.low_thresh = profile.ipfrag_low_thresh
        r.evict_oldest = profile.ipfrag_evict_oldest
        return r.add(fragment, now)

    def _reassembly_expired(self, first: Ipv4Packet, now: float) -> None:
        """RFC 1122 §3.3.2: on timeout, Time Exceeded code 1 quoting fragment 0 (as
        Linux ``ip_expire`` does with ``icmp_send``; RFC 1122 §3.2.2 limits apply)."""
        self._stack.icmp.send_error(TIME_EXCEEDED, TIME_EXCEEDED_REASSEMBLY, first, now)

    # --- path MTU (RFC 1191) --------------------------------------------------------
    def path_mtu(self, dst: Ipv4Addr, now: float) -> int:
        """The MTU towards ``dst``: the route's interface MTU, or less if learned."""
        if self.is_local(dst):
            # our own addresses are reached over the loopback (``Stack.transmit``),
            # so its MTU applies (Linux: the local route is dev lo).  With the outgoing
            # interface's MTU, a 3000-byte datagram to ourselves was fragmented and the
            # fragments dropped by input, so it was never delivered.
            return self._stack.interfaces["lo"].mtu
        hop = self._stack.routes.lookup(dst)
        if_mtu = hop.interface.mtu if hop is not None else 1500
        learned = self._pmtu.get(dst)
        if learned is None:
            return if_mtu
        mtu, expires = learned
        if now >= expires:
            del self._pmtu[dst]
            return if_mtu
        return min(mtu, if_mtu)

    def update_pmtu(self, dst: Ipv4Addr, next_hop_mtu: int, quoted_total_length: int, now: float) -> None:
        """RFC 1191 §6.1: lower the PMTU to the reported next-hop MTU.  An old router
        reporting 0 gets the plateau below the quoted length (§7) with the profile's
        ``pmtu_plateau_guess``, else (Linux) the floor.  Never below ``min_pmtu``
        (Linux route/min_pmtu), never raised by an ICMP message."""
        profile = self._stack.profile
        if profile.ip_no_pmtu_disc:
            return
        mtu = next_hop_mtu
        if mtu == 0 and profile.pmtu_plateau_guess:
            mtu = _plateau_below(quoted_total_length)
        mtu = max(mtu, profile.min_pmtu)
        if mtu >= self.path_mtu(dst, now):
            return
        self._pmtu[dst] = (mtu, now + profile.mtu_expires)
        self._generation += 1
        self._stack.counters["ip_pmtu_lowered"] += 1

    # --- output -------------------------------------------------------------------
    def output(
        self,
        dst: Ipv4Addr,
        protocol: int,
        payload: bytes,
        now: float,
        *,
        src: Ipv4Addr | None = None,
        ttl: int | None = None,
        tos: int = 0,
        df: bool | None = True,
        ident: int | None = None,
        options: Iterable[Ipv4Option] = (),
        iface: Interface | None = None,
    ) -> None:
        """Route and send one datagram, fragmenting it when it is too big and DF is
        clear.  ``df=None`` is Linux's IP_PMTUDISC_WANT (its default for UDP): DF
        when the datagram fits the path MTU, local fragmentation without DF when it
        does not.  Raises ``OSError`` with the errno Linux gives: ENETUNREACH without
        a route, EMSGSIZE when DF is set and the datagram exceeds the path MTU."""
        stack = self._stack
        # ``iface``: send on this interface, the destination taken as on-link (a
        # multicast socket's IP_MULTICAST_IF, as Linux does without a route).
        hop = NextHop(iface, dst, iface.address) if iface is not None else stack.routes.lookup(dst)
        if hop is None:
            stack.counters["ip_tx_no_route"] += 1
            raise OSError(errno.ENETUNREACH, f"no route to {ipv4_str(dst)}")
        if ttl is None:
            ttl = 1 if is_multicast_ipv4(dst) else stack.profile.ip_default_ttl
        source = src if src is not None else hop.source
        opts = tuple(options)
        mtu = self.path_mtu(dst, now)
        opt_len = len(b"".join(o.encode() for o in opts))
        header_len = HEADER_LEN + opt_len + (-opt_len % 4)
        if header_len + len(payload) <= mtu:
            if ident is None:
                ident = self.ids.next(source, dst, protocol)
            datagram = build_ipv4(
                source,
                dst,
                protocol,
                payload,
                ttl=ttl,
                tos=tos,
                ident=ident,
                dont_fragment=df is not False,
                options=opts,
            )
            stack.transmit(hop.interface, hop.address, dst, datagram, now)
            stack.counters["ip_tx"] += 1
            return
        if df:
            stack.counters["ip_tx_too_big_df"] += 1
            raise OSError(errno.EMSGSIZE, f"{header_len + len(payload)} bytes exceed the path MTU {mtu}")
        self._fragment(
            hop.interface,
            hop.address,
            source,
            dst,
            protocol=protocol,
            payload=payload,
            ttl=ttl,
            tos=tos,
            options=opts,
            mtu=mtu,
            now=now,
        )

    def route(
        self,
        cached: TxRoute | None,
        dst: Ipv4Addr,
        protocol: int,
        src: Ipv4Addr | None,
        now: float,
        *,
        probe: bool = False,
    ) -> TxRoute:
        """``cached`` if it still holds at ``now``, else a fresh :class:`TxRoute` to
        ``dst`` (from ``src``, default the route's source).  ENETUNREACH without a
        route, counted in ``ip_tx_no_route`` unless ``probe`` (nothing is sent yet)."""
        generation = self._generation + self._stack.routes.generation
        if cached is not None and cached.generation == generation and now < cached.valid_until:
            return cached
        stack = self._stack
        hop = stack.routes.lookup(dst)
        if hop is None:
            if not probe:
                stack.counters["ip_tx_no_route"] += 1
            raise OSError(errno.ENETUNREACH, f"no route to {ipv4_str(dst)}")
        learned = self._pmtu.get(dst)
        source = src if src is not None else hop.source
        local = self.is_local(dst)
        return TxRoute(
            generation=generation,
            valid_until=learned[1] if learned is not None and not local else math.inf,
            iface=hop.interface,
            next_hop=hop.address,
            src=source,
            dst=dst,
            protocol=protocol,
            mtu=self.path_mtu(dst, now),
            id_bucket=self.ids.bucket(source, dst, protocol),
            local=local,
        )

    def send_routed(
        self,
        route: TxRoute,
        payload: bytes,
        now: float,
        *,
        ttl: int | None,
        tos: int,
        l4_csum_offset: int | None = None,
        gso_size: int = 0,
        l4_header_len: int = 0,
    ) -> None:
        """:meth:`output` for a datagram with DF and no options on a cached route: the
        same datagram, header checksum (RFC 791 §3.1) and errors, without the lookups.

        On a route with transmit offloads (:attr:`TxRoute.csum_offload`), a payload
        whose transport checksum the device is to finish names the checksum field
        (``l4_csum_offset``), and a TSO super-segment its segment size (``gso_size``)
        and transport header length: the datagram goes out as a
        :class:`~refstack.nic.offload.TxOffloadFrame`, up to 64 KB."""
        stack = self._stack
        total = 20 + len(payload)
        limit = TSO_MAX_DATAGRAM if gso_size and route.tso else route.mtu
        if total > limit:
            stack.counters["ip_tx_too_big_df"] += 1
            raise OSError(errno.EMSGSIZE, f"{total} bytes exceed the path MTU {route.mtu}")
        if ttl is None:
            ttl = 1 if is_multicast_ipv4(route.dst) else stack.profile.ip_default_ttl
        ident = self.ids.next_in(route.id_bucket)
        datagram = build_ipv4(
            route.src, route.dst, route.protocol, payload, ttl=ttl, tos=tos, ident=ident, dont_fragment=True
        )
        if l4_csum_offset is not None and route.csum_offload:
            big = total > route.mtu
            datagram = TxOffloadFrame(
                datagram,
                csum_start=20,
                csum_offset=l4_csum_offset,
                gso_size=gso_size if big else 0,
                hdr_len=20 + l4_header_len if big else 0,
            )
        stack.transmit(route.iface, route.next_hop, route.dst, datagram, now)
        stack.counters["ip_tx"] += 1

    def _fragment(
        self,
        iface: Interface,
        next_hop: Ipv4Addr,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        *,
        protocol: int,
        payload: bytes,
        ttl: int,
        tos: int,
        options: tuple[Ipv4Option, ...],
        mtu: int,
        now: float,
    ) -> None:
        """RFC 791 §3.2 fragmentation: pieces of a multiple of 8 bytes, MF on all but
        the last, one Identification (RFC 6864 §4.1), options with the copied flag
        repeated in later fragments (RFC 791 §3.1 "copied flag")."""
        ident = self.ids.next(src, dst, protocol)
        offset = 0
        first = True
        while offset < len(payload):
            opts = options if first else tuple(o for o in options if o.copied)
            opt_len = len(b"".join(o.encode() for o in opts))
            header_len = HEADER_LEN + opt_len + (-opt_len % 4)
            room = (mtu - header_len) & ~7
            piece = payload[offset : offset + room]
            last = offset + len(piece) >= len(payload)
            datagram = build_ipv4(
                src,
                dst,
                protocol,
                piece,
                ttl=ttl,
                tos=tos,
                ident=ident,
                more_fragments=not last,
                fragment_offset=offset,
                options=opts,
            )
            self._stack.transmit(iface, next_hop, dst, datagram, now)
            self._stack.counters["ip_tx_fragments"] += 1
            offset += len(piece)
            first = False
        self._stack.counters["ip_tx_fragmented"] += 1


# RFC 1191 §7 table of MTU plateaus, for routers that report next-hop MTU 0.
_PLATEAUS = (65535, 32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68)


def _plateau_below(length: int) -> int:
    for plateau in _PLATEAUS:
        if plateau < length:
            return plateau
    return 68
