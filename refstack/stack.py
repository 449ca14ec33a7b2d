"""The stack (Onload's "netif"): interfaces, IP, ICMP, UDP and TCP in one sans-I/O object.

It is driven only by three calls (DESIGN.md):

- ``receive(frame, now)``: a frame arrived on an interface (an Ethernet frame on
  an Ethernet interface, a bare IPv4 datagram on an IP-only one);
- ``poll(now)``: run the timers due at ``now`` and return the frames to send;
- ``next_deadline()``: the earliest time ``poll`` has work to do.

Application calls (the socket API) go to the socket cores and produce frames at
once; ``next_deadline`` is then ``now`` so that the driver polls them out.  Nothing
here reads a clock, a file or a socket, and all randomness comes from one seeded
``random.Random`` so that a run can be replayed exactly.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from typing import Protocol

from .config import Config
from .counters import Counters
from .net.arp import ArpCache
from .net.icmp import IcmpLayer
from .net.igmp import ALL_HOSTS, PROTO_IGMP, IgmpLayer
from .net.interface import Interface
from .net.ipv4 import Ipv4Layer
from .net.routing import RoutingTable
from .nic.model import OnloadModel
from .nic.offload import RxOffload, TxOffloadFrame
from .profile import Profile
from .tcp.layer import TcpLayer
from .timers import TimerQueue
from .udp import UdpLayer
from .wire.addresses import BROADCAST_MAC, Ipv4Addr, MacAddr, ipv4_addr, is_multicast_ipv4, multicast_mac
from .wire.addresses import mac as parse_mac
from .wire.errors import WireError
from .wire.ethernet import ETHERTYPE_ARP, ETHERTYPE_IPV4, EthernetFrame, build_ethernet
from .wire.icmp import DEST_UNREACHABLE, UNREACH_HOST, IcmpMessage
from .wire.ipv4 import Ipv4Packet

LOOPBACK = "lo"


class Transport(Protocol):
    """A protocol above IP (UDP, TCP): datagrams in, ICMP errors in."""

    def input(
        self,
        ip: Ipv4Packet,
        iface: Interface,
        now: float,
        *,
        link_broadcast: bool,
        offload: RxOffload | None = None,
    ) -> None: ...

    def icmp_error(self, msg: IcmpMessage, quoted: Ipv4Packet, now: float) -> None: ...


def _addr(value: str | bytes) -> Ipv4Addr:
    return ipv4_addr(value) if isinstance(value, str) else bytes(value)


class Stack:
    """One reference stack.  ``seed`` makes every random choice reproducible.

    ``config`` holds the stack's EF_* options (:class:`~refstack.config.Config`;
    default: Onload's defaults, never the process environment: a caller wanting
    that passes ``Config.from_env()``).  Wired: ``config.name`` (EF_NAME) names the
    stack unless ``name`` is given; the options the profile has a knob for, when set
    explicitly, override the profile (:meth:`Profile.with_config`: EF_RFC_RTO_*,
    EF_TCP_FIN_TIMEOUT, EF_TCP_TCONST_MSL, EF_TCP_BACKLOG_MAX,
    EF_ACCEPTQ_MAX_BACKLOG); and the Onload model (:attr:`onload`,
    :mod:`refstack.nic.model`): endpoints (EF_MAX_ENDPOINTS, EF_TCP_SYNRECV_MAX),
    the filter table (EF_MAX_FILTERS), EF_NO_FAIL handover, EF_TCP/EF_UDP, the
    interface lists, the VNIC rings (EF_RXQ_SIZE, EF_TXQ_SIZE), packet buffers
    (EF_MAX_PACKETS, EF_MAX_RX_PACKETS, EF_MAX_TX_PACKETS,
    EF_UDP_SEND_NONBLOCK_NO_PACKETS_MODE), TCP socket buffer overrides
    (EF_TCP_SNDBUF, EF_TCP_RCVBUF) and the multicast options (EF_MCAST_RECV,
    EF_MCAST_SEND, EF_MCAST_JOIN_HANDOVER).  Its counters are
    ``onload.counters``, apart from the Linux-like :attr:`counters`.
    """

    def __init__(
        self,
        profile: Profile | None = None,
        *,
        name: str | None = None,
        seed: int | None = None,
        config: Config | None = None,
    ):
        self.config = config if config is not None else Config()
        self.name = name if name is not None else self.config.name or "refstack"
        self.profile = (profile if profile is not None else Profile()).with_config(self.config)
        self.rng = random.Random(seed)
        self.counters = Counters()
        self.timers = TimerQueue()
        self.interfaces: dict[str, Interface] = {}
        self.routes = RoutingTable()
        self.arp: dict[str, ArpCache] = {}
        self.now = 0.0
        self.drops: deque[tuple[float, str]] = deque(maxlen=64)
        self.onload = OnloadModel(self)
        self.ip = Ipv4Layer(self)
        self.icmp = IcmpLayer(self)
        self.udp = UdpLayer(self)
        self.tcp = TcpLayer(self)
        self.igmp = IgmpLayer(self)
        self.transports: dict[int, Transport] = {6: self.tcp, 17: self.udp, PROTO_IGMP: self.igmp}
        self._loopback: deque[tuple[bytes, Interface | None]] = deque()
        # Observers of every frame the stack receives or sends ("rx"/"tx", interface,
        # time, frame): what ``refstack tcpdump`` attaches to.
        self.taps: list[Callable[[str, str, float, bytes], None]] = []
        self.wired: tuple[Interface, ...] = ()  # every interface but loopback, in order
        self._primary: Interface | None = None
        self.add_interface(LOOPBACK, "127.0.0.1", 8, mtu=65535)

    # --- configuration ----------------------------------------------------------------
    def add_interface(
        self,
        name: str,
        address: str | bytes,
        prefix_len: int,
        *,
        mtu: int = 1500,
        mac: str | bytes | None = None,
    ) -> Interface:
        """Add an interface and its connected route.  With ``mac`` it is Ethernet."""
        if name in self.interfaces:
            raise ValueError(f"interface {name} already exists")
        hw: MacAddr | None = parse_mac(mac) if isinstance(mac, str) else mac
        iface = Interface(name, len(self.interfaces) + 1, _addr(address), prefix_len, mtu, hw)
        self.interfaces[name] = iface
        self.wired = tuple(i for i in self.interfaces.values() if i.name != LOOPBACK)
        self._primary = self.wired[0] if self.wired else iface
        self.ip.interfaces_changed()
        self.routes.add(iface.address, prefix_len, iface)
        if hw is not None:
            self.arp[name] = ArpCache(iface, self.timers, self.counters, self._unresolved)
        return iface

    def add_route(
        self, network: str | bytes, prefix_len: int, interface: str, gateway: str | bytes | None = None
    ) -> None:
        self.routes.add(
            _addr(network),
            prefix_len,
            self.interfaces[interface],
            _addr(gateway) if gateway is not None else None,
        )

    @property
    def primary(self) -> Interface:
        """The first interface added after loopback (the one ``poll`` drains by default)."""
        assert self._primary is not None
        return self._primary

    # --- the three driver calls --------------------------------------------------------
    def receive(
        self, frame: bytes, now: float, interface: str | None = None, *, offload: RxOffload | None = None
    ) -> None:
        """A frame arrived at ``now`` on ``interface`` (default: the primary one).

        ``offload`` is what the device says about it (:class:`~refstack.nic.offload.RxOffload`:
        transport checksum already valid, TCP super-segment), from a link with offloads.
        A :class:`~refstack.nic.offload.TxOffloadFrame` arriving as is came over a
        host-internal link (``MemoryLink(offload=True)``, Linux's veth) with its sender's
        metadata: it is vouched for, as veth hands on a CHECKSUM_PARTIAL skb."""
        if offload is None and isinstance(frame, TxOffloadFrame):
            offload = RxOffload(csum_valid=True, gso_size=frame.gso_size)
        if now < self.now:
            raise ValueError(f"time went backwards: {now} < {self.now}")
        self.now = now
        iface = self.interfaces[interface] if interface is not None else self.primary
        self.counters["rx_frames"] += 1
        if not self.onload.rx_frame(frame, iface):
            return  # the RX ring is full, or no RX packet buffer is free: dropped
        for tap in self.taps:
            tap("rx", iface.name, now, frame)
        if not iface.is_ethernet:
            self.ip.input(frame, iface, now, offload=offload)
            return
        try:
            eth = EthernetFrame(frame)
        except WireError as e:
            self.counters["eth_rx_malformed"] += 1
            self.log_drop(now, f"ethernet: {e}")
            return
        dst = eth.dst
        if dst not in (iface.mac, BROADCAST_MAC) and not dst[0] & 1:
            self.counters["eth_rx_not_for_us"] += 1
            return
        if eth.ethertype == ETHERTYPE_IPV4:
            self.ip.input(eth.payload, iface, now, link_broadcast=dst == BROADCAST_MAC, offload=offload)
        elif eth.ethertype == ETHERTYPE_ARP:
            self.arp[iface.name].input(eth.payload, now)
        else:
            self.counters["eth_rx_unknown_ethertype"] += 1

    def poll(self, now: float, interface: str | None = None) -> list[bytes]:
        """Run what is due at ``now`` and return the frames queued on ``interface``."""
        if now < self.now:
            raise ValueError(f"time went backwards: {now} < {self.now}")
        self.now = now
        self.onload.polled()
        self.timers.run_due(now)
        if self._loopback:
            self._drain_loopback(now)
        iface = self.interfaces[interface] if interface is not None else self.primary
        tx = iface.tx
        if not tx:
            return []
        # The TX ring takes EF_TXQ_SIZE frames per poll; the rest wait for the next.
        limit = self.onload.txq_size
        if len(tx) <= limit:
            frames = list(tx)
            tx.clear()
        else:
            frames = [tx.popleft() for _ in range(limit)]
            self.onload.counters["tx_oflow"] += 1
        self.counters["tx_frames"] += len(frames)
        for tap in self.taps:
            for frame in frames:
                tap("tx", iface.name, now, frame)
        return frames

    def next_deadline(self) -> float | None:
        if self._loopback:
            return self.now
        for iface in self.wired:
            if iface.tx:
                return self.now
        return self.timers.next_deadline()

    # --- used by the layers -------------------------------------------------------------
    def _advance(self, now: float) -> None:
        if now < self.now:
            raise ValueError(f"time went backwards: {now} < {self.now}")
        self.now = now

    def transmit(
        self, iface: Interface, next_hop: Ipv4Addr, dst: Ipv4Addr, datagram: bytes, now: float
    ) -> None:
        """Put one IPv4 datagram on ``iface``'s link (framing and ARP as needed)."""
        if iface.name == LOOPBACK or self.ip.is_local(dst):
            self._loopback.append((datagram, None))
            return
        if not self.onload.tx_frame():
            return  # no TX packet buffer: dropped (TCP retransmits)
        if iface.mac is None:
            iface.tx.append(datagram)
        elif self.ip.is_broadcast(dst):
            iface.tx.append(build_ethernet(BROADCAST_MAC, iface.mac, ETHERTYPE_IPV4, datagram))
        elif is_multicast_ipv4(dst):
            iface.tx.append(build_ethernet(multicast_mac(dst), iface.mac, ETHERTYPE_IPV4, datagram))
        else:
            self.arp[iface.name].send_ipv4(next_hop, datagram, now)

    def loop_back(self, datagram: bytes, iface: Interface) -> None:
        """Hand a copy of a datagram we sent on ``iface`` back to our own input, as if
        it had arrived there (multicast loopback, IP_MULTICAST_LOOP)."""
        self._loopback.append((datagram, iface))

    def _drain_loopback(self, now: float) -> None:
        lo = self.interfaces[LOOPBACK]
        while self._loopback:
            datagram, iface = self._loopback.popleft()
            self.ip.input(datagram, iface if iface is not None else lo, now)

    def _unresolved(self, datagram: bytes, now: float) -> None:
        """ARP gave up on a next hop: report host unreachable to the sender (as Linux)."""
        try:
            ip = Ipv4Packet(datagram)
        except WireError:
            return
        self.icmp.send_error(DEST_UNREACHABLE, UNREACH_HOST, ip, now)

    def accepts_multicast(self, group: Ipv4Addr, iface: Interface, source: Ipv4Addr | None = None) -> bool:
        """RFC 1112 §7.2, RFC 3376 §3.2: all-hosts always; another group once a socket
        joined it on ``iface``, from the sources the interface's filter lets in."""
        return group == ALL_HOSTS or self.igmp.interface_accepts(group, iface, source)

    def log_drop(self, now: float, reason: str) -> None:
        self.drops.append((now, reason))
