"""RFC 768 / RFC 1122 §4.1.3.4: the UDP checksum and length fields of received datagrams.

Python cases: a .pkt line cannot write a chosen checksum or length field.
"""

from __future__ import annotations

import errno

import pytest
from scapy.layers.inet import ICMP, IP, UDP
from scapy.packet import Raw

from conformance.case_api import Case, Dut, DutError, UdpFlow, case


def _expect_nothing_to_read(dut: Dut, fd: int) -> None:
    dut.set_nonblocking(fd)
    with pytest.raises(DutError) as nothing:
        dut.recv(fd)
    assert nothing.value.errno == errno.EAGAIN


def _datagram(case: Case, udp: UdpFlow, payload: bytes, **fields: int) -> bytes:
    header = UDP(sport=udp.bench_port, dport=5353)
    for name, value in fields.items():
        setattr(header, name, value)
    return bytes(IP(src=case.remote_ip, dst=case.local_ip) / header / Raw(payload))


# req: RFC768-Fields RFC1122-4.1.3.4
@case("RFC 768, RFC 1122 §4.1.3.4")
def test_zero_checksum_means_none_and_is_accepted(case: Case, dut: Dut, udp: UdpFlow) -> None:
    """An all-zero checksum field means the sender computed none (RFC 768): the
    datagram is delivered."""
    fd = dut.bind_udp(5353)
    case.inject(_datagram(case, udp, b"no checksum", chksum=0))
    data, peer = dut.recvfrom(fd)
    assert (data, peer) == (b"no checksum", (udp.bench_ip, udp.bench_port))


# req: RFC1122-4.1.3.4 RFC768-Fields
@case("RFC 1122 §4.1.3.4")
def test_bad_checksum_is_discarded_silently(case: Case, dut: Dut, udp: UdpFlow) -> None:
    """A datagram whose (non-zero) checksum is wrong MUST be discarded silently: not
    delivered, no ICMP error; a correct one after it is delivered."""
    fd = dut.bind_udp(5353)
    good = _datagram(case, udp, b"corrupted")
    wrong = UDP(good[20:]).chksum ^ 0x0101 or 0x0101
    case.inject(_datagram(case, udp, b"corrupted", chksum=wrong))
    assert case.sniff_any(0.2) is None, "something was sent about a corrupted datagram"
    _expect_nothing_to_read(dut, fd)
    case.inject(good)
    dut.set_nonblocking(fd, False)
    assert dut.recv(fd) == b"corrupted"


# req: RFC768-Fields
@case("RFC 768")
def test_length_field_beyond_the_ip_payload_is_discarded(case: Case, dut: Dut, udp: UdpFlow) -> None:
    """The UDP length counts header and data; a datagram whose length field claims more
    than the IP datagram carries is malformed and dropped (Linux: UDP_MIB_INERRORS)."""
    fd = dut.bind_udp(5353)
    case.inject(_datagram(case, udp, b"short", len=8 + 50, chksum=0))
    assert case.sniff_any(0.2) is None, "something was sent about a malformed datagram"
    _expect_nothing_to_read(dut, fd)


# req: RFC768-Fields
@case("RFC 768")
def test_length_field_shorter_than_the_ip_payload_trims_the_data(case: Case, dut: Dut, udp: UdpFlow) -> None:
    """The UDP length field, not the IP length, delimits the data: with length 8 + 4
    over 10 octets of payload only the first 4 are delivered (Linux trims, as
    pskb_trim_rcsum)."""
    fd = dut.bind_udp(5353)
    case.inject(_datagram(case, udp, b"abcdefghij", len=8 + 4, chksum=0))
    assert dut.recv(fd) == b"abcd"


# req: RFC768-Interface RFC1122-4.1.3.6
@case("RFC 768, RFC 1122 §4.1.3.6")
def test_datagram_to_subnet_broadcast_leaves_with_so_broadcast(case: Case, dut: Dut, udp: UdpFlow) -> None:
    """With SO_BROADCAST, a datagram to the subnet broadcast address (192.168.255.255 for
    192.168.0.1/16) leaves the DUT with that destination and the DUT's own source."""
    fd = dut.bind_udp(5353)
    dut.setsockopt(fd, 1, 6, 1)  # SOL_SOCKET, SO_BROADCAST
    assert dut.sendto(fd, b"all", ("192.168.255.255", 5353)) == 3
    deadline = case.now() + 1.0
    while (pkt := case.sniff_any(max(deadline - case.now(), 0.0))) is not None:
        if UDP in pkt and ICMP not in pkt:
            break
    assert pkt is not None, "no datagram left"
    assert (pkt[IP].src, pkt[IP].dst, pkt[UDP].dport) == (case.local_ip, "192.168.255.255", 5353)
    assert bytes(pkt[UDP].payload) == b"all"


# req: RFC768-Interface RFC1122-4.1.3.5
@case("RFC 768, RFC 1122 §4.1.3.5")
def test_unconnected_socket_receives_from_any_source(case: Case, dut: Dut) -> None:
    """An unconnected, bound socket receives datagrams from any source address and port,
    and reports each one's source."""
    fd = dut.bind_udp(5353)
    first, second = case.udp(dut_port=5353), case.udp(dut_port=5353)
    first.send(b"one")
    second.send(b"two")
    assert dut.recvfrom(fd) == (b"one", (first.bench_ip, first.bench_port))
    assert dut.recvfrom(fd) == (b"two", (second.bench_ip, second.bench_port))
