"""IGMP v1/v2 (RFC 1112 App. I, RFC 2236 §2) and v3 (RFC 3376 §4): golden bytes, round
trips, scapy cross-checks both ways, traps and a robustness check."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.igmp import (
    IGMP,
    IGMP_MQ,
    IGMPv2_LG,
    IGMPv2_MR,
    IGMPv3_MQ,
    IGMPv3_MR,
    IGMPv3_MR_Group,
)
from scapy.packet import Raw
from scapy.utils import checksum as scapy_checksum

from refstack.wire.addresses import ipv4_addr
from refstack.wire.errors import WireError
from refstack.wire.igmp import (
    ALL_HOSTS,
    ALL_ROUTERS,
    ALLOW_NEW_SOURCES,
    BLOCK_OLD_SOURCES,
    CHANGE_TO_EXCLUDE_MODE,
    IGMPV3_ROUTERS,
    MAX_CODED_VALUE,
    MEMBERSHIP_QUERY,
    MODE_IS_EXCLUDE,
    MODE_IS_INCLUDE,
    V1_REPORT,
    V2_LEAVE,
    V2_REPORT,
    V3_REPORT,
    GroupRecord,
    IgmpMessage,
    IgmpV3Query,
    IgmpV3Report,
    build_igmp,
    build_igmp_v3_query,
    build_igmp_v3_report,
    decode_max_resp_code,
    encode_max_resp_code,
    parse_igmp,
)
from refstack.wire.ipv4 import ROUTER_ALERT, Ipv4Packet, build_ipv4
from tests.wire.reference import word_loop_checksum

GROUP = ipv4_addr("239.1.2.3")


def _with_checksum(template_hex: str) -> bytes:
    """Fill bytes 2-3 with the RFC 1071 word-loop checksum (independent of refstack)."""
    raw = bytearray.fromhex(template_hex)
    raw[2:4] = word_loop_checksum(bytes(raw)).to_bytes(2, "big")
    return bytes(raw)


# --- golden bytes ----------------------------------------------------------------------

# What Linux sends on IP_ADD_MEMBERSHIP for 239.1.2.3 (to 224.0.0.22): one record,
# CHANGE_TO_EXCLUDE_MODE with no sources (RFC 3376 §5.1 "join" = TO_EX({})).
GOLDEN_V3_JOIN = _with_checksum("2200 0000 0000 0001 04 00 0000 ef010203")
GOLDEN_V2_REPORT = _with_checksum("16 00 0000 ef010203")
GOLDEN_V2_LEAVE = _with_checksum("17 00 0000 ef010203")
GOLDEN_V2_GENERAL_QUERY = _with_checksum("11 64 0000 00000000")  # Max Resp Time 10 s
GOLDEN_V1_QUERY = _with_checksum("11 00 0000 00000000")
GOLDEN_V1_REPORT = _with_checksum("12 00 0000 ef010203")
# IGMPv3 general query with the RFC 3376 §8 defaults: 10 s, QRV 2, QQIC 125 s, no sources.
GOLDEN_V3_GENERAL_QUERY = _with_checksum("11 64 0000 00000000 02 7d 0000")
# Group-and-source-specific query: 1 s, S flag, QRV 2, sources 192.0.2.1 and 192.0.2.2.
GOLDEN_V3_GSS_QUERY = _with_checksum("11 0a 0000 ef010203 0a 7d 0002 c0000201 c0000202")
# A report with two records: IS_IN(239.1.2.3, {192.0.2.1, 192.0.2.2}), BLOCK(239.1.2.4, {192.0.2.3}).
GOLDEN_V3_REPORT = _with_checksum(
    "22 00 0000 0000 0002 01 00 0002 ef010203 c0000201 c0000202 06 00 0001 ef010204 c0000203"
)

ALL_GOLDEN = [
    GOLDEN_V3_JOIN,
    GOLDEN_V2_REPORT,
    GOLDEN_V2_LEAVE,
    GOLDEN_V2_GENERAL_QUERY,
    GOLDEN_V1_QUERY,
    GOLDEN_V1_REPORT,
    GOLDEN_V3_GENERAL_QUERY,
    GOLDEN_V3_GSS_QUERY,
    GOLDEN_V3_REPORT,
]


def test_golden_checksums_match_hand_values() -> None:
    # The same values tcpdump shows for these messages.
    assert GOLDEN_V3_JOIN.hex() == "2200e8f90000000104000000ef010203"
    assert GOLDEN_V2_REPORT.hex() == "1600f8faef010203"
    assert GOLDEN_V2_LEAVE.hex() == "1700f7faef010203"
    assert GOLDEN_V2_GENERAL_QUERY.hex() == "1164ee9b00000000"
    assert GOLDEN_V3_GENERAL_QUERY.hex() == "1164ec1e00000000027d0000"
    for g in ALL_GOLDEN:
        assert parse_igmp(g).checksum_ok()


def test_well_known_groups() -> None:
    assert ipv4_addr("224.0.0.1") == ALL_HOSTS
    assert ipv4_addr("224.0.0.2") == ALL_ROUTERS
    assert ipv4_addr("224.0.0.22") == IGMPV3_ROUTERS


def test_golden_v3_join() -> None:
    m = parse_igmp(GOLDEN_V3_JOIN)
    assert isinstance(m, IgmpV3Report)
    assert (m.type, m.checksum) == (V3_REPORT, 0xE8F9)
    assert m.records == (GroupRecord(CHANGE_TO_EXCLUDE_MODE, GROUP, (), b""),)
    assert m.records[0].name == "TO_EX" and m.additional_data == b""
    assert bytes(m) == GOLDEN_V3_JOIN and "TO_EX(239.1.2.3)" in repr(m)
    assert build_igmp_v3_report([GroupRecord(CHANGE_TO_EXCLUDE_MODE, GROUP)]) == GOLDEN_V3_JOIN


def test_golden_v3_join_in_its_ipv4_datagram() -> None:
    # Linux: TOS 0xc0, TTL 1, DF, Router Alert, to 224.0.0.22 (RFC 3376 §4).
    pkt = build_ipv4(
        ipv4_addr("192.168.0.1"),
        IGMPV3_ROUTERS,
        2,
        GOLDEN_V3_JOIN,
        ttl=1,
        tos=0xC0,
        dont_fragment=True,
        options=[ROUTER_ALERT],
    )
    ip = Ipv4Packet(pkt)
    assert ip.total_length == 40 and ip.options == (ROUTER_ALERT,)
    m = parse_igmp(ip.payload)
    assert isinstance(m, IgmpV3Report) and m.records[0].group == GROUP


@pytest.mark.parametrize(
    ("raw", "mtype", "mrt", "group", "version"),
    [
        (GOLDEN_V2_REPORT, V2_REPORT, 0, GROUP, 2),
        (GOLDEN_V2_LEAVE, V2_LEAVE, 0, GROUP, 2),
        (GOLDEN_V2_GENERAL_QUERY, MEMBERSHIP_QUERY, 100, bytes(4), 2),
        (GOLDEN_V1_QUERY, MEMBERSHIP_QUERY, 0, bytes(4), 1),
        (GOLDEN_V1_REPORT, V1_REPORT, 0, GROUP, 1),
    ],
)
def test_golden_v1_v2(raw: bytes, mtype: int, mrt: int, group: bytes, version: int) -> None:
    m = parse_igmp(raw)
    assert isinstance(m, IgmpMessage)
    assert (m.type, m.max_resp_time, m.group, m.version) == (mtype, mrt, group, version)
    assert m.checksum == int.from_bytes(raw[2:4], "big") and m.checksum_ok()
    assert m.additional_data == b"" and bytes(m) == raw
    assert f"v{version}" in repr(m)
    assert build_igmp(mtype, group, max_resp_time=mrt) == raw


def test_golden_v3_general_query() -> None:
    q = parse_igmp(GOLDEN_V3_GENERAL_QUERY)
    assert isinstance(q, IgmpV3Query)
    assert (q.type, q.checksum, q.group) == (MEMBERSHIP_QUERY, 0xEC1E, bytes(4))
    assert (q.max_resp_code, q.max_resp_time) == (100, 100)
    assert (q.s_flag, q.qrv, q.qqic, q.query_interval) == (False, 2, 125, 125)
    assert q.sources == () and q.additional_data == b"" and q.checksum_ok()
    assert build_igmp_v3_query() == GOLDEN_V3_GENERAL_QUERY


def test_golden_v3_group_and_source_specific_query() -> None:
    q = parse_igmp(GOLDEN_V3_GSS_QUERY)
    assert isinstance(q, IgmpV3Query)
    assert (q.group, q.max_resp_time, q.s_flag, q.qrv) == (GROUP, 10, True, 2)
    assert q.sources == (ipv4_addr("192.0.2.1"), ipv4_addr("192.0.2.2"))
    assert " S " in repr(q)
    rebuilt = build_igmp_v3_query(GROUP, max_resp_code=10, s_flag=True, sources=q.sources)
    assert rebuilt == GOLDEN_V3_GSS_QUERY


def test_golden_v3_report_two_records() -> None:
    r = parse_igmp(GOLDEN_V3_REPORT)
    assert isinstance(r, IgmpV3Report)
    want = (
        GroupRecord(MODE_IS_INCLUDE, GROUP, (ipv4_addr("192.0.2.1"), ipv4_addr("192.0.2.2"))),
        GroupRecord(BLOCK_OLD_SOURCES, ipv4_addr("239.1.2.4"), (ipv4_addr("192.0.2.3"),)),
    )
    assert r.records == want and r.checksum_ok()
    assert build_igmp_v3_report(want) == GOLDEN_V3_REPORT


def test_max_resp_code_examples() -> None:
    # RFC 3376 §4.1.1: codes below 128 are literal; 0x80 is 128; 0xff is 31744.
    assert [decode_max_resp_code(c) for c in (0, 100, 127, 0x80, 0x8F, 0x90, 0xFF)] == [
        0,
        100,
        127,
        128,
        248,
        256,
        31744,
    ]
    assert encode_max_resp_code(255) == 0x8F  # 248, the nearest not above 255
    assert encode_max_resp_code(256) == 0x90
    assert encode_max_resp_code(MAX_CODED_VALUE) == 0xFF


def test_max_resp_code_is_a_bijection_on_codes() -> None:
    for code in range(256):
        assert encode_max_resp_code(decode_max_resp_code(code)) == code


@given(st.integers(0, MAX_CODED_VALUE))
def test_encode_max_resp_code_nearest_not_above(value: int) -> None:
    code = encode_max_resp_code(value)
    assert decode_max_resp_code(code) <= value
    if code < 0xFF:
        assert decode_max_resp_code(code + 1) > value
    # scapy's IGMPv3 query encoder agrees.
    assert bytes(IGMPv3_MQ(mrcode=value))[1] == code


def test_additional_data_is_kept_and_checksummed() -> None:
    m = parse_igmp(_with_checksum("16 00 0000 ef010203 deadbeef"))
    assert isinstance(m, IgmpMessage) and m.additional_data == bytes.fromhex("deadbeef") and m.checksum_ok()
    q = parse_igmp(_with_checksum("11 64 0000 00000000 02 7d 0000 aabb"))
    assert isinstance(q, IgmpV3Query) and q.additional_data == b"\xaa\xbb" and q.checksum_ok()
    r = parse_igmp(GOLDEN_V3_JOIN + b"\x01")
    assert isinstance(r, IgmpV3Report) and r.additional_data == b"\x01" and not r.checksum_ok()


def test_unknown_type_gives_an_igmp_message() -> None:
    # RFC 4286 multicast router advertisement and a made-up type: left to the host to ignore.
    for t in (0x30, 0x99):
        m = parse_igmp(build_igmp(t, bytes(4)))
        assert isinstance(m, IgmpMessage) and m.type == t and m.version == 2
        assert f"type-0x{t:02x}" in repr(m)


def test_aux_data_record() -> None:
    rec = GroupRecord(MODE_IS_EXCLUDE, GROUP, (ipv4_addr("10.0.0.1"),), b"abcdefgh")
    raw = build_igmp_v3_report([rec, GroupRecord(ALLOW_NEW_SOURCES, GROUP)])
    assert raw[9] == 2  # Aux Data Len counts 32-bit words
    r = IgmpV3Report(raw)
    assert r.records[0] == rec and r.records[1].name == "ALLOW" and r.checksum_ok()


def test_unknown_record_type_kept() -> None:
    r = IgmpV3Report(build_igmp_v3_report([GroupRecord(9, GROUP)]))
    assert r.records[0].record_type == 9 and r.records[0].name == "record-9"


def test_bad_checksum_detected_and_override_kept() -> None:
    for raw in (
        build_igmp(V2_REPORT, GROUP, checksum_value=0x1234),
        build_igmp_v3_query(checksum_value=0x1234),
        build_igmp_v3_report([], checksum_value=0x1234),
    ):
        m = parse_igmp(raw)
        assert m.checksum == 0x1234 and not m.checksum_ok()


def test_memoryview_and_bytearray_accepted() -> None:
    assert bytes(parse_igmp(memoryview(GOLDEN_V3_REPORT))) == GOLDEN_V3_REPORT
    assert bytes(IgmpV3Query(bytearray(GOLDEN_V3_GSS_QUERY))) == GOLDEN_V3_GSS_QUERY
    assert bytes(IgmpMessage(memoryview(GOLDEN_V2_LEAVE))) == GOLDEN_V2_LEAVE


# --- traps -----------------------------------------------------------------------------


@pytest.mark.parametrize("n", range(8))
def test_trap_shorter_than_8(n: int) -> None:
    for parse in (parse_igmp, IgmpMessage):
        with pytest.raises(WireError) as e:
            parse(GOLDEN_V2_REPORT[:n])
        assert (e.value.field, e.value.offset) == ("igmp", 0)


@pytest.mark.parametrize("n", [9, 10, 11])
def test_trap_query_of_9_to_11_bytes(n: int) -> None:
    # RFC 3376 §7.1: neither an 8-byte v1/v2 query nor a >= 12-byte v3 one.
    raw = _with_checksum("11 64 0000 00000000" + "00" * (n - 8))
    for parse in (parse_igmp, IgmpMessage):
        with pytest.raises(WireError) as e:
            parse(raw)
        assert (e.value.field, e.value.offset) == ("igmp.query.length", 8)


def test_trap_v3_query_shorter_than_12() -> None:
    with pytest.raises(WireError) as e:
        IgmpV3Query(GOLDEN_V2_GENERAL_QUERY)
    assert (e.value.field, e.value.offset) == ("igmp.v3_query", 0)


@pytest.mark.parametrize(("count", "present"), [(1, 3), (1, 0), (2, 4), (0xFFFF, 8)])
def test_trap_v3_query_truncated_source_list(count: int, present: int) -> None:
    raw = _with_checksum(f"11 64 0000 ef010203 02 7d {count:04x}" + "c0" * present)
    with pytest.raises(WireError) as e:
        parse_igmp(raw)
    assert (e.value.field, e.value.offset) == ("igmp.v3_query.sources", 10)


def test_trap_v3_report_truncated_source_list_in_second_record() -> None:
    # Record 0 is 8 + 4 bytes at offset 8; record 1 at offset 20 claims 3 sources, has 2.
    raw = _with_checksum(
        "22 00 0000 0000 0002 01 00 0001 ef010203 c0000201 02 00 0003 ef010204 c0000201 c0000202"
    )
    with pytest.raises(WireError) as e:
        parse_igmp(raw)
    assert (e.value.field, e.value.offset) == ("igmp.v3_report.record[1].sources", 20 + 2)


def test_trap_v3_report_truncated_aux_data() -> None:
    # Record 0 claims 2 words of aux data after its source; only 1 word follows.
    raw = _with_checksum("22 00 0000 0000 0001 01 02 0001 ef010203 c0000201 61626364")
    with pytest.raises(WireError) as e:
        parse_igmp(raw)
    assert (e.value.field, e.value.offset) == ("igmp.v3_report.record[0].aux_data", 8 + 1)


def test_trap_v3_report_missing_record() -> None:
    # Two records announced, one present, plus 4 stray bytes: record 1's header does not fit.
    raw = GOLDEN_V3_JOIN[:7] + b"\x02" + GOLDEN_V3_JOIN[8:] + b"\x01\x00\x00\x00"
    with pytest.raises(WireError) as e:
        parse_igmp(raw)
    assert (e.value.field, e.value.offset) == ("igmp.v3_report.record[1]", 16)


def test_trap_wrong_type_for_v3_views() -> None:
    with pytest.raises(WireError) as e:
        IgmpV3Query(GOLDEN_V3_JOIN)
    assert (e.value.field, e.value.offset) == ("igmp.type", 0)
    with pytest.raises(WireError) as e:
        IgmpV3Report(GOLDEN_V3_GENERAL_QUERY)
    assert (e.value.field, e.value.offset) == ("igmp.type", 0)


def test_builders_reject_impossible_values() -> None:
    cases: list[tuple[str, Any]] = [
        ("igmp.type", lambda: build_igmp(256, GROUP)),
        ("igmp.max_resp_time", lambda: build_igmp(MEMBERSHIP_QUERY, GROUP, max_resp_time=256)),
        ("igmp.group", lambda: build_igmp(V2_REPORT, b"\0\0\0")),
        ("igmp.checksum", lambda: build_igmp(V2_REPORT, GROUP, checksum_value=-1)),
        ("igmp.qrv", lambda: build_igmp_v3_query(qrv=8)),
        ("igmp.max_resp_code", lambda: build_igmp_v3_query(max_resp_code=256)),
        ("igmp.qqic", lambda: build_igmp_v3_query(qqic=-1)),
        ("igmp.v3_query.sources[1]", lambda: build_igmp_v3_query(sources=[GROUP, b"\0"])),
        ("igmp.v3_report.record[0].record_type", lambda: build_igmp_v3_report([GroupRecord(256, GROUP)])),
        ("igmp.v3_report.record[0].group", lambda: build_igmp_v3_report([GroupRecord(1, b"")])),
        (
            "igmp.v3_report.record[1].aux_data",
            lambda: build_igmp_v3_report([GroupRecord(1, GROUP), GroupRecord(1, GROUP, (), b"abc")]),
        ),
        (
            "igmp.v3_report.record[0].aux_data",
            lambda: build_igmp_v3_report([GroupRecord(1, GROUP, (), bytes(1024))]),
        ),
        (
            "igmp.v3_report.record[0].sources[0]",
            lambda: build_igmp_v3_report([GroupRecord(1, GROUP, (b"",))]),
        ),
        ("igmp.max_resp_time", lambda: encode_max_resp_code(MAX_CODED_VALUE + 1)),
        ("igmp.max_resp_code", lambda: decode_max_resp_code(256)),
    ]
    for field, call in cases:
        with pytest.raises(WireError) as e:
            call()
        assert (e.value.field, e.value.offset) == (field, None)


# --- hypothesis round trips -----------------------------------------------------------

addrs = st.binary(min_size=4, max_size=4)
v12_types = st.integers(0, 255).filter(lambda t: t != V3_REPORT)


@st.composite
def group_records(draw: st.DrawFn, *, aux: bool = True) -> GroupRecord:
    words = draw(st.integers(0, 3)) if aux else 0
    return GroupRecord(
        draw(st.integers(0, 255)),
        draw(addrs),
        tuple(draw(st.lists(addrs, max_size=5))),
        draw(st.binary(min_size=4 * words, max_size=4 * words)),
    )


@given(t=v12_types, group=addrs, mrt=st.integers(0, 255))
def test_v1_v2_round_trip(t: int, group: bytes, mrt: int) -> None:
    raw = build_igmp(t, group, max_resp_time=mrt)
    m = parse_igmp(raw)
    assert isinstance(m, IgmpMessage)
    assert (m.type, m.group, m.max_resp_time) == (t, group, mrt)
    assert m.checksum_ok() and word_loop_checksum(raw) == 0
    assert build_igmp(m.type, m.group, max_resp_time=m.max_resp_time) == raw


@given(
    group=addrs,
    code=st.integers(0, 255),
    s_flag=st.booleans(),
    qrv=st.integers(0, 7),
    qqic=st.integers(0, 255),
    sources=st.lists(addrs, max_size=8),
)
def test_v3_query_round_trip(
    group: bytes, code: int, s_flag: bool, qrv: int, qqic: int, sources: list[bytes]
) -> None:
    raw = build_igmp_v3_query(group, max_resp_code=code, s_flag=s_flag, qrv=qrv, qqic=qqic, sources=sources)
    q = parse_igmp(raw)
    assert isinstance(q, IgmpV3Query)
    assert (q.group, q.max_resp_code, q.s_flag, q.qrv, q.qqic, q.sources) == (
        group,
        code,
        s_flag,
        qrv,
        qqic,
        tuple(sources),
    )
    assert q.max_resp_time == decode_max_resp_code(code) and q.query_interval == decode_max_resp_code(qqic)
    assert q.checksum_ok() and word_loop_checksum(raw) == 0
    rebuilt = build_igmp_v3_query(
        q.group, max_resp_code=q.max_resp_code, s_flag=q.s_flag, qrv=q.qrv, qqic=q.qqic, sources=q.sources
    )
    assert rebuilt == raw


@given(records=st.lists(group_records(), max_size=5))
def test_v3_report_round_trip(records: list[GroupRecord]) -> None:
    raw = build_igmp_v3_report(records)
    r = parse_igmp(raw)
    assert isinstance(r, IgmpV3Report)
    assert r.records == tuple(records) and r.additional_data == b""
    assert r.checksum_ok() and word_loop_checksum(raw) == 0
    assert build_igmp_v3_report(r.records) == raw


# --- scapy cross-checks (scapy.layers.igmp; scapy.contrib.igmp/igmpv3 are deprecated
# aliases of it in scapy 2.8) --------------------------------------------------------


def _dotted(addr: bytes) -> str:
    return ".".join(str(b) for b in addr)


def _scapy_checksum(raw: bytes) -> int:
    """scapy's checksum routine over the message with the checksum field zeroed."""
    return int(scapy_checksum(raw[:2] + b"\0\0" + raw[4:]))


@given(
    t=st.sampled_from([MEMBERSHIP_QUERY, V1_REPORT, V2_REPORT, V2_LEAVE]),
    group=addrs,
    mrt=st.integers(0, 255),
)
def test_v1_v2_ours_parsed_by_scapy(t: int, group: bytes, mrt: int) -> None:
    raw = build_igmp(t, group, max_resp_time=mrt)
    s = IGMP(raw)
    assert (s.type, s.mrcode, s.gaddr) == (t, mrt, _dotted(group))
    assert s.chksum == IgmpMessage(raw).checksum == _scapy_checksum(raw)


@given(
    group=addrs,
    code=st.integers(0, 255),
    s_flag=st.booleans(),
    qrv=st.integers(0, 7),
    qqic=st.integers(0, 255),
    sources=st.lists(addrs, max_size=6),
)
def test_v3_query_ours_parsed_by_scapy(
    group: bytes, code: int, s_flag: bool, qrv: int, qqic: int, sources: list[bytes]
) -> None:
    raw = build_igmp_v3_query(group, max_resp_code=code, s_flag=s_flag, qrv=qrv, qqic=qqic, sources=sources)
    s = IGMP(raw)
    assert isinstance(s, IGMPv3_MQ)
    # scapy keeps the decoded time internally and shows the code as the attribute.
    assert (s.mrcode, s.getfieldval("mrcode")) == (code, decode_max_resp_code(code))
    assert (s.gaddr, s.s, s.qrv, s.qqic, s.numsrc) == (_dotted(group), int(s_flag), qrv, qqic, len(sources))
    assert list(s.srcaddrs or []) == [_dotted(a) for a in sources]
    assert s.chksum == _scapy_checksum(raw)


# scapy 2.8 ignores Aux Data Len when dissecting a group record, so the records here
# carry no auxiliary data (the scapy-built direction below does cover it).
@given(records=st.lists(group_records(aux=False), max_size=4))
def test_v3_report_ours_parsed_by_scapy(records: list[GroupRecord]) -> None:
    raw = build_igmp_v3_report(records)
    s = IGMP(raw)
    assert isinstance(s, IGMPv3_MR)
    assert s.numgrp == len(records) and len(s.records) == len(records)
    for got, want in zip(s.records, records, strict=True):
        assert (got.rtype, got.auxdlen, got.numsrc, got.maddr) == (
            want.record_type,
            0,
            len(want.sources),
            _dotted(want.group),
        )
        assert list(got.srcaddrs) == [_dotted(a) for a in want.sources]
    assert s.chksum == _scapy_checksum(raw)


@given(kind=st.sampled_from(["query", "report", "leave"]), group=addrs, mrt=st.integers(0, 255))
def test_v2_scapy_built_parsed_by_ours(kind: str, group: bytes, mrt: int) -> None:
    if kind == "query":
        raw, t = bytes(IGMP_MQ(mrcode=mrt, gaddr=_dotted(group))), MEMBERSHIP_QUERY
    elif kind == "report":
        raw, t, mrt = bytes(IGMPv2_MR(gaddr=_dotted(group))), V2_REPORT, 0
    else:
        raw, t, mrt = bytes(IGMPv2_LG(gaddr=_dotted(group))), V2_LEAVE, 0
    m = parse_igmp(raw)
    assert isinstance(m, IgmpMessage)
    assert (m.type, m.max_resp_time, m.group) == (t, mrt, group)
    assert m.checksum_ok()
    assert build_igmp(t, group, max_resp_time=mrt) == raw


@given(
    group=addrs,
    mrt=st.integers(0, MAX_CODED_VALUE),
    s_flag=st.booleans(),
    qrv=st.integers(0, 7),
    qqic=st.integers(0, 255),
    sources=st.lists(addrs, max_size=6),
)
def test_v3_query_scapy_built_parsed_by_ours(
    group: bytes, mrt: int, s_flag: bool, qrv: int, qqic: int, sources: list[bytes]
) -> None:
    s = IGMPv3_MQ(
        mrcode=mrt,
        gaddr=_dotted(group),
        s=int(s_flag),
        qrv=qrv,
        qqic=qqic,
        srcaddrs=[_dotted(a) for a in sources],
    )
    raw = bytes(s)
    q = parse_igmp(raw)
    assert isinstance(q, IgmpV3Query)
    assert q.max_resp_code == encode_max_resp_code(mrt)
    assert q.max_resp_time <= mrt
    assert (q.group, q.s_flag, q.qrv, q.qqic, q.sources) == (group, s_flag, qrv, qqic, tuple(sources))
    assert q.checksum_ok()


@st.composite
def scapy_records(draw: st.DrawFn) -> tuple[Any, GroupRecord]:
    rec = draw(group_records())
    s = IGMPv3_MR_Group(
        rtype=rec.record_type,
        auxdlen=len(rec.aux_data) // 4,
        maddr=_dotted(rec.group),
        srcaddrs=[_dotted(a) for a in rec.sources],
    )
    return (s / Raw(rec.aux_data) if rec.aux_data else s), rec


@given(pairs=st.lists(scapy_records(), max_size=4))
def test_v3_report_scapy_built_parsed_by_ours(pairs: list[tuple[Any, GroupRecord]]) -> None:
    raw = bytes(IGMPv3_MR(records=[p[0] for p in pairs]))
    r = parse_igmp(raw)
    assert isinstance(r, IgmpV3Report)
    assert r.records == tuple(p[1] for p in pairs)
    assert r.checksum_ok() and r.additional_data == b""
    assert build_igmp_v3_report(r.records) == raw


def test_scapy_built_join_matches_golden() -> None:
    assert bytes(IGMPv3_MR(records=[IGMPv3_MR_Group(rtype=4, maddr="239.1.2.3")])) == GOLDEN_V3_JOIN


# --- robustness -----------------------------------------------------------------------


def _exercise(m: IgmpMessage | IgmpV3Query | IgmpV3Report) -> None:
    """Every getter must work on anything a constructor accepted."""
    assert isinstance(m.type, int) and isinstance(m.checksum, int)
    m.checksum_ok()
    repr(m)
    if isinstance(m, IgmpMessage):
        assert m.version in (1, 2) and len(m.group) == 4
        assert isinstance(m.max_resp_time, int) and len(m.additional_data) == len(bytes(m)) - 8
    elif isinstance(m, IgmpV3Query):
        assert 0 <= m.max_resp_time <= MAX_CODED_VALUE and 0 <= m.query_interval <= MAX_CODED_VALUE
        assert 12 + 4 * len(m.sources) + len(m.additional_data) == len(bytes(m))
        assert (m.s_flag, m.qrv, m.qqic, m.max_resp_code, m.group) is not None
    else:
        size = sum(8 + 4 * len(r.sources) + len(r.aux_data) for r in m.records)
        assert 8 + size + len(m.additional_data) == len(bytes(m))
        assert all(r.name for r in m.records)


def _try_all(data: bytes) -> None:
    for view in (parse_igmp, IgmpMessage, IgmpV3Query, IgmpV3Report):
        try:
            m = view(data)
        except WireError:
            continue
        _exercise(m)


@given(st.binary(max_size=64))
def test_random_bytes_give_view_or_wire_error(data: bytes) -> None:
    _try_all(data)


@given(
    base=st.sampled_from(ALL_GOLDEN),
    flips=st.lists(st.tuples(st.integers(0, 39), st.integers(0, 255)), max_size=4),
    cut=st.integers(0, 40),
)
def test_mutated_messages_give_view_or_wire_error(
    base: bytes, flips: list[tuple[int, int]], cut: int
) -> None:
    raw = bytearray(base)
    for i, v in flips:
        if i < len(raw):
            raw[i] = v
    _try_all(bytes(raw[:cut]))
