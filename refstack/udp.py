"""UDP (RFC 768, RFC 1122 §4.1): demultiplexing and the datagram socket core.

The socket core (:class:`UdpEndpoint`) is sans-I/O: calls either complete at once
or raise ``BlockingIOError``; :mod:`refstack.socket` adds blocking on top.  Errors
are the ``OSError``s Linux gives in the same situation.

- Demultiplexing (RFC 768 "User Interface", RFC 1122 §4.1.3.5): the most specific
  socket wins — connected 4-tuple, then bound address, then wildcard; broadcast
  and multicast datagrams go to every matching socket.
- A datagram for a port nobody holds draws ICMP port unreachable (RFC 1122
  §4.1.3.1), subject to the ICMP error rules (never for broadcast/multicast).
- Checksums: a zero checksum means none (RFC 768); any other is verified and a
  bad one silently discarded (RFC 1122 §4.1.3.4).  We always send checksums.
- ICMP errors reach connected sockets as a pending error (SO_ERROR), reported
  by the next call, as Linux does without IP_RECVERR (RFC 1122 §4.1.3.3).
"""

from __future__ import annotations

import errno
from collections import deque
from typing import TYPE_CHECKING

from .net.icmp import LIMITED_BROADCAST, error_errno
from .net.interface import Interface
from .nic.offload import RxOffload
from .wire.addresses import Ipv4Addr, ipv4_str, is_multicast_ipv4
from .wire.errors import WireError
from .wire.icmp import DEST_UNREACHABLE, UNREACH_PORT, IcmpMessage
from .wire.ipv4 import PROTO_UDP, Ipv4Packet, build_ipv4
from .wire.udp import UdpDatagram, build_udp

if TYPE_CHECKING:
    from .stack import Stack

ANY = bytes(4)
MAX_PAYLOAD = 65535 - 20 - 8
Address = tuple[Ipv4Addr, int]


class PortsExhaustedError(OSError):
    """EAGAIN from an implicit bind with no ephemeral port left (Linux inet_autobind):
    a failure, not "would block", so even a blocking sendto()/connect() returns it."""


class UdpEndpoint:
    """The state of one UDP socket."""

    def __init__(self, layer: UdpLayer) -> None:
        self._layer = layer
        profile = layer.stack.profile
        self.local: Address | None = None
        self.remote: Address | None = None
        self.rcvbuf = profile.rmem_default
        self.sndbuf = profile.wmem_default
        self.broadcast = False
        self.reuseaddr = False
        self.ttl: int | None = None
        self.tos = 0
        self.pmtudisc: bool | None = (
            None  # IP_MTU_DISCOVER: None = WANT (Linux default), True = DO, False = DONT
        )
        self.error = 0
        self.closed = False
        # Multicast (RFC 1112 §6.1, Linux's defaults): TTL 1, loopback on, no fixed
        # interface, and IP_MULTICAST_ALL on (a wildcard socket hears every group
        # the host joined).  ``owner`` names this socket's memberships.
        self.onload = layer.stack.onload.new_socket(17)  # ENOMEM: no endpoint, EF_NO_FAIL=0
        self.owner = self.onload.owner
        self.mc_ttl = 1
        self.mc_loop = True
        self.mc_if: Ipv4Addr = ANY
        self.mc_ifindex = 0
        self.mc_all = True
        self.rx: deque[tuple[bytes, Address]] = deque()
        self.rx_bytes = 0
        # Bumped whenever something happens that could wake a waiter (data, error):
        # edge-triggered epoll reports an event when this moves.
        self.activity = 0

    # --- state ------------------------------------------------------------------------
    @property
    def readable(self) -> bool:
        return bool(self.rx) or self.error != 0

    @property
    def writable(self) -> bool:
        return not self.closed

    def take_error(self) -> int:
        """SO_ERROR semantics: return the pending error and clear it."""
        err, self.error = self.error, 0
        return err

    def _raise_pending(self) -> None:
        if self.error:
            err = self.take_error()
            raise OSError(err, errno.errorcode.get(err, str(err)))

    # --- calls ------------------------------------------------------------------------
    def bind(self, addr: Ipv4Addr, port: int) -> None:
        if self.local is not None:
            raise OSError(errno.EINVAL, "socket is already bound")
        try:
            self._layer.bind(self, addr, port)
        except PortsExhaustedError:
            # with every ephemeral port taken, Linux fails an explicit bind() with
            # EADDRINUSE (inet_bind); EAGAIN is only for the implicit bind of
            # sendto/connect (inet_autobind).
            raise OSError(errno.EADDRINUSE, "Address already in use") from None

    def connect(self, addr: Ipv4Addr, port: int, now: float) -> None:
        """Fix the peer (RFC 1122 §4.1.3.4 lets an application specify it); the local
        address becomes the route's source if still unbound, as on Linux."""
        if port == 0 or not 0 < port <= 0xFFFF:
            raise OSError(errno.EINVAL if port > 0xFFFF else errno.ECONNREFUSED, "bad port")
        hop = self._layer.stack.routes.lookup(addr)
        if hop is None:
            raise OSError(errno.ENETUNREACH, "Network is unreachable")
        if self.broadcast is False and self._layer.stack.ip.is_broadcast(addr):
            raise OSError(errno.EACCES, "Permission denied")
        if self.local is None:
            self._layer.bind(self, ANY, 0)
        assert self.local is not None
        if self.local[0] == ANY:
            self._layer.rebind_address(self, hop.source)
        self._layer.stack.onload.connected(self.owner, 17, self.local, (addr, port))
        self.remote = (addr, port)

    def disconnect(self) -> None:
        """connect(AF_UNSPEC): forget the peer."""
        self.remote = None

    def sendto(self, data: bytes, dest: Address | None, now: float) -> int:
        stack = self._layer.stack
        self._raise_pending()
        if self.closed:
            raise OSError(errno.EBADF, "Bad file descriptor")
        if dest is None:
            if self.remote is None:
                raise OSError(errno.EDESTADDRREQ, "Destination address required")
            dest = self.remote
        addr, port = dest
        if port == 0:
            raise OSError(errno.EINVAL, "Invalid argument")
        if len(data) > MAX_PAYLOAD:
            raise OSError(errno.EMSGSIZE, "Message too long")
        if stack.ip.is_broadcast(addr) and not self.broadcast:
            raise OSError(errno.EACCES, "Permission denied")  # SO_BROADCAST (RFC 1122 §4.1.3.6)
        if self.local is None:
            self._layer.bind(self, ANY, 0)
        assert self.local is not None
        if is_multicast_ipv4(addr):
            return self._send_multicast(data, addr, port, now)
        if addr == LIMITED_BROADCAST and (self.local[0] != ANY or self.mc_ifindex or self.mc_if != ANY):
            # Linux ip_route_output for 255.255.255.255: the IP_MULTICAST_IF interface,
            # else the bound address's one, the destination on-link (no route needed).
            iface = self._layer.multicast_interface(self.mc_ifindex, self.mc_if)
            if iface is None:
                iface = self._layer.interface_of(self.local[0])
            if iface is not None:
                src = self.local[0] if self.local[0] != ANY else iface.address
                datagram = build_udp(src, addr, self.local[1], port, data)
                ttl, tos, df = self.ttl, self.tos, self.pmtudisc
                stack.ip.output(addr, PROTO_UDP, datagram, now, src=src, ttl=ttl, tos=tos, df=df, iface=iface)
                stack.counters["udp_tx"] += 1
                return len(data)
        src = self.local[0]
        if src == ANY:
            hop = stack.routes.lookup(addr)
            if hop is None:
                # counted like the IP layer's own no-route failure (it went uncounted).
                stack.counters["ip_tx_no_route"] += 1
                raise OSError(errno.ENETUNREACH, "Network is unreachable")
            src = hop.source
        datagram = build_udp(src, addr, self.local[1], port, data)
        stack.ip.output(addr, PROTO_UDP, datagram, now, src=src, ttl=self.ttl, tos=self.tos, df=self.pmtudisc)
        stack.counters["udp_tx"] += 1
        return len(data)

    def _send_multicast(self, data: bytes, group: Ipv4Addr, port: int, now: float) -> int:
        """RFC 1112 §6.1: TTL IP_MULTICAST_TTL, out of IP_MULTICAST_IF (else the bound
        address's interface, else the route's), and a copy back to our own members
        when IP_MULTICAST_LOOP is on (Linux ip_mc_output) and, for an accelerated
        socket with EF_MCAST_SEND set, when that allows loopback to the same stack
        (:meth:`~refstack.nic.model.OnloadModel.multicast_loops`)."""
        stack = self._layer.stack
        assert self.local is not None
        iface = self._layer.multicast_interface(self.mc_ifindex, self.mc_if)
        if iface is None and self.local[0] != ANY:
            iface = self._layer.interface_of(self.local[0])
        if iface is None:
            hop = stack.routes.lookup(group)
            if hop is None:
                stack.counters["ip_tx_no_route"] += 1
                raise OSError(errno.ENETUNREACH, "Network is unreachable")
            iface = hop.interface
        src = self.local[0] if self.local[0] != ANY else iface.address
        datagram = build_udp(src, group, self.local[1], port, data)
        # RFC 1112 §6.1: TTL 0 keeps the datagram on this host (Linux ip_mc_output
        # loops it back, then drops it rather than send it on the link).
        if self.mc_ttl > 0:
            stack.ip.output(
                group,
                PROTO_UDP,
                datagram,
                now,
                src=src,
                ttl=self.mc_ttl,
                tos=self.tos,
                df=self.pmtudisc,
                iface=iface,
            )
        stack.counters["udp_tx"] += 1
        stack.counters["udp_tx_multicast"] += 1
        if (
            self.mc_loop
            and stack.accepts_multicast(group, iface, src)
            and stack.onload.multicast_loops(self.onload)
        ):
            looped = build_ipv4(src, group, PROTO_UDP, datagram, ttl=self.mc_ttl, tos=self.tos)
            stack.loop_back(looped, iface)
        return len(data)

    # --- multicast membership (IP_ADD_MEMBERSHIP and friends) --------------------------
    def join(
        self, group: Ipv4Addr, address: Ipv4Addr, ifindex: int, source: Ipv4Addr | None, now: float
    ) -> None:
        """Join ``group`` on the interface ``ifindex`` names, else the one owning
        ``address``, else the route's to the group (ENODEV when none, as Linux)."""
        iface = self._layer.membership_interface(group, address, ifindex)
        stack = self._layer.stack
        stack.igmp.join(self.owner, iface, group, source, now)
        if self.local is not None:
            stack.onload.joined(self.owner, group, self.local[1], iface)

    def leave(
        self, group: Ipv4Addr, address: Ipv4Addr, ifindex: int, source: Ipv4Addr | None, now: float
    ) -> None:
        iface = self._layer.membership_interface(group, address, ifindex, leaving=True)
        stack = self._layer.stack
        stack.igmp.leave(self.owner, iface, group, source, now)
        if self.local is not None:
            stack.onload.left(self.owner, group, self.local[1])

    def recvfrom(self) -> tuple[bytes, Address]:
        """The next datagram, or BlockingIOError; a pending error is raised first."""
        self._raise_pending()
        if not self.rx:
            raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
        data, addr = self.rx.popleft()
        self.rx_bytes -= len(data)
        return data, addr

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.activity += 1
            self._layer.unbind(self)
            stack = self._layer.stack
            stack.igmp.drop_socket(self.owner, stack.now)
            stack.onload.close(self.owner)

    # --- from the layer ----------------------------------------------------------------
    def deliver(self, data: bytes, source: Address) -> bool:
        if self.rx_bytes + len(data) > self.rcvbuf and self.rx:
            return False  # receive buffer full: drop (Linux counts RcvbufErrors)
        self.rx.append((data, source))
        self.rx_bytes += len(data)
        self.activity += 1
        return True

    def __repr__(self) -> str:
        def fmt(a: Address | None) -> str:
            return f"{ipv4_str(a[0])}:{a[1]}" if a else "*"

        return f"<UdpEndpoint {fmt(self.local)} -> {fmt(self.remote)}>"


class UdpLayer:
    """Port allocation and demultiplexing for every UDP endpoint of a stack."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self._bound: dict[int, list[UdpEndpoint]] = {}

    def endpoint(self) -> UdpEndpoint:
        return UdpEndpoint(self)

    # --- interfaces for multicast ------------------------------------------------------
    def interface_of(self, address: Ipv4Addr) -> Interface | None:
        for iface in self.stack.interfaces.values():
            if iface.address == address:
                return iface
        return None

    def multicast_interface(self, ifindex: int, address: Ipv4Addr) -> Interface | None:
        """IP_MULTICAST_IF's interface: by index, else by address; None when unset."""
        if ifindex:
            for iface in self.stack.interfaces.values():
                if iface.index == ifindex:
                    return iface
            return None
        return self.interface_of(address) if address != ANY else None

    def membership_interface(
        self, group: Ipv4Addr, address: Ipv4Addr, ifindex: int, *, leaving: bool = False
    ) -> Interface:
        """Linux ip_mc_find_dev: the index, else the address, else the route to the
        group; ENODEV when nothing names an interface (EADDRNOTAVAIL for a drop)."""
        iface = self.multicast_interface(ifindex, address)
        if iface is None and not ifindex and address == ANY:
            hop = self.stack.routes.lookup(group)
            iface = hop.interface if hop is not None else None
        if iface is None:
            if leaving:
                raise OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address")
            raise OSError(errno.ENODEV, "No such device")
        return iface

    # --- ports ---------------------------------------------------------------------
    def bind(self, ep: UdpEndpoint, addr: Ipv4Addr, port: int) -> None:
        stack = self.stack
        if (
            addr != ANY
            and not stack.ip.is_local(addr)
            and not is_multicast_ipv4(addr)
            and not stack.ip.is_broadcast(addr)
        ):
            raise OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address")
        if not 0 <= port <= 0xFFFF:
            raise OSError(errno.EINVAL, "Invalid argument")
        if port == 0:
            port = self._ephemeral(ep, addr)
        elif self._conflicts(ep, addr, port):
            raise OSError(errno.EADDRINUSE, "Address already in use")
        self.stack.onload.bound(ep.owner, 17, addr, port, listen=False)  # EBUSY: filter table full
        ep.local = (addr, port)
        self._bound.setdefault(port, []).append(ep)

    def _conflicts(self, ep: UdpEndpoint, addr: Ipv4Addr, port: int) -> bool:
        for other in self._bound.get(port, ()):
            assert other.local is not None
            overlap = other.local[0] == addr or ANY in (other.local[0], addr)
            if overlap and not (ep.reuseaddr and other.reuseaddr):
                return True
        return False

    def _ephemeral(self, ep: UdpEndpoint, addr: Ipv4Addr) -> int:
        """RFC 6056 §3.3.1 (Algorithm 1): a random port in ip_local_port_range."""
        low, high = self.stack.profile.ip_local_port_range
        count = high - low + 1
        start = self.stack.rng.randrange(count)
        for i in range(count):
            port = low + (start + i) % count
            if not self._conflicts(ep, addr, port):
                return port
        raise PortsExhaustedError(errno.EAGAIN, "Resource temporarily unavailable")  # Linux: ports exhausted

    def rebind_address(self, ep: UdpEndpoint, addr: Ipv4Addr) -> None:
        assert ep.local is not None
        ep.local = (addr, ep.local[1])

    def unbind(self, ep: UdpEndpoint) -> None:
        if ep.local is not None:
            peers = self._bound.get(ep.local[1], [])
            if ep in peers:
                peers.remove(ep)
            if not peers:
                self._bound.pop(ep.local[1], None)

    # --- input ---------------------------------------------------------------------
    def input(
        self,
        ip: Ipv4Packet,
        iface: Interface,
        now: float,
        *,
        link_broadcast: bool,
        offload: RxOffload | None = None,
    ) -> None:
        counters = self.stack.counters
        try:
            d = UdpDatagram(ip.payload)
        except WireError:
            counters["udp_rx_malformed"] += 1
            return
        if (offload is None or not offload.csum_valid) and not d.checksum_ok(ip.src, ip.dst):
            counters["udp_rx_bad_checksum"] += 1
            return
        source = (ip.src, d.src_port)
        if is_multicast_ipv4(ip.dst):
            igmp = self.stack.igmp
            targets = [
                ep
                for ep in self._bound.get(d.dst_port, ())
                if self._matches(ep, ip.dst, source)
                and igmp.socket_accepts(ep.owner, ip.dst, ip.src, iface, ep.mc_all)
            ]
        elif link_broadcast or self.stack.ip.is_broadcast(ip.dst):
            targets = [ep for ep in self._bound.get(d.dst_port, ()) if self._matches(ep, ip.dst, source)]
        else:
            best = self._lookup(ip.dst, d.dst_port, source)
            targets = [best] if best is not None else []
        if not targets:
            counters["udp_rx_no_port"] += 1
            self.stack.icmp.send_error(DEST_UNREACHABLE, UNREACH_PORT, ip, now, link_broadcast=link_broadcast)
            return
        for ep in targets:
            if ep.deliver(d.payload, source):
                counters["udp_rx_delivered"] += 1
            else:
                counters["udp_rx_rcvbuf_full"] += 1

    @staticmethod
    def _matches(ep: UdpEndpoint, dst: Ipv4Addr, source: Address) -> bool:
        assert ep.local is not None
        if ep.local[0] not in (ANY, dst):
            return False
        return ep.remote is None or ep.remote == source

    def _lookup(self, dst: Ipv4Addr, port: int, source: Address) -> UdpEndpoint | None:
        """The most specific match: connected (score 2) beats bound address (1) beats wildcard."""
        best: UdpEndpoint | None = None
        best_score = -1
        for ep in self._bound.get(port, ()):
            if not self._matches(ep, dst, source):
                continue
            assert ep.local is not None
            score = (2 if ep.remote is not None else 0) + (1 if ep.local[0] == dst else 0)
            if score > best_score:
                best, best_score = ep, score
        return best

    def icmp_error(self, msg: IcmpMessage, quoted: Ipv4Packet, now: float) -> None:
        """RFC 1122 §4.1.3.3: pass ICMP errors to the application.  Linux reports them
        on connected sockets only (without IP_RECVERR), as SO_ERROR."""
        payload = quoted.payload
        if len(payload) < 4:
            return
        sport = int.from_bytes(payload[0:2], "big")
        dport = int.from_bytes(payload[2:4], "big")
        mapped = error_errno(msg.type, msg.code)
        if mapped is None:
            return
        for ep in self._bound.get(sport, ()):
            if ep.remote == (quoted.dst, dport) and ep.local is not None and ep.local[0] in (ANY, quoted.src):
                ep.error = mapped[0]
                ep.activity += 1
                self.stack.counters["udp_rx_icmp_error"] += 1
