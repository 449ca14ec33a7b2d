"""RFC 3376 §4.1 / §7.1, RFC 2236 §2, RFC 1112 App. I: how a host treats IGMP queries
whose bytes a .pkt line cannot spell (wrong checksum, odd lengths, trailing data).

Each case joins 239.1.2.3, lets the join's two State-Change Reports go, then sends a
crafted General Query and checks whether the host answers within its Max Resp Time.
"""

from __future__ import annotations

import socket
import struct

from scapy.layers.inet import IP, IPOption_Router_Alert
from scapy.packet import Packet, Raw

from conformance.case_api import Case, Dut, case

GROUP = "239.1.2.3"
PROTO_IGMP = 2


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _igmp(body: bytes, *, good_checksum: bool = True) -> bytes:
    """``body`` (checksum field zero) with its checksum filled in (or made wrong)."""
    value = _checksum(body)
    if not good_checksum:
        value ^= 0x5A5A
    return body[:2] + struct.pack("!H", value) + body[4:]


def _v3_query(max_resp: int = 5, extra: bytes = b"") -> bytes:
    """A General Query (RFC 3376 §4.1): type 0x11, Max Resp Code, group 0, QRV 2, QQIC 125."""
    return struct.pack("!BBH4sBBH", 0x11, max_resp, 0, bytes(4), 2, 125, 0) + extra


def _send(case: Case, igmp: bytes) -> None:
    ip = IP(src="192.168.0.254", dst="224.0.0.1", ttl=1, tos=0xC0, proto=PROTO_IGMP)
    ip.options = [IPOption_Router_Alert()]
    case.inject(ip / Raw(igmp))


def _igmp_sent(case: Case, timeout: float) -> list[Packet]:
    """The IGMP messages the DUT sends within ``timeout`` seconds."""
    got: list[Packet] = []
    deadline = case.now() + timeout
    while (left := deadline - case.now()) > 0:
        pkt = case.sniff_any(left)
        if pkt is None:
            break
        if int(pkt.proto) == PROTO_IGMP:
            got.append(pkt)
    return got


def _joined(case: Case, dut: Dut) -> None:
    fd = dut.bind_udp(8080)
    dut.setsockopt(fd, socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, _mreq(GROUP, case.local_ip))
    reports: list[Packet] = []
    deadline = case.now() + 1.3
    while len(reports) < 2 and case.now() < deadline:
        reports += _igmp_sent(case, min(0.1, deadline - case.now()))
    assert len(reports) == 2, f"the join drew {len(reports)} report(s), not 2"


def _mreq(group: str, iface: str) -> bytes:
    return bytes(int(x) for x in group.split(".")) + bytes(int(x) for x in iface.split("."))


def _answers(case: Case) -> list[Packet]:
    return _igmp_sent(case, 0.6)


# req: RFC3376-4.1.2 M-15
@case("RFC 3376 §4.1.2, §7.1")
def test_query_with_bad_checksum_ignored(case: Case, dut: Dut) -> None:
    """A query whose checksum is wrong is not a query: no report answers it; the same
    query with a good checksum is answered."""
    _joined(case, dut)
    _send(case, _igmp(_v3_query(), good_checksum=False))
    assert _answers(case) == [], "a query with a bad checksum was answered"
    _send(case, _igmp(_v3_query()))
    assert len(_answers(case)) == 1


# req: RFC3376-7.1 M-15
@case("RFC 3376 §7.1")
def test_query_of_ten_bytes_ignored(case: Case, dut: Dut) -> None:
    """§7.1: a query of 8 bytes is IGMPv1/v2, of 12 or more IGMPv3; queries of other
    lengths (here 10 bytes) MUST be silently ignored."""
    _joined(case, dut)
    _send(case, _igmp(_v3_query()[:10]))
    assert _answers(case) == [], "a 10-byte query was answered"


# req: RFC3376-4.1.10 RFC3376-7.1
@case("RFC 3376 §4.1.10")
def test_query_with_additional_data_answered(case: Case, dut: Dut) -> None:
    """§4.1.10: octets after the source list are Additional Data, included in the
    checksum and otherwise ignored: such a query is answered as usual, with IS_EX."""
    _joined(case, dut)
    _send(case, _igmp(_v3_query(extra=bytes(8))))
    answers = _answers(case)
    assert len(answers) == 1
    report = bytes(answers[0].payload)
    record_type, _, _, group = struct.unpack_from("!BBH4s", report, 8)
    assert (report[0], record_type, group) == (0x22, 2, bytes((239, 1, 2, 3)))
