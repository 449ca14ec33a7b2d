"""A scripted wire for inject/expect tests of the network layer (IP, ICMP, UDP, ARP).

The stack under test is 192.168.0.1/24 (packetdrill's local address) on one link:
an IP-only link (``Wire()``, datagrams in and out bare) or an Ethernet one
(``Wire(ethernet=True)``, frames in and out, ARP on).  Peers are a neighbour on
the link (192.168.0.2) and a remote host beyond a router (192.0.2.1; on the IP-only
link its /24 is routed straight out of ``tun0``, on Ethernet via the router
192.168.0.254).

Time is explicit: ``at(t)`` runs the stack's timers up to ``t`` and collects what
it sends, ``inject`` hands a frame to the stack at the current time, ``expect``
pops the next thing sent and ``expect_nothing`` checks silence.  Nothing sleeps.
"""

from __future__ import annotations

from collections import deque

from refstack.profile import Profile
from refstack.stack import Stack
from refstack.udp import UdpEndpoint
from refstack.wire.addresses import ipv4_addr, mac
from refstack.wire.checksum import checksum
from refstack.wire.ethernet import ETHERTYPE_IPV4, EthernetFrame, build_ethernet
from refstack.wire.icmp import IcmpMessage
from refstack.wire.ipv4 import PROTO_UDP, Ipv4Packet, build_ipv4
from refstack.wire.udp import UdpDatagram, build_udp

LOCAL = ipv4_addr("192.168.0.1")
NEIGHBOUR = ipv4_addr("192.168.0.2")
ROUTER = ipv4_addr("192.168.0.254")
SUBNET_BROADCAST = ipv4_addr("192.168.0.255")
LIMITED_BROADCAST = ipv4_addr("255.255.255.255")
REMOTE = ipv4_addr("192.0.2.1")
REMOTE2 = ipv4_addr("192.0.2.2")
ANY = bytes(4)

LOCAL_MAC = mac("02:00:00:00:00:01")
NEIGHBOUR_MAC = mac("02:00:00:00:00:02")
ROUTER_MAC = mac("02:00:00:00:00:fe")
OTHER_MAC = mac("02:00:00:00:00:99")


class Wire:
    """One stack and the far end of its link."""

    def __init__(
        self,
        profile: Profile | None = None,
        *,
        ethernet: bool = False,
        mtu: int = 1500,
        seed: int = 7,
    ) -> None:
        self.stack = Stack(profile, seed=seed)
        self.ethernet = ethernet
        self.name = "eth0" if ethernet else "tun0"
        self.stack.add_interface(self.name, LOCAL, 24, mtu=mtu, mac=LOCAL_MAC if ethernet else None)
        if ethernet:
            self.stack.add_route("192.0.2.0", 24, self.name, gateway=ROUTER)
        else:
            self.stack.add_route("192.0.2.0", 24, self.name)
        self.now = 0.0
        self.out: deque[tuple[float, bytes]] = deque()

    # --- time ----------------------------------------------------------------------
    def at(self, t: float) -> None:
        """Advance to ``t``, running every timer due on the way and collecting output."""
        assert t >= self.now, (t, self.now)
        while True:
            deadline = self.stack.next_deadline()
            if deadline is None or deadline > t:
                break
            self.now = max(self.now, deadline)
            self.out.extend((self.now, f) for f in self.stack.poll(self.now))
        self.now = t
        self.out.extend((t, f) for f in self.stack.poll(t))

    # --- inject --------------------------------------------------------------------
    def inject(self, frame: bytes) -> None:
        """A raw frame (a datagram on an IP-only link) arrives now."""
        self.stack.receive(frame, self.now)
        self.at(self.now)

    def inject_ip(self, datagram: bytes, *, dst_mac: bytes = LOCAL_MAC, src_mac: bytes = ROUTER_MAC) -> None:
        """An IPv4 datagram arrives now, framed for an Ethernet link if need be."""
        if self.ethernet:
            datagram = build_ethernet(dst_mac, src_mac, ETHERTYPE_IPV4, datagram)
        self.inject(datagram)

    # --- expect --------------------------------------------------------------------
    def expect(self) -> bytes:
        """The next frame (datagram on an IP-only link) the stack sent."""
        assert self.out, f"expected a frame at {self.now}, got nothing"
        return self.out.popleft()[1]

    def expect_at(self, t: float) -> bytes:
        assert self.out, f"expected a frame at {t}, got nothing"
        when, frame = self.out.popleft()
        assert abs(when - t) < 1e-9, f"sent at {when}, expected at {t}"
        return frame

    def expect_ip(self, expected: bytes | None = None) -> Ipv4Packet:
        """The next datagram sent; with ``expected``, it must equal it byte for byte
        except the Identification, which is the stack's to choose (RFC 6864)."""
        frame = self.expect()
        if self.ethernet:
            eth = EthernetFrame(frame)
            assert eth.ethertype == ETHERTYPE_IPV4, eth
            frame = eth.payload
        ip = Ipv4Packet(frame)
        assert ip.checksum_ok(), ip
        if expected is not None:
            want = with_ident(expected, ip.ident)
            assert bytes(ip) == want, (
                f"\n got {ip!r} {bytes(ip).hex()}\nwant {Ipv4Packet(want)!r} {want.hex()}"
            )
        return ip

    def expect_nothing(self, until: float | None = None) -> None:
        if until is not None:
            self.at(until)
        assert not self.out, f"expected silence, got {[f.hex() for _, f in self.out]}"

    # --- sockets -------------------------------------------------------------------
    def udp(self, addr: bytes = ANY, port: int = 7, **options: object) -> UdpEndpoint:
        """A bound UDP endpoint; ``options`` set attributes (reuseaddr, broadcast...) first."""
        ep = self.stack.udp.endpoint()
        for name, value in options.items():
            setattr(ep, name, value)
        ep.bind(addr, port)
        return ep


# --- builders -------------------------------------------------------------------------
def udp_ip(
    src: bytes,
    dst: bytes,
    sport: int,
    dport: int,
    data: bytes = b"",
    **ip_fields: object,
) -> bytes:
    """A UDP datagram in IPv4 (checksummed); ``ip_fields`` go to :func:`build_ipv4`."""
    return build_ipv4(src, dst, PROTO_UDP, build_udp(src, dst, sport, dport, data), **ip_fields)  # type: ignore[arg-type]


def with_ident(datagram: bytes, ident: int) -> bytes:
    """``datagram`` with its Identification replaced and the header checksum redone."""
    hlen = (datagram[0] & 0x0F) * 4
    header = bytearray(datagram[:hlen])
    header[4:6] = ident.to_bytes(2, "big")
    header[10:12] = b"\0\0"
    header[10:12] = checksum(header).to_bytes(2, "big")
    return bytes(header) + datagram[hlen:]


def with_checksum(datagram: bytes, value: int) -> bytes:
    """``datagram`` with its header checksum field set to ``value`` (to break it)."""
    return datagram[:10] + value.to_bytes(2, "big") + datagram[12:]


def icmp_of(ip: Ipv4Packet) -> IcmpMessage:
    msg = IcmpMessage(ip.payload)
    assert msg.checksum_ok(), msg
    return msg


def udp_of(ip: Ipv4Packet) -> UdpDatagram:
    d = UdpDatagram(ip.payload)
    assert d.checksum_ok(ip.src, ip.dst), d
    return d
