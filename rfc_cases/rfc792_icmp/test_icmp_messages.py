"""ICMP (RFC 792, RFC 1122 §3.2.2) messages whose content a .pkt line cannot check:
the echo reply's identifier, sequence number and data; the header an error quotes;
silence towards broadcasts."""

from __future__ import annotations

from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror, UDPerror
from scapy.packet import Packet, Raw

from conformance.case_api import Case, Dut, TcpConnection, UdpFlow, case


def _next_icmp(case: Case, timeout: float) -> Packet | None:
    deadline = case.now() + timeout
    while (left := deadline - case.now()) > 0:
        pkt = case.sniff_any(left)
        if pkt is None:
            return None
        if ICMP in pkt:
            return pkt
    return None


# req: RFC792-echo RFC1122-3.2.2.6
@case("RFC 792 (Echo), RFC 1122 §3.2.2.6")
def test_echo_request_draws_an_echo_reply(case: Case) -> None:
    """The reply swaps the addresses, has type 0, and returns the identifier, sequence
    number and data of the request unchanged (RFC 1122 §3.2.2.6 MUST)."""
    data = bytes(range(48))
    case.inject(IP(src=case.remote_ip, dst=case.local_ip) / ICMP(type=8, id=0x1234, seq=7) / Raw(data))
    reply = _next_icmp(case, 1.0)
    assert reply is not None, "no echo reply"
    assert (reply[IP].src, reply[IP].dst) == (case.local_ip, case.remote_ip)
    assert (reply[ICMP].type, reply[ICMP].code) == (0, 0)
    assert (reply[ICMP].id, reply[ICMP].seq) == (0x1234, 7)
    assert bytes(reply[ICMP].payload) == data


# req: RFC792-unreach RFC1122-3.2.2 RFC1122-4.1.3.1
@case("RFC 792 (Destination Unreachable), RFC 1122 §3.2.2, §4.1.3.1")
def test_port_unreachable_quotes_the_datagram_header(case: Case, udp: UdpFlow) -> None:
    """A UDP datagram to a closed port draws type 3 code 3, quoting the offending IP
    header and at least the first 8 octets of its data (the whole UDP header)."""
    udp.send(b"0123456789abcdef", dut_port=9)
    err = _next_icmp(case, 1.0)
    assert err is not None, "no ICMP error"
    assert (err[ICMP].type, err[ICMP].code) == (3, 3)
    assert (err[IP].src, err[IP].dst) == (case.local_ip, case.remote_ip)
    quoted = err[IPerror]
    assert (quoted.src, quoted.dst, quoted.proto) == (case.remote_ip, case.local_ip, 17)
    assert (err[UDPerror].sport, err[UDPerror].dport) == (udp.bench_port, 9)
    assert err[UDPerror].len == 8 + 16
    assert bytes(err[UDPerror].payload)[:8] == b"01234567"  # RFC 1122: at least 8 octets of data


# req: RFC1122-3.2.2 RFC1122-4.1.3.1
@case("RFC 1122 §3.2.2, §4.1.3.1")
def test_no_port_unreachable_for_a_broadcast_datagram(case: Case, udp: UdpFlow) -> None:
    """An ICMP error MUST NOT be sent about a datagram destined to a broadcast address:
    a UDP datagram to 255.255.255.255 for a closed port draws nothing."""
    case.inject(
        IP(src=case.remote_ip, dst="255.255.255.255") / UDP(sport=udp.bench_port, dport=9) / Raw(b"x")
    )
    assert _next_icmp(case, 0.3) is None, "an ICMP error about a broadcast datagram"


# req: RFC1122-3.2.2.6
@case("RFC 1122 §3.2.2.6")
def test_echo_request_to_broadcast_is_ignored(case: Case) -> None:
    """An Echo Request to a broadcast address MAY be silently discarded; Linux does so
    by default (net.ipv4.icmp_echo_ignore_broadcasts = 1)."""
    case.inject(IP(src=case.remote_ip, dst="255.255.255.255") / ICMP(type=8, id=1, seq=1) / Raw(b"ping"))
    assert _next_icmp(case, 0.3) is None, "an echo reply to a broadcast echo request"


# req: RFC1122-3.2.2.6
@case("RFC 1122 §3.2.2.6", sysctls={"net.ipv4.icmp_echo_ignore_all": "1"})
def test_echo_requests_ignored_when_configured(case: Case) -> None:
    """Answering echo requests is a MUST with a configuration escape in practice: with
    net.ipv4.icmp_echo_ignore_all = 1 (refstack models it) no reply is sent."""
    case.inject(IP(src=case.remote_ip, dst=case.local_ip) / ICMP(type=8, id=2, seq=1) / Raw(b"ping"))
    assert _next_icmp(case, 0.3) is None, "an echo reply although echo requests are ignored"


# req: RFC1191-3
@case("RFC 1191 §3")
def test_tcp_segments_carry_dont_fragment(dut: Dut, conn: TcpConnection) -> None:
    """Path MTU discovery (on by default, as in Linux): every TCP segment the DUT sends,
    SYN-ACK and data, has the IP Don't Fragment bit set, so that a router too small for
    it answers with "fragmentation needed" instead of fragmenting."""
    lfd = dut.listen_tcp(8080)
    synack = conn.connect_to(8080)
    fd, _ = dut.accept(lfd)
    dut.send(fd, b"d" * 100)
    data = conn.expect(payload=b"d" * 100)
    for pkt in (synack, data):
        assert pkt[IP].flags.DF, f"DF not set on {pkt[TCP].summary()}"
