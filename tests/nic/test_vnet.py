"""refstack.nic.vnet (the virtio-net header, virtio spec §5.1.6) and an offloaded TAP link.

The codec: exact bytes for known headers, errors that name the field, a hypothesis
round trip, and the translation to and from :mod:`refstack.nic.offload`.

The device (root and /dev/net/tun; skips otherwise): a :class:`refstack.tuntap.TapLink`
opened with ``offload=True`` in a private network namespace, driven frame by frame (no
stack): the kernel hands over a UDP datagram with a partial checksum and a TCP
super-segment with ``gso_size``; it accepts a UDP datagram and a TCP super-segment
written behind NEEDS_CSUM (and TCPV4 GSO), and drops the same datagram written as a
complete frame (its checksum field holds only the pseudo-header sum).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import select
import socket
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance import netns
from refstack.nic.offload import RxOffload, TxOffloadFrame
from refstack.nic.vnet import (
    VIRTIO_NET_HDR_F_DATA_VALID,
    VIRTIO_NET_HDR_F_NEEDS_CSUM,
    VIRTIO_NET_HDR_GSO_ECN,
    VIRTIO_NET_HDR_GSO_NONE,
    VIRTIO_NET_HDR_GSO_TCPV4,
    VIRTIO_NET_HDR_GSO_TCPV6,
    VIRTIO_NET_HDR_GSO_UDP,
    VIRTIO_NET_HDR_GSO_UDP_L4,
    VNET_HDR_LEN,
    VnetHeader,
)
from refstack.tuntap import READ_SIZE, DeviceLink, TapLink
from refstack.wire import (
    ETHERTYPE_ARP,
    ETHERTYPE_IPV4,
    OP_REPLY,
    OP_REQUEST,
    ArpPacket,
    EthernetFrame,
    Ipv4Packet,
    build_arp,
    build_ethernet,
    build_ipv4,
    ipv4_addr,
    mac,
)
from refstack.wire.checksum import pseudo_header_sum
from refstack.wire.ipv4 import PROTO_TCP, PROTO_UDP
from refstack.wire.tcp import ACK, PSH, SYN, TcpSegment, build_tcp
from refstack.wire.tcp_options import Mss
from refstack.wire.udp import build_udp

# --- exact bytes -------------------------------------------------------------------------------
KNOWN = [
    (VnetHeader(), "00" * 10),
    # a TCP/IPv4 super-segment on Ethernet: NEEDS_CSUM, TCPV4, hdr_len 66, gso_size 1448,
    # csum_start 34 (14 + 20), csum_offset 16: little-endian 16-bit fields
    (VnetHeader(1, 1, 66, 1448, 34, 16), "01 01 4200 a805 2200 1000"),
    # a UDP datagram with only its pseudo-header sum on a TUN device: csum_offset 6
    (VnetHeader(VIRTIO_NET_HDR_F_NEEDS_CSUM, csum_start=20, csum_offset=6), "01 00 0000 0000 1400 0600"),
    (VnetHeader(VIRTIO_NET_HDR_F_DATA_VALID), "02 00 0000 0000 0000 0000"),
    (
        VnetHeader(1, VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN, 54, 1460, 34, 16),
        "01 81 3600 b405 2200 1000",
    ),
    (VnetHeader(0, 0, 0xFFFF, 0, 0xFFFF, 0xFFFF), "00 00 ffff 0000 ffff ffff"),
]


@pytest.mark.parametrize(("header", "wire"), KNOWN)
def test_known_headers_encode_and_parse_to_exact_bytes(header: VnetHeader, wire: str) -> None:
    raw = bytes.fromhex(wire.replace(" ", ""))
    assert len(raw) == VNET_HDR_LEN
    assert header.encode() == raw
    assert VnetHeader.parse(raw + b"frame") == (header, b"frame")


def test_the_zero_header_is_shared_and_leaves_an_empty_frame() -> None:
    hdr, frame = VnetHeader.parse(bytes(VNET_HDR_LEN))
    assert hdr is VnetHeader.ZERO and frame == b""
    assert VnetHeader.ZERO.gso_name == "NONE"


# --- errors name the field -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"", "flags"),
        (b"\x01", "gso_type"),
        (b"\x01\x01\x36", "hdr_len"),
        (b"\x01\x01\x36\x00", "gso_size"),
        (b"\x01\x01\x36\x00\xa8\x05\x22", "csum_start"),
        (b"\x01\x01\x36\x00\xa8\x05\x22\x00\x10", "csum_offset"),
        (b"\x04" + bytes(9), "flags"),  # RSC_INFO: never from a TUN/TAP device
        (b"\x80" + bytes(9), "flags"),
        (b"\x00\x02" + bytes(8), "gso_type"),  # 2 is no GSO type
        (b"\x00\x06" + bytes(8), "gso_type"),
        (b"\x00\x40" + bytes(8), "gso_type"),
        (b"\x01\x01" + bytes(8), "gso_size"),  # a GSO packet needs gso_size
    ],
)
def test_parse_rejects_naming_the_field(raw: bytes, field: str) -> None:
    with pytest.raises(ValueError, match=rf"virtio_net_hdr.*\b{field}\b"):
        VnetHeader.parse(raw)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"flags": -1}, "flags"),
        ({"flags": 0x100}, "flags"),
        ({"gso_type": 0x180}, "gso_type"),
        ({"hdr_len": 0x10000}, "hdr_len"),
        ({"gso_type": 1, "gso_size": 0x10000}, "gso_size"),
        ({"csum_start": -1}, "csum_start"),
        ({"csum_offset": 0x10000}, "csum_offset"),
    ],
)
def test_construction_rejects_naming_the_field(kwargs: dict[str, int], field: str) -> None:
    with pytest.raises(ValueError, match=rf"virtio_net_hdr {field}\b"):
        VnetHeader(**kwargs)


# --- round trip ------------------------------------------------------------------------------------
u16 = st.integers(0, 0xFFFF)
headers = st.builds(
    VnetHeader,
    flags=st.sampled_from([0, 1, 2, 3]),
    gso_type=st.just(0),
    hdr_len=u16,
    gso_size=u16,
    csum_start=u16,
    csum_offset=u16,
) | st.builds(
    VnetHeader,
    flags=st.sampled_from([0, 1, 2, 3]),
    gso_type=st.sampled_from([1, 3, 4, 5]).flatmap(lambda t: st.sampled_from([t, t | 0x80])),
    hdr_len=u16,
    gso_size=st.integers(1, 0xFFFF),
    csum_start=u16,
    csum_offset=u16,
)


@given(headers, st.binary(max_size=64))
def test_round_trip(header: VnetHeader, frame: bytes) -> None:
    raw = header.encode()
    assert len(raw) == VNET_HDR_LEN
    assert VnetHeader.parse(raw + frame) == (header, frame)


@given(st.binary(min_size=VNET_HDR_LEN, max_size=VNET_HDR_LEN))
def test_any_ten_bytes_parse_and_reencode_or_raise_value_error(raw: bytes) -> None:
    try:
        hdr, rest = VnetHeader.parse(raw)
    except ValueError as exc:
        assert str(exc).startswith("virtio_net_hdr ")
    else:
        assert rest == b"" and hdr.encode() == raw


# --- receive metadata -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("header", "offload"),
    [
        (VnetHeader(), RxOffload(csum_valid=False, gso_size=0)),
        (VnetHeader(VIRTIO_NET_HDR_F_NEEDS_CSUM, csum_start=34, csum_offset=16), RxOffload(True, 0)),
        (VnetHeader(VIRTIO_NET_HDR_F_DATA_VALID), RxOffload(True, 0)),
        (VnetHeader(3), RxOffload(True, 0)),
        (VnetHeader(1, VIRTIO_NET_HDR_GSO_TCPV4, 66, 1448, 34, 16), RxOffload(True, 1448)),
        (VnetHeader(0, VIRTIO_NET_HDR_GSO_TCPV4, 54, 1460), RxOffload(False, 1460)),
    ],
)
def test_to_rx_offload(header: VnetHeader, offload: RxOffload) -> None:
    assert header.to_rx_offload() == offload


@pytest.mark.parametrize(
    "gso_type",
    [
        VIRTIO_NET_HDR_GSO_TCPV6,
        VIRTIO_NET_HDR_GSO_UDP,
        VIRTIO_NET_HDR_GSO_UDP_L4,
        VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN,
        VIRTIO_NET_HDR_GSO_NONE | VIRTIO_NET_HDR_GSO_ECN,
    ],
)
def test_to_rx_offload_rejects_gso_refstack_did_not_offer(gso_type: int) -> None:
    header = VnetHeader(1, gso_type, 54, 1400, 34, 16)
    with pytest.raises(ValueError, match="gso_type"):
        header.to_rx_offload()


# --- transmit metadata ---------------------------------------------------------------------------------
def test_for_tx_plain_bytes_is_the_zero_header() -> None:
    assert VnetHeader.for_tx(b"\x00" * 60) is VnetHeader.ZERO
    assert VnetHeader.for_tx(b"").encode() == bytes(10)


def test_for_tx_partial_checksum() -> None:
    frame = TxOffloadFrame(bytes(80), csum_start=34, csum_offset=6)
    assert VnetHeader.for_tx(frame) == VnetHeader(VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0, 0, 34, 6)
    assert VnetHeader.for_tx(frame).encode() == bytes.fromhex("01000000000022000600")


def test_for_tx_tso_super_segment() -> None:
    frame = TxOffloadFrame(bytes(66 + 4 * 1448), csum_start=34, csum_offset=16, gso_size=1448, hdr_len=66)
    hdr = VnetHeader.for_tx(frame)
    assert hdr == VnetHeader(VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4, 66, 1448, 34, 16)
    assert hdr.encode() == bytes.fromhex("01014200a80522001000")


# --- the link without a device --------------------------------------------------------------------------
def _pipe_link(offload: bool) -> tuple[DeviceLink, int]:
    """A TapLink over one end of a SOCK_SEQPACKET pair (datagram boundaries like a TAP's)."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    return TapLink(a.detach(), "tap9", offload=offload), b.detach()


def test_read_frames_strips_parses_counts_and_drops_bad_headers() -> None:
    link, peer = _pipe_link(offload=True)
    try:
        gso = VnetHeader(1, 1, 66, 1448, 34, 16).encode() + b"A" * 3000
        os.write(peer, gso)
        os.write(peer, bytes(10) + b"plain")
        os.write(peer, b"\x00\x04" + bytes(8) + b"tcpv6 gso")  # gso_type TCPV6: not offered
        os.write(peer, b"\x01\x01")  # short
        os.write(peer, VnetHeader(2).encode() + b"valid")
        got = link.read_frames(16)
        assert got == [
            (b"A" * 3000, RxOffload(True, 1448)),
            (b"plain", RxOffload()),
            (b"valid", RxOffload(True, 0)),
        ]
        assert link.rx_bad_vnet == 2 and link.rx_frames == 3
        assert (link.rx_gso, link.rx_csum_valid, link.rx_max_len) == (1, 2, 3000)
        with pytest.raises(TypeError, match="read_frames"):
            link.read_batch(1)
    finally:
        link.close()
        os.close(peer)


def test_write_prepends_the_header_and_a_plain_link_does_not() -> None:
    link, peer = _pipe_link(offload=True)
    plain, plain_peer = _pipe_link(offload=False)
    try:
        tso = TxOffloadFrame(
            bytes(66) + b"B" * 2896, csum_start=34, csum_offset=16, gso_size=1448, hdr_len=66
        )
        link.write(tso)
        link.write(b"complete")
        assert os.read(peer, READ_SIZE) == bytes.fromhex("01014200a80522001000") + bytes(tso)
        assert os.read(peer, READ_SIZE) == bytes(10) + b"complete"
        assert (link.tx_frames, link.tx_gso, link.tx_csum_partial) == (2, 1, 1)
        plain.write(b"complete")
        assert os.read(plain_peer, READ_SIZE) == b"complete"
        assert plain.read_frames(4) == []
        os.write(plain_peer, b"frame")
        assert plain.read_frames(4) == [(b"frame", None)]
    finally:
        for lk, fd in ((link, peer), (plain, plain_peer)):
            lk.close()
            os.close(fd)


def test_attach_sets_the_transmit_offloads_only_on_an_offloaded_link() -> None:
    from refstack.stack import Stack

    for offload in (False, True):
        link, peer = _pipe_link(offload=offload)
        try:
            iface = link.attach(Stack(name="t"), "198.51.100.2", 24)
            assert (iface.tx_csum_offload, iface.tso) == (offload, offload)
        finally:
            link.close()
            os.close(peer)


# --- a real offloaded TAP device in a private namespace ------------------------------------------------
KERNEL_IP, HERE_IP = "198.51.100.1", "198.51.100.2"
HERE_MAC = mac("02:00:5e:10:00:02")
K, H = ipv4_addr(KERNEL_IP), ipv4_addr(HERE_IP)
TIMEOUT = 5.0


def _unavailable() -> str:
    return netns.device_unavailable(
        lambda: TapLink.create("tap0", offload=True).close(), "a TAP device with IFF_VNET_HDR"
    )


@dataclass
class Device:
    """An offloaded tap0 in a private namespace, its kernel end 198.51.100.1/24; we play
    198.51.100.2 by hand, answering ARP."""

    ns: netns.NetNamespace
    link: DeviceLink
    kernel_mac: bytes = b""
    sockets: tuple[socket.socket, ...] = ()

    def kernel_socket(self, kind: int) -> socket.socket:
        sock = self.ns.run(lambda: socket.socket(socket.AF_INET, kind), "vnet-socket")
        sock.settimeout(TIMEOUT)
        self.sockets += (sock,)
        return sock

    def frames(self, timeout: float = TIMEOUT) -> Iterator[tuple[EthernetFrame, RxOffload]]:
        """IPv4 frames the kernel sends, with their offload metadata; ARP requests for us
        are answered on the way."""
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            select.select([self.link.fd], [], [], left)
            for raw, rx in self.link.read_frames(64):
                assert rx is not None
                eth = EthernetFrame(raw)
                if eth.ethertype == ETHERTYPE_ARP:
                    arp = ArpPacket(eth.payload)
                    if arp.op == OP_REQUEST and arp.target_proto == H:
                        self.kernel_mac = arp.sender_hw
                        reply = build_arp(OP_REPLY, HERE_MAC, H, arp.sender_hw, arp.sender_proto)
                        self.link.write(
                            build_ethernet(arp.sender_hw, HERE_MAC, ETHERTYPE_ARP, reply, pad=True)
                        )
                elif eth.ethertype == ETHERTYPE_IPV4:
                    yield eth, rx
        raise TimeoutError(f"nothing more from the kernel within {timeout} s")

    def first(self, predicate: Callable[[Ipv4Packet], bool]) -> tuple[Ipv4Packet, RxOffload, int]:
        for eth, rx in self.frames():
            ip = Ipv4Packet(eth.payload)
            if predicate(ip):
                return ip, rx, len(eth.payload) + 14
        raise AssertionError("unreachable")

    def send_ip(self, ip: bytes, **offload: int) -> None:
        """Write an IPv4 datagram to the kernel, as a TxOffloadFrame when ``offload``."""
        assert self.kernel_mac, "the kernel has not asked for our MAC yet"
        frame = build_ethernet(self.kernel_mac, HERE_MAC, ETHERTYPE_IPV4, ip)
        self.link.write(TxOffloadFrame(frame, **offload) if offload else frame)

    def snmp(self, group: str) -> dict[str, int]:
        def read() -> dict[str, int]:
            lines = [line.split() for line in Path("/proc/thread-self/net/snmp").read_text().splitlines()]
            names, values = next((a, b) for a, b in itertools.pairwise(lines) if a[0] == f"{group}:")
            return {n: int(v) for n, v in zip(names[1:], values[1:], strict=True)}

        return self.ns.run(read, "vnet-snmp")


@pytest.fixture
def device() -> Iterator[Device]:
    why = _unavailable()
    if why:
        pytest.skip(why)
    ns = netns.NetNamespace()

    def inside() -> DeviceLink:
        link = TapLink.create("tap0", offload=True)
        try:
            with contextlib.suppress(OSError):
                Path("/proc/sys/net/ipv6/conf/tap0/disable_ipv6").write_text("1")
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as ctl:
                netns.set_link_up(ctl, "tap0")
                netns.configure_interface(ctl, "tap0", KERNEL_IP, "255.255.255.0")
        except BaseException:
            link.close()
            raise
        return link

    try:
        dev = Device(ns, ns.run(inside, "vnet-setup"))
    except BaseException:
        ns.close()
        raise
    try:
        yield dev
    finally:
        for sock in dev.sockets:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        dev.link.close()
        with contextlib.suppress(Exception):
            ns.run(netns.destroy_sockets, "vnet-teardown")
        ns.join(5.0)
        ns.close()


def _udp_to_kernel(payload: bytes) -> tuple[bytes, dict[str, int]]:
    """A UDP datagram 198.51.100.2:5000 -> kernel:5001 whose checksum field holds only the
    pseudo-header sum (for NEEDS_CSUM; wrong as a complete frame), and its offsets."""
    length = 8 + len(payload)
    value, _ = pseudo_header_sum(H, K, PROTO_UDP, length)
    datagram = build_udp(H, K, 5000, 5001, payload, checksum_value=value or 0xFFFF)
    return build_ipv4(H, K, PROTO_UDP, datagram, ident=7), {"csum_start": 34, "csum_offset": 6}


def test_kernel_hands_over_partial_checksums_and_takes_them(device: Device) -> None:
    """RX: the kernel's UDP datagram comes behind NEEDS_CSUM (csum_valid).  TX: a datagram
    whose checksum field is only the pseudo-header sum is delivered when written behind
    NEEDS_CSUM, and dropped on its checksum (InCsumErrors) when written as complete."""
    k = device.kernel_socket(socket.SOCK_DGRAM)
    k.bind((KERNEL_IP, 5001))
    k.sendto(b"from the kernel" * 10, (HERE_IP, 5000))
    ip, rx, _ = device.first(lambda ip: ip.protocol == PROTO_UDP)
    assert ip.payload[8:] == b"from the kernel" * 10
    assert rx == RxOffload(csum_valid=True, gso_size=0)
    assert device.link.rx_csum_valid >= 1 and device.link.rx_bad_vnet == 0

    ip_bytes, offsets = _udp_to_kernel(b"partial checksum")
    device.send_ip(ip_bytes, **offsets)
    assert k.recvfrom(100) == (b"partial checksum", (HERE_IP, 5000))
    assert device.link.tx_csum_partial == 1

    before = device.snmp("Udp")["InCsumErrors"]
    device.send_ip(ip_bytes)  # the same bytes as a complete frame: a bad checksum
    k.settimeout(0.3)
    with pytest.raises(TimeoutError):
        k.recvfrom(100)
    assert device.snmp("Udp")["InCsumErrors"] == before + 1


def test_kernel_hands_over_tcp_super_segments_and_takes_them(device: Device) -> None:
    """RX: the kernel's first flight on a connection to us (initial window 10 segments)
    comes as super-segments longer than the MTU, behind gso_size = the MSS we announced.
    TX: a 4-segment TSO super-segment we write behind TCPV4 GSO reaches the socket whole."""
    lk = device.kernel_socket(socket.SOCK_STREAM)
    lk.bind((KERNEL_IP, 5002))
    lk.listen(1)
    iss, port = 1000, 40000
    syn = build_tcp(H, K, port, 5002, seq=iss, flags=SYN, window=65535, options=[Mss(1460)])
    k = device.kernel_socket(socket.SOCK_DGRAM)  # makes the kernel resolve us first
    k.sendto(b"arp", (HERE_IP, 9))
    device.first(lambda ip: ip.protocol == PROTO_UDP)
    device.send_ip(build_ipv4(H, K, PROTO_TCP, syn, ident=1))
    ip, rx, _ = device.first(lambda ip: ip.protocol == PROTO_TCP)
    synack = TcpSegment(ip.payload)
    assert synack.flags & (SYN | ACK) == SYN | ACK and synack.ack == iss + 1
    assert rx.csum_valid and rx.gso_size == 0
    rcv_nxt = (synack.seq + 1) & 0xFFFFFFFF
    device.send_ip(
        build_ipv4(H, K, PROTO_TCP, build_tcp(H, K, port, 5002, seq=iss + 1, ack=rcv_nxt), ident=2)
    )
    conn, _ = lk.accept()
    device.sockets += (conn,)
    conn.settimeout(TIMEOUT)

    # RX: the kernel sends 10 x 1460 bytes at once (initial cwnd), as GSO super-segments.
    data = bytes(range(256)) * 57  # 14592 bytes, under the initial window
    conn.sendall(data)
    got = b""
    offloads: list[tuple[RxOffload, int]] = []
    while len(got) < len(data):
        ip, rx, length = device.first(lambda ip: ip.protocol == PROTO_TCP and len(ip.payload) > 20)
        seg = TcpSegment(ip.payload)
        offloads.append((rx, length))
        start = (seg.seq - rcv_nxt) & 0xFFFFFFFF
        if start <= len(got) < start + len(seg.payload):  # in order (a retransmission may overlap)
            got += seg.payload[len(got) - start :]
        ack = build_tcp(H, K, port, 5002, seq=iss + 1, ack=(rcv_nxt + len(got)) & 0xFFFFFFFF)
        device.send_ip(build_ipv4(H, K, PROTO_TCP, ack, ident=2))
    assert got == data
    assert any(rx.gso_size == 1460 and length > 1514 for rx, length in offloads), offloads
    assert all(rx.csum_valid for rx, _ in offloads)
    assert device.link.rx_gso >= 1 and device.link.rx_max_len > 1514
    rcv_nxt = (rcv_nxt + len(data)) & 0xFFFFFFFF

    # TX: one super-segment of 4 x 1000 bytes, TCP checksum field = the pseudo-header sum.
    payload = bytes((i * 7) & 0xFF for i in range(4000))
    value, _ = pseudo_header_sum(H, K, PROTO_TCP, 20 + len(payload))
    seg_bytes = build_tcp(
        H, K, port, 5002, seq=iss + 1, ack=rcv_nxt, flags=ACK | PSH, payload=payload, checksum_value=value
    )
    device.send_ip(
        build_ipv4(H, K, PROTO_TCP, seg_bytes, ident=3),
        csum_start=34,
        csum_offset=16,
        gso_size=1000,
        hdr_len=54,
    )
    received = b""
    while len(received) < len(payload):
        received += conn.recv(65536)
    assert received == payload
    assert device.link.tx_gso == 1
    # and the kernel acknowledges the whole super-segment
    device.first(lambda ip: ip.protocol == PROTO_TCP and TcpSegment(ip.payload).ack == iss + 4001)
