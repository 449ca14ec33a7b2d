"""The RX fuzzer's world: a stack with live state, a corpus of real frames, and mutators.

:class:`RxWorld` builds, in virtual time, a stack under test (``dut``, 192.168.0.1 on
Ethernet) and a peer stack (192.168.0.2) on a :class:`~refstack.link.MemoryLink`, and
gives the dut everything a frame can reach:

- TCP connections established for real through ``refstack.socket`` (two accepted
  from the peer, one opened by the dut), with data both ways, some left unread and
  some in flight; listeners on 8080 (backlog 8) and 8081 (backlog 1);
- UDP sockets bound to 5353 (joined to 239.1.2.3 with IP_ADD_MEMBERSHIP), 7, and
  one joined to 239.9.9.9 from the peer only (IP_ADD_SOURCE_MEMBERSHIP);
- partial IPv4 fragment trains (fragments 0 and 2 of one datagram, fragment 1 of
  another) waiting in the kernel path's reassembly queues.

The corpus is every frame the peer sent the dut while all that was set up, plus
synthesized frames for the paths the handshakes do not take: UDP unicast, multicast
and broadcast, every fragment of the partial trains, IGMPv1/v2/v3 queries and
reports, ICMP errors quoting segments the dut sent on its connections, echo
requests, ARP.

:func:`mutate` turns a corpus frame into a hostile one.  Its choices come from a
:class:`Chooser`: a seeded ``random.Random`` (bursts), hypothesis draws (single
frames, so shrinking acts on the mutation itself) or atheris' FuzzedDataProvider.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from refstack import socket as rs
from refstack.clock import VirtualClock
from refstack.link import Capture, MemoryLink
from refstack.nic.offload import RxOffload
from refstack.runtime import Runtime, VirtualDriver
from refstack.simulation import Simulation
from refstack.stack import Stack
from refstack.tcp.endpoint import TcpEndpoint
from refstack.tcp.seq import MASK
from refstack.tcp.state import TcpState
from refstack.udp import UdpEndpoint
from refstack.wire.addresses import BROADCAST_MAC, ipv4_addr, mac, multicast_mac
from refstack.wire.arp import OP_REPLY, OP_REQUEST, build_arp
from refstack.wire.checksum import checksum, pseudo_header_sum
from refstack.wire.errors import WireError
from refstack.wire.ethernet import ETHERTYPE_ARP, ETHERTYPE_IPV4, build_ethernet
from refstack.wire.icmp import build_icmp, build_icmp_echo, quote_datagram
from refstack.wire.igmp import GroupRecord, build_igmp, build_igmp_v3_query, build_igmp_v3_report
from refstack.wire.ipv4 import (
    PROTO_ICMP,
    PROTO_IGMP,
    PROTO_TCP,
    PROTO_UDP,
    ROUTER_ALERT,
    Ipv4Packet,
    build_ipv4,
)
from refstack.wire.tcp import TcpSegment, build_tcp
from refstack.wire.udp import build_udp

from .invariants import frame_disposition

DUT_IP, PEER_IP = ipv4_addr("192.168.0.1"), ipv4_addr("192.168.0.2")
DUT_MAC, PEER_MAC = mac("02:00:00:00:00:01"), mac("02:00:00:00:00:02")
GROUP, SSM_GROUP = ipv4_addr("239.1.2.3"), ipv4_addr("239.9.9.9")
ALL_HOSTS = ipv4_addr("224.0.0.1")
ADDRESSES = [
    DUT_IP,
    PEER_IP,
    GROUP,
    SSM_GROUP,
    ALL_HOSTS,
    ipv4_addr("192.168.0.255"),
    ipv4_addr("255.255.255.255"),
    bytes(4),
    ipv4_addr("127.0.0.1"),
    ipv4_addr("240.0.0.1"),
    ipv4_addr("203.0.113.9"),
    ipv4_addr("192.168.0.77"),
]
MACS = [DUT_MAC, BROADCAST_MAC, multicast_mac(GROUP), multicast_mac(ALL_HOSTS), mac("02:00:00:00:00:99")]
LINK_DELAY = 0.001
T = TypeVar("T")


class Chooser(Protocol):
    """Where the mutators' choices come from (``random.Random`` has these methods)."""

    def randrange(self, start: int, stop: int | None = None) -> int: ...

    def getrandbits(self, k: int) -> int: ...


def pick(c: Chooser, items: Sequence[T]) -> T:
    return items[c.randrange(len(items))]


def chance(c: Chooser, percent: int) -> bool:
    return c.randrange(100) < percent


def randbytes(c: Chooser, n: int) -> bytes:
    return c.getrandbits(8 * n).to_bytes(n, "big") if n else b""


# =====================================================================================
# The world
# =====================================================================================
class RxWorld:
    """The dut, its peer, their sockets and the corpus (see the module docstring)."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.sim = Simulation(VirtualClock())
        self.dut = Stack(name="dut", seed=seed)
        self.dut.add_interface("eth0", DUT_IP, 24, mac=DUT_MAC)
        self.peer = Stack(name="peer", seed=seed + 1_000_003)
        self.peer.add_interface("eth0", PEER_IP, 24, mac=PEER_MAC)
        self.sim.add(self.dut, "dut")
        self.sim.add(self.peer, "peer")
        self.capture = Capture()
        self.link = MemoryLink(delay=LINK_DELAY, on_frame=self.capture)
        self.sim.connect("dut", "peer", self.link)
        driver = VirtualDriver(self.sim, horizon=600.0)
        self.rt = Runtime(self.dut, driver)
        self.peer_rt = Runtime(self.peer, driver)
        self.sockets: list[rs.socket] = []  # the dut's
        self.peer_sockets: list[rs.socket] = []
        self.udp: list[UdpEndpoint] = []
        self.frames_in = 0
        self._set_up()
        self.corpus: list[bytes] = [f.frame for f in self.capture.frames if f.side == "a"]
        self.sent: list[bytes] = [
            f.frame for f in self.capture.frames if f.side == "b" and f.frame[12:14] == b"\x08\x00"
        ]
        self.corpus += self._synthesized()

    # --- set-up -------------------------------------------------------------------------
    def _sock(self, rt: Runtime, kind: int) -> rs.socket:
        s = rs.socket(rs.AF_INET, kind, runtime=rt)
        (self.sockets if rt is self.rt else self.peer_sockets).append(s)
        return s

    def _set_up(self) -> None:
        listener = self._sock(self.rt, rs.SOCK_STREAM)
        listener.bind(("", 8080))
        listener.listen(8)
        small = self._sock(self.rt, rs.SOCK_STREAM)
        small.bind(("", 8081))
        small.listen(1)
        far = self._sock(self.peer_rt, rs.SOCK_STREAM)
        far.bind(("", 9090))
        far.listen(8)
        clients = []
        for _ in range(2):
            c = self._sock(self.peer_rt, rs.SOCK_STREAM)
            c.connect(("192.168.0.1", 8080))
            clients.append(c)
        accepted = [listener.accept()[0] for _ in clients]
        self.sockets += accepted
        active = self._sock(self.rt, rs.SOCK_STREAM)
        active.connect(("192.168.0.2", 9090))
        far_conn, _ = far.accept()
        self.peer_sockets.append(far_conn)
        for c in clients:
            c.sendall(bytes(range(256)) * 12)
        far_conn.sendall(b"x" * 2000)
        self.sim.run_for(0.5)
        accepted[0].recv(1000)  # some read, the rest left queued
        for s in (*accepted, active):
            s.setblocking(False)
            s.send(b"y" * 1500)
        self.sim.run_for(0.0005)  # half the link delay: the dut's data is in flight
        for port, group, source in ((5353, GROUP, None), (7, None, None), (5354, SSM_GROUP, PEER_IP)):
            u = self._sock(self.rt, rs.SOCK_DGRAM)
            u.bind(("", port))
            u.setblocking(False)
            if group is not None and source is None:
                u.setsockopt(rs.IPPROTO_IP, rs.IP_ADD_MEMBERSHIP, group + DUT_IP)
            elif group is not None and source is not None:
                u.setsockopt(rs.IPPROTO_IP, rs.IP_ADD_SOURCE_MEMBERSHIP, group + DUT_IP + source)
            self.udp.append(u._file.core)  # type: ignore[union-attr]
        self.sim.run_for(0.1)
        # partial fragment trains: fragments 0 and 2 of ident 0x4242, fragment 1 of 0x4343
        self.trains = [self._fragments(0x4242, 5353, 3000), self._fragments(0x4343, 7, 2000)]
        for i, frame in enumerate(self.trains[0]):
            if i != 1:
                self.inject(frame)
        self.inject(self.trains[1][1])

    def _fragments(self, ident: int, port: int, size: int) -> list[bytes]:
        udp = build_udp(PEER_IP, DUT_IP, 40000, port, bytes(size))
        out = []
        for offset in range(0, len(udp), 1480):
            piece = udp[offset : offset + 1480]
            more = offset + len(piece) < len(udp)
            ip = build_ipv4(
                PEER_IP, DUT_IP, PROTO_UDP, piece, ident=ident, more_fragments=more, fragment_offset=offset
            )
            out.append(eth(ip))
        return out

    def _synthesized(self) -> list[bytes]:
        out = [f for train in self.trains for f in train]
        for dst, port in ((DUT_IP, 5353), (DUT_IP, 7), (DUT_IP, 9), (GROUP, 5353), (SSM_GROUP, 5354)):
            out.append(
                eth(build_ipv4(PEER_IP, dst, PROTO_UDP, build_udp(PEER_IP, dst, 40000, port, b"hello")))
            )
        bcast = ipv4_addr("192.168.0.255")
        out.append(
            eth(
                build_ipv4(PEER_IP, bcast, PROTO_UDP, build_udp(PEER_IP, bcast, 1, 7, b"b")),
                dst=BROADCAST_MAC,
            )
        )
        for igmp in (
            build_igmp(0x11, bytes(4), max_resp_time=0),
            build_igmp(0x11, bytes(4), max_resp_time=100),
            build_igmp(0x11, GROUP, max_resp_time=10),
            build_igmp(0x16, GROUP),
            build_igmp(0x12, GROUP),
            build_igmp(0x17, GROUP),
            build_igmp_v3_query(),
            build_igmp_v3_query(GROUP, max_resp_code=20),
            build_igmp_v3_query(SSM_GROUP, sources=[PEER_IP, ipv4_addr("10.0.0.9")]),
            build_igmp_v3_report([GroupRecord(2, GROUP, ())]),
        ):
            dst = ALL_HOSTS if igmp[0] == 0x11 and igmp[4:8] == bytes(4) else GROUP
            ip = build_ipv4(PEER_IP, dst, PROTO_IGMP, igmp, ttl=1, tos=0xC0, options=(ROUTER_ALERT,))
            out.append(eth(ip, dst=multicast_mac(dst)))
        for frame in self.sent[-20:]:
            quoted = quote_datagram(frame[14:])
            for typ, code, rest in (
                (3, 4, b"\0\0\x02\x40"),
                (3, 3, bytes(4)),
                (3, 1, bytes(4)),
                (11, 0, bytes(4)),
            ):
                icmp = build_icmp(typ, code, rest, quoted)
                out.append(eth(build_ipv4(PEER_IP, DUT_IP, PROTO_ICMP, icmp)))
        out.append(eth(build_ipv4(PEER_IP, DUT_IP, PROTO_ICMP, build_icmp_echo(1, 1, b"ping"))))
        out.append(
            build_ethernet(
                BROADCAST_MAC,
                PEER_MAC,
                ETHERTYPE_ARP,
                build_arp(OP_REQUEST, PEER_MAC, PEER_IP, bytes(6), DUT_IP),
            )
        )
        out.append(
            build_ethernet(
                DUT_MAC, PEER_MAC, ETHERTYPE_ARP, build_arp(OP_REPLY, PEER_MAC, PEER_IP, DUT_MAC, DUT_IP)
            )
        )
        return out

    # --- driving ------------------------------------------------------------------------
    def inject(self, frame: bytes, offload: RxOffload | None = None) -> list[str]:
        """``frame`` arrives at the dut now (with what a device says of it, ``offload``);
        what the dut sends in reply goes on the wire.  Returns the broken disposition
        rules of :func:`frame_disposition` (``[]``: none)."""
        self.frames_in += 1
        counters, ring = self.dut.counters, self.dut.onload.counters
        before, drops = counters.mark(), ring.get("rx_nodesc_drops", 0)
        self.dut.receive(frame, self.sim.now(), offload=offload)
        broken = frame_disposition(before, counters, ring.get("rx_nodesc_drops", 0) - drops)
        self.sim.run_until(_never, 0.0)
        return broken

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` of virtual time pass: timers fire, the two stacks talk."""
        self.sim.run_for(seconds)

    def connections(self) -> list[TcpEndpoint]:
        return [ep for ep in self.dut.tcp.connections.values() if ep.state != TcpState.LISTEN]

    # --- application activity -----------------------------------------------------------
    def app_step(self, c: Chooser) -> None:
        """One application call on a dut socket: read, write, close, accept, shutdown,
        drain the UDP sockets, or a new connection from the peer."""
        s = pick(c, self.sockets)
        what = c.randrange(7)
        with contextlib.suppress(OSError, ValueError):
            if s.fileno() < 0:
                return
            s.setblocking(False)
            if what == 5:
                self.sockets.append(s.accept()[0])
            elif what == 6:
                s.shutdown(pick(c, (rs.SHUT_RD, rs.SHUT_WR, rs.SHUT_RDWR)))
            elif what == 0:
                s.recv(1 << 16)
            elif what == 1:
                s.send(bytes(c.randrange(1, 5000)))
            elif what == 2 and chance(c, 20):
                s.close()
            elif what == 3:
                for u in self.udp:
                    while u.rx:
                        u.recvfrom()
            else:
                n = self._sock(self.peer_rt, rs.SOCK_STREAM)
                n.setblocking(False)
                n.connect_ex(("192.168.0.1", pick(c, (8080, 8081))))
        self.sim.run_until(_never, 0.0)


def _never() -> bool:
    return False


def eth(ip: bytes, *, dst: bytes = DUT_MAC, src: bytes = PEER_MAC) -> bytes:
    return build_ethernet(dst, src, ETHERTYPE_IPV4, ip)


# =====================================================================================
# Checksums, for mutations that should get past the checksum checks
# =====================================================================================
def fix_checksums(frame: bytes) -> bytes:
    """Recompute the IPv4 header checksum and, for an unfragmented TCP/UDP/ICMP/IGMP
    datagram, the transport checksum, as far as the bytes allow (best effort)."""
    if len(frame) < 34 or frame[12:14] != b"\x08\x00":
        return frame
    b = bytearray(frame)
    ihl = (b[14] & 0xF) * 4
    if ihl < 20 or 14 + ihl > len(b):
        return frame
    b[24:26] = b"\0\0"
    b[24:26] = checksum(bytes(b[14 : 14 + ihl])).to_bytes(2, "big")
    total = int.from_bytes(b[16:18], "big")
    end = min(len(b), 14 + total) if total >= ihl else len(b)
    if int.from_bytes(b[20:22], "big") & 0x3FFF:
        return bytes(b)  # a fragment: the transport checksum covers the whole datagram
    start = 14 + ihl
    proto, seg = b[23], b[start:end]
    src, dst = bytes(b[26:30]), bytes(b[30:34])
    offsets = {PROTO_TCP: 16, PROTO_UDP: 6, PROTO_ICMP: 2, PROTO_IGMP: 2}
    off = offsets.get(proto)
    if off is None or len(seg) < off + 2:
        return bytes(b)
    seg[off : off + 2] = b"\0\0"
    if proto in (PROTO_TCP, PROTO_UDP):
        value = checksum(pseudo_header_sum(src, dst, proto, len(seg)), bytes(seg))
        if proto == PROTO_UDP and value == 0:
            value = 0xFFFF
    else:
        value = checksum(bytes(seg))
    b[start + off : start + off + 2] = value.to_bytes(2, "big")
    return bytes(b)


# =====================================================================================
# Mutators
# =====================================================================================
def _bit_flips(frame: bytes, c: Chooser, world: RxWorld) -> bytes:
    b = bytearray(frame)
    lo = 14 if chance(c, 80) and len(b) > 14 else 0
    for _ in range(1 + c.randrange(8)):
        i = c.randrange(lo, len(b)) if len(b) > lo else 0
        if b:
            b[i] ^= 1 << c.randrange(8)
    return bytes(b)


def _flips_fixed(frame: bytes, c: Chooser, world: RxWorld) -> bytes:
    return fix_checksums(_bit_flips(frame, c, world))


def _byte_values(frame: bytes, c: Chooser, world: RxWorld) -> bytes:
    """Interesting values (0, 0xff, 0x80, 0x7f...) written at random offsets, then checksums fixed."""
    b = bytearray(frame)
    for _ in range(1 + c.randrange(4)):
        if len(b) <= 14:
            break
        i = c.randrange(14, len(b))
        b[i] = pick(c, (0, 0xFF, 0x80, 0x7F, 1, 0x40, 0x10, 0x0F, 0x45, 0x5F))
    return fix_checksums(bytes(b))


def _truncate_extend(frame: bytes, c: Chooser, world: RxWorld) -> bytes:
    what = c.randrange(4)
    if what == 0:
        return frame[: c.randrange(len(frame) + 1)]
    if what == 1:
        return frame + randbytes(c, c.randrange(1, 64))
    if what == 2:  # the IPv4 Total Length disagrees with the bytes
        b = bytearray(frame)
        if len(b) >= 18:
            b[16:18] = pick(c, (0, 20, len(b) - 14 + 1, 0xFFFF, c.randrange(0x10000))).to_bytes(2, "big")
        return fix_checksums(bytes(b))
    return fix_checksums(frame[: max(34, c.randrange(len(frame) + 1))])


def _ip_fields(frame: bytes, c: Chooser, world: RxWorld) -> bytes:
    """Rewrite IPv4 header fields (addresses, protocol, TTL, ECN, options, flags)."""
    try:
        ip = Ipv4Packet(frame[14:])
    except WireError:
        return _bit_flips(frame, c, world)
    src, dst, proto, ttl, tos = ip.src, ip.dst, ip.protocol, ip.ttl, ip.tos
    options = ip.header[20:]
    for _ in range(1 + c.randrange(3)):
        field = c.randrange(7)
        if field == 0:
            src = pick(c, ADDRESSES)
        elif field == 1:
            dst = pick(c, ADDRESSES)
        elif field == 2:
            proto = pick(c, (PROTO_TCP, PROTO_UDP, PROTO_ICMP, PROTO_IGMP, 0, 41, 255))
        elif field == 3:
            ttl = pick(c, (0, 1, 255))
        elif field == 4:
            tos = c.randrange(256)
        elif field == 5:
            raw = pick(
                c,
                (
                    b"\x94\x04\0\0",  # router alert
                    b"\x07\x07\x04\0\0\0\0\0",  # record route
                    b"\x83\x03\x04\0",  # LSRR, bad pointer
                    b"\x44\x04\x05\0",  # timestamp
                    b"\x01\x01\x01\x00",
                    b"\x07\x02",
                    b"\x07\xff",
                    randbytes(c, 4 * c.randrange(1, 11)),
                ),
            )
            options = raw + bytes(-len(raw) % 4)
        else:
            options = b""
    ihl = (20 + len(options)) // 4
    if ihl > 15:
        options, ihl = options[:40], 15
    flags_frag = int.from_bytes(ip.header[6:8], "big")
    header = bytearray(
        struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, tos, 0, ip.ident, flags_frag, ttl, proto, 0, src, dst)
    )
    header += options
    total = len(header) + len(ip.payload)
    header[2:4] = min(total, 0xFFFF).to_bytes(2, "big")
    dst_mac = (
        multicast_mac(dst) if dst[0] >= 224 and dst[0] < 240 else pick(c, MACS) if chance(c, 10) else DUT_MAC
    )
    return fix_checksums(build_ethernet(dst_mac, PEER_MAC, ETHERTYPE_IPV4, bytes(header) + ip.payload))


def _fragment_fields(frame: bytes, c: Chooser, world: RxWorld) -> bytes:
    """IPv4 fragment fields: MF, offset (aligned or not), Identification of a pending
    train, DF, payload sliced: overlaps, tiny fragments, trains past 65535 bytes."""
    try:
        ip = Ipv4Packet(frame[14:])
    except WireError:
        return _bit_flips(frame, c, world)
    ident = pick(c, (ip.ident, 0x4242, 0x4343, c.randrange(0x10000)))
    offset8 = pick(c, (0, 1, 2, 185, 370, 8189, 8191, c.randrange(8192)))
    payload = ip.payload
    what = c.randrange(4)
    if what == 0:
        payload = payload[: c.randrange(len(payload) + 1)]
    elif what == 1:
        payload = payload[: pick(c, (1, 7, 8, 9, 16))]
    elif what == 2:
        payload = payload + bytes(c.randrange(0, 3000))
    flags = (
        (0x2000 if chance(c, 60) else 0) | (0x4000 if chance(c, 10) else 0) | (0x8000 if chance(c, 3) else 0)
    )
    header = bytearray(ip.header)
    header[4:6] = ident.to_bytes(2, "big")
    header[6:8] = (flags | offset8).to_bytes(2, "big")
    total = len(header) + len(payload)
    if total > 0xFFFF:
        payload = payload[: 0xFFFF - len(header)]
        total = 0xFFFF
    header[2:4] = total.to_bytes(2, "big")
    if chance(c, 20):
        header[1] = (header[1] & 0xFC) | c.randrange(4)  # ECN codepoints across a train
    return fix_checksums(frame[:14] + bytes(header) + payload)


_TCP_OPTION_BYTES = (
    b"\x02\x04\x05\xb4",  # MSS 1460
    b"\x02\x04\x00\x00",  # MSS 0
    b"\x02\x04\xff\xff",
    b"\x02\x03\x05",  # MSS with a bad length
    b"\x03\x03\x0e",  # WS 14
    b"\x03\x03\xff",  # WS 255
    b"\x04\x02",  # SACK permitted
    b"\x04\x03",
    b"\x01",
    b"\x00",
    b"\x08\x0a" + bytes(8),
    b"\x08\x0a\xff\xff\xff\xff\0\0\0\0",
    b"\x05\x02",
    b"\x05\x0a",
    b"\x05\x06\0\0\0\0",
    b"\xfd\x02",
    b"\x22\x00",
    b"\x01\xff",
)


def _tcp_fields(frame: bytes, c: Chooser, world: RxWorld) -> bytes:
    """Rewrite a TCP segment field-aware: flags, SEQ/ACK near the connection's windows
    or anywhere, window, urgent pointer, options (valid and invalid), payload; the
    checksums are recomputed, so the segment reaches the state machine."""
    try:
        ip = Ipv4Packet(frame[14:])
        seg = TcpSegment(ip.payload)
    except WireError:
        return _flips_fixed(frame, c, world)
    sport, dport = seg.src_port, seg.dst_port
    conns = world.connections()
    seq, ack = seg.seq, seg.ack
    if conns and chance(c, 80):
        ep = pick(c, conns)
        if ep.remote is not None and ep.local is not None:
            sport, dport = ep.remote[1], ep.local[1]
            seq = (
                ep.rcv_nxt + pick(c, (0, 0, 1, -1, 1000, -1000, 1 << 16, 1 << 20, 1 << 31, c.getrandbits(32)))
            ) & MASK
            ack = (
                ep.snd_una + pick(c, (0, 0, 1, -1, 1500, -1 - (1 << 16), 1 << 31, c.getrandbits(32)))
            ) & MASK
            if chance(c, 30):
                ack = (ep.snd_nxt + pick(c, (0, 1, -1))) & MASK
    elif chance(c, 30):
        dport = pick(c, (8080, 8081, 9, 5353, c.randrange(0x10000)))
        sport = c.randrange(0x10000)
    flags = seg.flags
    if chance(c, 70):
        flags = pick(
            c, (0x02, 0x10, 0x18, 0x11, 0x04, 0x14, 0x12, 0x03, 0x06, 0x01, 0x00, 0x30, 0x29, 0xFFF, 0x0C2)
        )
        if chance(c, 10):
            flags = c.randrange(0x1000)
    window = pick(c, (seg.window, 0, 1, 0xFFFF, c.randrange(0x10000)))
    payload = seg.payload
    if chance(c, 40):
        payload = pick(c, (b"", b"z", bytes(c.randrange(1, 1461)), payload + payload))
    opts = b"".join(pick(c, _TCP_OPTION_BYTES) for _ in range(c.randrange(5)))
    if chance(c, 30):
        opts = seg_options_raw(seg)
    if chance(c, 10):  # SACK blocks around SND.UNA
        base = (conns[0].snd_una if conns else 0) & MASK
        opts = b"\x01\x01\x05\x12" + struct.pack(
            "!IIII", base, (base + 1000) & MASK, c.getrandbits(32), c.getrandbits(32)
        )
    opts = (opts + bytes(-len(opts) % 4))[:40]
    urg = pick(c, (0, 0, 1, 0xFFFF))
    try:
        tcp = build_tcp(
            ip.src, ip.dst, sport, dport, seq=seq, ack=ack, flags=flags, window=window,
            urgent_pointer=urg, options_bytes=opts, payload=payload,
        )  # fmt: skip
        out = build_ipv4(ip.src, ip.dst, PROTO_TCP, tcp, ttl=ip.ttl, ident=ip.ident, dont_fragment=True)
    except WireError:
        return frame
    return frame[:14] + out


def _tcp_plausible(frame: bytes, c: Chooser, world: RxWorld) -> bytes:
    """A segment a confused or malicious peer could send on a live connection: ACKs
    inside [SND.UNA, SND.MAX] with SACK blocks over the data in flight (duplicate ACKs,
    partial ACKs, reneging), and data at or beyond RCV.NXT (holes, overlaps, FIN),
    with a timestamp echoing the connection's clock; checksums correct."""
    conns = [ep for ep in world.connections() if ep.local is not None and ep.remote is not None]
    if not conns:
        return _tcp_fields(frame, c, world)
    ep = pick(c, conns)
    assert ep.local is not None and ep.remote is not None
    una, top = ep.snd_una, max(ep.snd_max, ep.snd_una + 1)
    ack = una + c.randrange(top - una + 1) if chance(c, 60) else una
    seq = ep.rcv_nxt + pick(c, (0, 0, 0, 1, 500, 1448, 3000, -1, -100))
    flags = pick(c, (0x10, 0x10, 0x18, 0x11, 0x19, 0x10))
    payload = bytes(pick(c, (0, 0, 1, 100, 1448, c.randrange(3000))))
    opts = b""
    if ep.ts_ok:
        tsval = (ep.ts_recent + pick(c, (0, 1, 1000, -1, 1 << 31))) & MASK
        opts += b"\x01\x01\x08\x0a" + struct.pack("!II", tsval, c.getrandbits(32) if chance(c, 10) else 0)
    if ep.sack_ok and chance(c, 60):
        blocks = []
        for _ in range(c.randrange(1, 4 if ep.ts_ok else 5)):
            a = una + c.randrange(top - una + 1)
            b = a + c.randrange(1, 3000)
            blocks.append(((a & MASK), (b & MASK)))
        opts += (
            b"\x01\x01\x05" + bytes([2 + 8 * len(blocks)]) + b"".join(struct.pack("!II", *x) for x in blocks)
        )
    opts = (opts + bytes(-len(opts) % 4))[:40]
    window = pick(c, (0xFFFF, 0xFFFF, 0, 1, 100, c.randrange(0x10000)))
    try:
        tcp = build_tcp(
            ep.remote[0], ep.local[0], ep.remote[1], ep.local[1], seq=seq & MASK, ack=ack & MASK,
            flags=flags, window=window, options_bytes=opts, payload=payload,
        )  # fmt: skip
        return eth(build_ipv4(ep.remote[0], ep.local[0], PROTO_TCP, tcp, dont_fragment=True))
    except WireError:
        return frame


def seg_options_raw(seg: TcpSegment) -> bytes:
    b = bytes(seg)
    return b[20 : (b[12] >> 4) * 4]


def _icmp_error(frame: bytes, c: Chooser, world: RxWorld) -> bytes:
    """An ICMP error quoting a segment the dut sent on a live connection, its quoted
    sequence number in or out of the window, any type and code, any next-hop MTU."""
    if not world.sent:
        return frame
    sent = bytearray(pick(c, world.sent)[14:])
    conns = world.connections()
    try:
        ip = Ipv4Packet(bytes(sent))
    except WireError:
        return frame
    if ip.protocol == PROTO_TCP and conns and len(sent) >= ip.header_length + 8:
        ep = pick(c, conns)
        if ep.local is not None and ep.remote is not None:
            h = ip.header_length
            sent[h : h + 4] = struct.pack("!HH", ep.local[1], ep.remote[1])
            seq = (ep.snd_una + pick(c, (0, 1, -1, 100, 1 << 20, c.getrandbits(32)))) & MASK
            sent[h + 4 : h + 8] = seq.to_bytes(4, "big")
    quoted = quote_datagram(bytes(sent))
    if chance(c, 20):
        quoted = quoted[: c.randrange(len(quoted) + 1)]
    typ = pick(c, (3, 3, 3, 4, 5, 11, 12, c.randrange(256)))
    code = pick(c, (0, 1, 2, 3, 4, 13, c.randrange(256)))
    rest = pick(c, (bytes(4), b"\0\0\x02\x40", b"\0\0\0\x44", b"\0\0\xff\xff", randbytes(c, 4), b"\0\0\0\0"))
    try:
        icmp = build_icmp(typ, code, rest, quoted)
        src = pick(c, (PEER_IP, PEER_IP, ipv4_addr("203.0.113.9"), ipv4_addr("192.168.0.254")))
        return eth(build_ipv4(src, DUT_IP, PROTO_ICMP, icmp))
    except WireError:
        return frame


def _igmp(frame: bytes, c: Chooser, world: RxWorld) -> bytes:
    """IGMP messages of every version to joined and unjoined groups, odd lengths."""
    group = pick(c, (GROUP, SSM_GROUP, ALL_HOSTS, bytes(4), ipv4_addr("239.0.0.9"), PEER_IP))
    what = c.randrange(5)
    try:
        if what == 0:
            msg = build_igmp(
                pick(c, (0x11, 0x12, 0x16, 0x17, 0x22, c.randrange(256))),
                group,
                max_resp_time=c.randrange(256),
            )
        elif what == 1:
            n = pick(c, (0, 1, 2, 20))
            msg = build_igmp_v3_query(
                group,
                max_resp_code=c.randrange(256),
                s_flag=chance(c, 30),
                qrv=c.randrange(8),
                qqic=c.randrange(256),
                sources=[pick(c, ADDRESSES) for _ in range(n)],
            )
        elif what == 2:
            records = [
                GroupRecord(
                    c.randrange(1, 7),
                    pick(c, (GROUP, SSM_GROUP)),
                    tuple(pick(c, ADDRESSES) for _ in range(c.randrange(3))),
                )
                for _ in range(c.randrange(1, 4))
            ]
            msg = build_igmp_v3_report(records)
        elif what == 3:
            msg = build_igmp_v3_query(group)[: pick(c, (8, 9, 11, 12, 13))]
        else:
            msg = randbytes(c, c.randrange(0, 40))
    except WireError:
        return frame
    if chance(c, 70) and len(msg) >= 4:
        m = bytearray(msg)
        m[2:4] = b"\0\0"
        m[2:4] = checksum(bytes(m)).to_bytes(2, "big")
        msg = bytes(m)
    dst = pick(c, (group if group[0] >= 224 else ALL_HOSTS, ALL_HOSTS, DUT_IP, GROUP))
    opts = (ROUTER_ALERT,) if chance(c, 80) else ()
    ip = build_ipv4(PEER_IP, dst, PROTO_IGMP, msg, ttl=pick(c, (1, 1, 2)), tos=0xC0, options=opts)
    return eth(ip, dst=multicast_mac(dst) if dst[0] >= 224 else DUT_MAC)


def _ethernet(frame: bytes, c: Chooser, world: RxWorld) -> bytes:
    """Link-level: destination MAC, EtherType (incl. 802.1Q tags and lengths), ARP fields."""
    b = bytearray(frame)
    what = c.randrange(4)
    if what == 0 and len(b) >= 6:
        b[0:6] = pick(c, MACS)
    elif what == 1 and len(b) >= 14:
        b[12:14] = pick(c, (b"\x81\x00", b"\x08\x06", b"\x86\xdd", b"\x05\xdc", b"\x00\x2e", randbytes(c, 2)))
    elif what == 2 and len(b) >= 14:
        b[12:12] = b"\x81\x00" + randbytes(c, 2)  # an 802.1Q tag
    else:
        arp = bytearray(
            build_arp(pick(c, (1, 2, 3)), PEER_MAC, pick(c, ADDRESSES), bytes(6), pick(c, ADDRESSES))
        )
        for _ in range(c.randrange(3)):
            arp[c.randrange(len(arp))] = c.randrange(256)
        return build_ethernet(
            pick(c, (BROADCAST_MAC, DUT_MAC)), PEER_MAC, ETHERTYPE_ARP, bytes(arp[: c.randrange(8, 29)])
        )
    return bytes(b)


def _splice(frame: bytes, c: Chooser, world: RxWorld) -> bytes:
    """Headers of one frame, payload of another (cut at a random point)."""
    other = pick(c, world.corpus)
    cut = c.randrange(min(len(frame), 80) + 1)
    return fix_checksums(frame[:cut] + other[cut:])


def _random_frame(frame: bytes, c: Chooser, world: RxWorld) -> bytes:
    """Random bytes behind a plausible Ethernet + IPv4 header start."""
    return fix_checksums(frame[:14] + b"\x45" + randbytes(c, c.randrange(0, 120)))


Mutator = Callable[[bytes, Chooser, RxWorld], bytes]
MUTATORS: tuple[Mutator, ...] = (
    _bit_flips,
    _flips_fixed,
    _byte_values,
    _truncate_extend,
    _ip_fields,
    _fragment_fields,
    _tcp_fields,
    _tcp_fields,
    _tcp_plausible,
    _tcp_plausible,
    _icmp_error,
    _igmp,
    _ethernet,
    _splice,
    _random_frame,
)


def mutate(world: RxWorld, c: Chooser) -> bytes:
    """One hostile frame: a corpus frame through one to three mutators."""
    frame = pick(c, world.corpus)
    for _ in range(1 + (c.randrange(4) == 0) + (c.randrange(8) == 0)):
        frame = pick(c, MUTATORS)(frame, c, world)
    return frame


TIME_STEPS = (0.0, 0.001, 0.004, 0.04, 0.2, 0.5, 1.0, 3.0, 31.0, 130.0)
"""Virtual time jumps: delayed ACK, RTO, TIME-WAIT, fragment and IGMP timeouts."""


__all__ = ["MUTATORS", "TIME_STEPS", "Chooser", "RxWorld", "fix_checksums", "mutate"]
