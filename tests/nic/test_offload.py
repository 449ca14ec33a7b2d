"""Checksum offload and TSO/GRO (refstack.nic.offload), checked against scapy.

A software "device" between two stacks does what a virtio-net device (a TAP with
``IFF_VNET_HDR``) does for refstack: it finishes the transport checksum of every
:class:`TxOffloadFrame` and cuts each TSO super-segment into MSS-sized segments
(sequence numbers advanced, IP ID incremented, FIN and PSH on the last segment
only, as Linux's ``tcp_gso_segment``).  The device is written with scapy, never
with refstack's own codecs, so a wrong offset, length or partial checksum in what
refstack hands it shows up as a segment the peer drops.  On the receive side a
super-segment built with scapy, with the checksum left partial, must be taken
when the device vouches for it (``RxOffload``) and dropped when it does not.
"""

from __future__ import annotations

import hashlib

import pytest
from scapy.layers.inet import IP, TCP

from refstack.clock import VirtualClock
from refstack.link import MemoryLink
from refstack.nic.offload import RxOffload, TxOffloadFrame
from refstack.simulation import Simulation
from refstack.stack import Stack
from refstack.tcp.endpoint import TcpEndpoint
from refstack.wire.addresses import ipv4_addr

A_ADDR, B_ADDR = "198.51.100.1", "198.51.100.2"


def device_segment(frame: bytes) -> list[bytes]:
    """What the device puts on the wire for one frame from the stack."""
    if not isinstance(frame, TxOffloadFrame):
        return [bytes(frame)]
    assert frame.csum_start == 20 and frame.csum_offset == 16  # bare IP link, TCP
    pkt = IP(bytes(frame))
    tcp = pkt[TCP]
    data = bytes(tcp.payload)
    if not frame.gso_size:
        del pkt.chksum, pkt[TCP].chksum
        return [bytes(pkt)]
    assert frame.hdr_len == 20 + tcp.dataofs * 4
    out = []
    pieces = [data[i : i + frame.gso_size] for i in range(0, len(data), frame.gso_size)]
    for n, piece in enumerate(pieces):
        last = n == len(pieces) - 1
        flags = int(tcp.flags)
        if not last:
            flags &= ~0x09  # FIN and PSH only on the last segment
        if n:
            flags &= ~0x80  # CWR only on the first
        seg = IP(
            src=pkt.src, dst=pkt.dst, id=(pkt.id + n) & 0xFFFF, flags=pkt.flags, ttl=pkt.ttl, tos=pkt.tos
        )
        seg /= TCP(
            sport=tcp.sport,
            dport=tcp.dport,
            seq=(tcp.seq + n * frame.gso_size) & 0xFFFFFFFF,
            ack=tcp.ack,
            flags=flags,
            window=tcp.window,
            options=tcp.options,
        )
        seg /= piece
        out.append(bytes(seg))
    return out


class OffloadDevice:
    """A stack behind a device with checksum offload and TSO (scapy does the device's work)."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.super_segments = 0
        self.largest = 0

    def receive(self, frame: bytes, now: float) -> None:
        self.stack.receive(frame, now)

    def poll(self, now: float) -> list[bytes]:
        out = []
        for frame in self.stack.poll(now):
            if isinstance(frame, TxOffloadFrame) and frame.gso_size:
                self.super_segments += 1
                self.largest = max(self.largest, len(frame))
            out += device_segment(frame)
        return out

    def next_deadline(self) -> float | None:
        return self.stack.next_deadline()


def _bulk(sim: Simulation, a: Stack, b: Stack, data: bytes) -> TcpEndpoint:
    """``data`` from a to b over ``sim`` (a's end closes after it); checks it arrived
    byte-exact and returns b's end of the connection."""
    clock = sim.clock
    listener = b.tcp.endpoint()
    listener.bind(bytes(4), 5001)
    listener.listen(4)
    client = a.tcp.endpoint()
    client.connect(ipv4_addr(B_ADDR), 5001, clock.now())
    assert sim.run_until(lambda: bool(listener.accept_queue), 10)
    server = listener.accept()
    sent, got = 0, bytearray()

    def pump() -> bool:
        nonlocal sent
        if sent < len(data) and client.send_space() > 0:
            sent += client.send(data[sent : sent + (1 << 20)], clock.now())
        if sent == len(data) and not client.fin_queued:
            client.shutdown(1, clock.now())
        while server.readable:
            chunk = server.recv(1 << 20)
            if not chunk:
                return True
            got.extend(chunk)
        return False

    assert sim.run_until(pump, 60)
    assert bytes(got) == data
    return server


def test_tso_super_segments_cut_by_the_device_reach_the_peer_byte_exact() -> None:
    a = Stack(seed=1, name="a")
    iface = a.add_interface("eth", A_ADDR, 24)
    iface.tx_csum_offload = iface.tso = True
    b = Stack(seed=2, name="b")
    b.add_interface("eth", B_ADDR, 24)
    clock = VirtualClock()
    sim = Simulation(clock)
    device = OffloadDevice(a)
    sim.add(device, "a")
    sim.add(b, "b")
    sim.connect("a", "b", MemoryLink(delay=0.001, rate_bps=1e9, mtu=1500))
    _bulk(sim, a, b, hashlib.shake_256(b"tso").digest(2_000_000))
    assert device.super_segments > 10
    assert device.largest >= 20 + 32 + 10 * 1448  # the initial window in one
    assert b.counters["tcp_rx_bad_checksum"] == 0
    assert b.counters["ip_rx_bad_checksum"] == 0


def test_no_offload_towards_our_own_address() -> None:
    """A segment to one of our addresses loops back to our input: it must be complete."""
    a = Stack(seed=3, name="a")
    iface = a.add_interface("eth", A_ADDR, 24)
    iface.tx_csum_offload = iface.tso = True
    listener = a.tcp.endpoint()
    listener.bind(bytes(4), 80)
    listener.listen(1)
    client = a.tcp.endpoint()
    client.connect(ipv4_addr(A_ADDR), 80, 0.0)
    for t in range(20):
        a.poll(t * 0.01)
    assert listener.accept_queue, "the looped-back handshake failed"
    assert a.counters["tcp_rx_bad_checksum"] == 0


def _established_receiver() -> tuple[Stack, TcpEndpoint, int]:
    """Stack B with a connection from A's address, handshake done by hand with scapy."""
    b = Stack(seed=4, name="b")
    b.add_interface("eth", B_ADDR, 24)
    listener = b.tcp.endpoint()
    listener.bind(bytes(4), 5001)
    listener.listen(4)
    listener.rcvbuf = 4 << 20
    syn = IP(src=A_ADDR, dst=B_ADDR) / TCP(
        sport=40000, dport=5001, seq=1000, flags="S", options=[("MSS", 1460)]
    )
    b.receive(bytes(syn), 0.0)
    synack = IP(b.poll(0.0)[0])
    ack = IP(src=A_ADDR, dst=B_ADDR) / TCP(
        sport=40000, dport=5001, seq=1001, ack=synack[TCP].seq + 1, flags="A", window=65535
    )
    b.receive(bytes(ack), 0.001)
    b.poll(0.001)
    assert listener.accept_queue
    return b, listener.accept(), synack[TCP].seq + 1


def _super_segment(payload: bytes, ack: int, *, partial: bool) -> bytes:
    tcp = TCP(sport=40000, dport=5001, seq=1001, ack=ack, flags="PA", window=65535)
    pkt = IP(src=A_ADDR, dst=B_ADDR) / tcp / payload
    raw = bytearray(bytes(pkt))  # checksums computed by scapy
    if partial:
        raw[36:38] = b"\x12\x34"  # what a NEEDS_CSUM frame carries: not a valid checksum
    return bytes(raw)


@pytest.mark.parametrize("vouched", [True, False])
def test_super_segment_with_a_partial_checksum(vouched: bool) -> None:
    b, server, ack = _established_receiver()
    payload = hashlib.shake_256(b"gro").digest(20 * 1448)
    frame = _super_segment(payload, ack, partial=True)
    offload = RxOffload(csum_valid=True, gso_size=1448) if vouched else None
    b.receive(frame, 0.01, offload=offload)
    out = [IP(f) for f in b.poll(0.01)]
    if not vouched:
        assert b.counters["tcp_rx_bad_checksum"] == 1
        assert not server.readable
        return
    assert server.recv(1 << 20) == payload
    # 20 full-sized segments in one: acknowledged at once (RFC 1122 §4.2.3.2), and the
    # peer's MSS is taken from the device's segment size, not the super-segment's.
    assert [p[TCP].ack for p in out] == [1001 + len(payload)]
    assert server._rcv_mss == 1448


def test_udp_checksum_offload_is_honoured_only_when_vouched() -> None:
    from scapy.layers.inet import UDP

    b = Stack(seed=5, name="b")
    b.add_interface("eth", B_ADDR, 24)
    sock = b.udp.endpoint()
    sock.bind(bytes(4), 9)
    raw = bytearray(bytes(IP(src=A_ADDR, dst=B_ADDR) / UDP(sport=1, dport=9) / b"hello"))
    raw[26:28] = b"\x00\x01"  # partial, not valid
    b.receive(bytes(raw), 0.0)
    assert b.counters["udp_rx_bad_checksum"] == 1
    b.receive(bytes(raw), 0.0, offload=RxOffload(csum_valid=True))
    assert b.counters["udp_rx_delivered"] == 1


def test_memorylink_with_offload_carries_super_segments_as_is() -> None:
    """A host-internal link (``MemoryLink(offload=True)``, Linux's veth) hands the peer
    refstack's TSO super-segments whole; the peer takes them as vouched for, with their
    segment size, and the stream arrives byte-exact."""
    stacks = []
    for name, address, seed in (("a", A_ADDR, 6), ("b", B_ADDR, 7)):
        stack = Stack(seed=seed, name=name)
        iface = stack.add_interface("eth", address, 24)
        iface.tx_csum_offload = iface.tso = True
        stacks.append(stack)
    a, b = stacks
    clock = VirtualClock()
    sim = Simulation(clock)
    sim.add(a, "a")
    sim.add(b, "b")
    seen: list[bytes] = []
    sim.connect(
        "a",
        "b",
        MemoryLink(
            delay=0.001, rate_bps=1e9, mtu=1500, offload=True, on_frame=lambda s, f, t: seen.append(f)
        ),
    )
    server = _bulk(sim, a, b, hashlib.shake_256(b"veth").digest(1_000_000))
    supers = [f for f in seen if isinstance(f, TxOffloadFrame) and f.gso_size]
    assert supers and max(len(f) for f in supers) > 1500
    assert {f.gso_size for f in supers} == {1448}
    assert server._rcv_mss == 1448
    assert b.counters["tcp_rx_bad_checksum"] == 0


def test_plain_memorylink_completes_nothing_and_strips_metadata() -> None:
    """Without ``offload`` a MemoryLink is a wire: what crosses it is plain bytes."""
    link = MemoryLink()
    frame = TxOffloadFrame(bytes(40), csum_start=20, csum_offset=16)
    link.send("a", frame, 0.0)
    (out,) = link.deliverable("b", 0.0)
    assert type(out) is bytes


def test_an_impaired_link_refuses_offloads() -> None:
    from refstack.impairment import ImpairedLink, Impairment

    with pytest.raises(ValueError, match="offload"):
        ImpairedLink(MemoryLink(offload=True), Impairment(1))
