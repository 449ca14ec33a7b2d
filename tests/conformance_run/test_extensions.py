"""The .pkt extensions (conformance/EXTENSIONS.md): fragments, IGMP, addresses, --require, --ef."""

from __future__ import annotations

import socket
import struct
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP
from scapy.utils import checksum

from conformance.results import Verdict
from conformance.run.executor import InAddr, _mreq, run_case
from conformance.run.fragments import fragment
from conformance.run.igmp import build_igmp, match_igmp, parse_igmp
from conformance.run.options import OptionError, RunOptions, merge
from conformance.script import ScriptError, parse
from conformance.script import syntax as sx
from conformance.targets import get_target

HEAD = "0 socket(..., SOCK_DGRAM, IPPROTO_UDP) = 3\n"


def line(text: str) -> sx.PacketEvent:
    action = parse(HEAD + "+0 " + text + "\n", path="t.pkt").events[1].action
    assert isinstance(action, sx.PacketEvent)
    return action


# -- parsing ------------------------------------------------------------------------------


def test_ip_info_extension_fields() -> None:
    info = line("< (src 198.51.100.7, dst 239.1.2.3, id 7, df, frag 8:16, nomf) udp 1>2 (100)").ip_info
    assert info is not None
    assert (info.src, info.dst, info.ip_id, info.df) == ("198.51.100.7", "239.1.2.3", 7, True)
    assert (info.frag_offset, info.frag_length, info.mf, info.is_fragment) == (8, 16, False, True)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("< (frag 3) udp (10)", "fragment offset 3 is not a multiple of 8"),
        ("< (mf) udp (10)", "'mf'/'nomf' only make sense with 'frag OFF[:LEN]'"),
        ("< (dst 8080) udp (10)", "expected an IPv4 address after 'dst'"),
        ("< (df, nodf) udp (10)", "'df' (or 'nodf') given twice"),
        ("< igmp v4_query", "expected an IGMP message after 'igmp'"),
        ("< igmp v2_query qrv 2", "'qrv' is not a field of an IGMP v2_query"),
        ("> igmp v3_report [to_all 239.1.2.3]", "expected an IGMPv3 record type"),
        ("> igmp leave 5", "expected the group address after 'leave'"),
    ],
)
def test_extension_errors_name_the_place(text: str, message: str) -> None:
    with pytest.raises(ScriptError) as caught:
        parse(HEAD + "+0 " + text + "\n", path="t.pkt")
    assert caught.value.line == 2 and message in caught.value.message, caught.value.message


def test_igmp_lines() -> None:
    body = line("< igmp v3_query 239.1.2.3 max_resp 20 qrv 3 qqic 60 s sources [198.51.100.7]").body
    assert body == sx.IgmpBody("v3_query", "239.1.2.3", 20, 3, 60, True, ("198.51.100.7",))
    report = line("> igmp v3_report [to_ex 239.1.2.3 [], allow 239.1.2.4 [198.51.100.7]]").body
    assert isinstance(report, sx.IgmpBody) and report.records is not None
    assert [(r.kind, r.group, r.sources, r.type_num) for r in report.records] == [
        ("to_ex", "239.1.2.3", (), 4),
        ("allow", "239.1.2.4", ("198.51.100.7",), 5),
    ]


def test_require_and_ef_options() -> None:
    script = parse("--require=refstack,onload\n--ef=EF_NO_FAIL=0\n--ef=EF_NO_FAIL=1\n" + HEAD, path="t.pkt")
    opts = merge(script)
    assert opts.require == frozenset({"refstack", "onload"})
    assert opts.ef_options == (("EF_NO_FAIL", "1"),)  # the last one wins
    for bad in ("--ef=NO_FAIL=1\n", "--ef=EF_NO_FAIL\n", "--require=\n"):
        with pytest.raises(OptionError):
            merge(parse(bad + HEAD, path="t.pkt"))


# -- building and matching ----------------------------------------------------------------


def test_fragments_reassemble_to_the_whole_datagram() -> None:
    data = bytes(range(200)) * 10
    whole = bytes(IP(src="192.0.2.1", dst="192.168.0.1", id=7) / UDP(sport=1, dport=2) / data)
    pieces = [
        fragment(whole, sx.IpInfo(frag_offset=off, frag_length=length))
        for off, length in ((0, 1480), (1480, None))
    ]
    first, last = IP(pieces[0]), IP(pieces[1])
    assert (first.frag, int(first.flags), len(bytes(first.payload))) == (0, 1, 1480)
    assert (last.frag * 8, int(last.flags), last.id) == (1480, 0, 7)
    ordered = sorted((IP(p) for p in reversed(pieces)), key=lambda ip: int(ip.frag))
    rebuilt = b"".join(bytes(ip.payload) for ip in ordered)
    assert rebuilt == bytes(IP(whole).payload)


def test_igmp_v2_report_bytes() -> None:
    body = sx.IgmpBody("v2_report", "239.1.2.3")
    packet = IP(build_igmp(body, None, RunOptions()))
    raw = bytes(packet.payload)
    assert (packet.dst, packet.ttl, packet.proto, packet.options[0].option) == ("239.1.2.3", 1, 2, 20)
    assert raw[:2] == b"\x16\x00" and raw[4:] == socket.inet_aton("239.1.2.3") and checksum(raw) == 0


@pytest.mark.parametrize(
    "text",
    [
        "igmp v1_query",
        "igmp v2_query 239.1.2.3 max_resp 10",
        "igmp v3_query 0.0.0.0 max_resp 100 qrv 2 qqic 125 sources [198.51.100.7, 198.51.100.8]",
        "igmp v2_report 239.1.2.3",
        "igmp leave 239.1.2.3",
        "igmp v3_report [is_ex 239.1.2.3 [], block 239.1.2.4 [198.51.100.7]]",
    ],
)
def test_igmp_round_trip_matches_itself(text: str) -> None:
    body = line("> " + text).body
    assert isinstance(body, sx.IgmpBody)
    packet = build_igmp(body, None, RunOptions())
    assert match_igmp(body, packet) == []
    got = parse_igmp(bytes(IP(packet).payload))
    assert got.kind == body.kind and got.checksum_ok


def test_igmp_mismatch_names_the_field() -> None:
    sent = build_igmp(line("> igmp v3_report [to_ex 239.1.2.3 []]").body, None, RunOptions())  # type: ignore[arg-type]
    wanted = line("> igmp v3_report [to_in 239.1.2.3 []]").body
    assert [d.name for d in match_igmp(wanted, sent)] == ["igmp.records"]  # type: ignore[arg-type]
    assert [d.name for d in match_igmp(sx.IgmpBody("leave", "239.1.2.3"), sent)] == ["igmp.type"]


def test_membership_structs() -> None:
    group, here = InAddr("239.1.2.3"), InAddr("192.168.0.1")
    assert _mreq({"imr_multiaddr": group, "imr_interface": here}) == socket.inet_aton(
        group
    ) + socket.inet_aton(here)
    assert _mreq({"imr_multiaddr": group, "imr_address": 0, "imr_ifindex": 2}) == (
        socket.inet_aton(group) + bytes(4) + struct.pack("i", 2)
    )
    source = _mreq({"imr_multiaddr": group, "imr_interface": here, "imr_sourceaddr": InAddr("198.51.100.7")})
    assert len(source) == 12 and source.endswith(socket.inet_aton("198.51.100.7"))


# -- on the targets -----------------------------------------------------------------------

MULTICAST = """\
// Joining a group sends an IGMPv3 report; the group's datagrams arrive; a v2 query is
// answered with a v2 report (RFC 3376 §5.1, §7.2.1).
0    socket(..., SOCK_DGRAM, IPPROTO_UDP) = 3
+0   bind(3, {sa_family=AF_INET, sin_port=htons(8080), sin_addr=inet_addr("0.0.0.0")}, 16) = 0
+0   setsockopt(3, IPPROTO_IP, IP_ADD_MEMBERSHIP, {imr_multiaddr=inet_addr("239.1.2.3"), \
imr_interface=inet_addr("192.168.0.1")}, 8) = 0
+0~+1 > (dst 224.0.0.22, ttl 1) igmp v3_report [to_ex 239.1.2.3 []]
+0   < (dst 239.1.2.3) udp 40000>8080 (100)
+0   read(3, ..., 4000) = 100
+0   < igmp v2_query max_resp 10
+0~+1.1 > (dst 239.1.2.3) igmp v2_report 239.1.2.3
"""


def test_multicast_join_report_and_query_on_linux(tmp_path: Path) -> None:
    target = get_target("linux")
    ok, why = target.available()
    if not ok:
        pytest.skip(f"linux unavailable: {why}")
    script = tmp_path / "join.pkt"
    script.write_text(MULTICAST.replace("\\\n", ""))
    result = run_case(script, target)
    assert result.verdict is Verdict.PASS, result.reason


def test_ef_options_are_noted_on_a_target_without_onload(tmp_path: Path) -> None:
    target = get_target("linux")
    ok, why = target.available()
    if not ok:
        pytest.skip(f"linux unavailable: {why}")
    script = tmp_path / "ef.pkt"
    script.write_text("--ef=EF_MAX_ENDPOINTS=4\n" + HEAD)
    result = run_case(script, target)
    assert result.verdict is Verdict.PASS, result.reason
    assert any("EF_MAX_ENDPOINTS=4: EF_* options are Onload's" in e.text for e in result.trace)


@pytest.mark.parametrize(
    ("option", "verdict", "reason"),
    [
        ("EF_TCP_FIN_TIMEOUT=5", Verdict.PASS, ""),
        ("EF_MAX_ENDPOINTS=3", Verdict.ERROR, "EF_MAX_ENDPOINTS=3: "),
        ("EF_NO_FAIL=yes", Verdict.ERROR, "EF_NO_FAIL=yes: "),
        ("EF_BOGUS=1", Verdict.ERROR, "unknown EF_* option(s): EF_BOGUS"),
    ],
)
def test_ef_options_on_refstack(tmp_path: Path, option: str, verdict: Verdict, reason: str) -> None:
    script = tmp_path / "ef.pkt"
    script.write_text(f"--ef={option}\n" + HEAD)
    result = run_case(script, get_target("refstack"))
    assert result.verdict is verdict, result.reason
    assert reason in result.reason


def test_outbound_checksums_are_verified() -> None:
    from scapy.layers.inet import ICMP, TCP

    from conformance.run.packets import checksum_diffs

    good = [
        bytes(IP(src="192.168.0.1", dst="192.0.2.1") / TCP(flags="A") / b"data"),
        bytes(IP(src="192.168.0.1", dst="192.0.2.1") / UDP() / b"data"),
        bytes(IP(src="192.168.0.1", dst="192.0.2.1") / UDP(chksum=0) / b"data"),  # RFC 768: none
        bytes(IP(src="192.168.0.1", dst="192.0.2.1") / ICMP() / b"data"),
    ]
    assert [checksum_diffs(p) for p in good] == [[], [], [], []]
    names = []
    for packet, at in ((good[0], -1), (good[1], -1), (good[3], -1), (good[0], 11)):
        broken = bytearray(packet)
        broken[at] ^= 0x40
        names.append([d.name for d in checksum_diffs(bytes(broken))])
    assert names == [["tcp.checksum"], ["udp.checksum"], ["icmp.checksum"], ["ip.checksum"]]
