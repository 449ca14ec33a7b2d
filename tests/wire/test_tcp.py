"""TCP (RFC 9293 §3.1) and its options: golden bytes, round trips, scapy both ways, traps."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, TCPOptions

from refstack.wire.addresses import ipv4_addr
from refstack.wire.errors import WireError
from refstack.wire.tcp import ACK, AE, FIN, PSH, RST, SYN, TcpFlag, TcpSegment, build_tcp, flags_str
from refstack.wire.tcp_options import (
    EOL,
    NOP,
    SACK_PERMITTED,
    Mss,
    Sack,
    TcpOption,
    Timestamps,
    UnknownOption,
    WindowScale,
    encode_options,
    parse_options,
)
from tests.wire.reference import pseudo_header, word_loop_checksum

LOCAL = ipv4_addr("192.168.0.1")
REMOTE = ipv4_addr("192.0.2.1")

# A Linux SYN: mss 1460, sackOK, TS val 1000 ecr 0, nop, wscale 7 (that option order).
SYN_NO_CSUM = bytes.fromhex(
    "9c401f901234567800000000a002faf000000000020405b40402080a000003e80000000001030307"
)


def golden_syn() -> bytes:
    c = word_loop_checksum(pseudo_header(LOCAL, REMOTE, 6, len(SYN_NO_CSUM)) + SYN_NO_CSUM)
    return SYN_NO_CSUM[:16] + c.to_bytes(2, "big") + SYN_NO_CSUM[18:]


def test_golden_linux_syn_fields() -> None:
    s = TcpSegment(golden_syn())
    assert (s.src_port, s.dst_port, s.seq, s.ack) == (40000, 8080, 0x12345678, 0)
    assert (s.header_length, s.flags, s.window, s.urgent_pointer) == (40, SYN, 64240, 0)
    assert s.options == (Mss(1460), SACK_PERMITTED, Timestamps(1000, 0), NOP, WindowScale(7))
    assert (s.mss, s.window_scale, s.sack_permitted, s.timestamps) == (1460, 7, True, Timestamps(1000, 0))
    assert s.sack_blocks == () and s.payload == b"" and s.segment_length == 1
    assert s.checksum_ok(LOCAL, REMOTE)
    assert not s.checksum_ok(REMOTE, ipv4_addr("192.0.2.2"))


def test_golden_linux_syn_rebuilt_exactly() -> None:
    s = TcpSegment(golden_syn())
    out = build_tcp(
        LOCAL,
        REMOTE,
        s.src_port,
        s.dst_port,
        seq=s.seq,
        ack=s.ack,
        flags=s.flags,
        window=s.window,
        options=s.options,
    )
    assert out == golden_syn()


def test_golden_data_segment_with_sack_blocks() -> None:
    raw = (
        bytes.fromhex(
            "1f909c400000010000000200b01801f5000000000101080a00000005000000040101050a0000030000000400"
        )
        + b"hello"
    )
    c = word_loop_checksum(pseudo_header(REMOTE, LOCAL, 6, len(raw)) + raw)
    raw = raw[:16] + c.to_bytes(2, "big") + raw[18:]
    s = TcpSegment(raw)
    assert s.flags == PSH | ACK and flags_str(s.flags) == "P." and s.window == 501
    assert s.options == (NOP, NOP, Timestamps(5, 4), NOP, NOP, Sack(((0x300, 0x400),)))
    assert s.sack_blocks == ((0x300, 0x400),) and s.payload == b"hello" and s.segment_length == 5
    assert s.checksum_ok(REMOTE, LOCAL)
    assert (
        build_tcp(
            REMOTE,
            LOCAL,
            8080,
            40000,
            seq=0x100,
            ack=0x200,
            flags=s.flags,
            window=501,
            options=s.options,
            payload=b"hello",
        )
        == raw
    )


def test_flags_letters_and_segment_length() -> None:
    assert flags_str(SYN | ACK) == "S." and flags_str(FIN | ACK) == "F." and flags_str(RST) == "R"
    assert flags_str(0) == "-" and flags_str(AE | ACK) == "A."
    assert TcpFlag.SYN | TcpFlag.ACK == SYN | ACK
    seg = TcpSegment(build_tcp(LOCAL, REMOTE, 1, 2, flags=SYN | FIN, payload=b"abc"))
    assert seg.segment_length == 5


def test_reserved_and_ae_bits_survive() -> None:
    seg = TcpSegment(build_tcp(LOCAL, REMOTE, 1, 2, flags=0xE00 | AE | ACK))
    assert seg.flags == 0xE00 | AE | ACK
    assert bytes(seg)[12] & 0x0F == 0x0F


def test_unknown_option_kept_raw_and_reemitted() -> None:
    opts = (UnknownOption(34, b"\x01\x02\x03\x04"), NOP, NOP, Mss(536))  # 34 = TFO cookie
    raw = build_tcp(LOCAL, REMOTE, 1, 2, flags=SYN, options=opts)
    assert TcpSegment(raw).options == opts


def test_options_padded_with_eol() -> None:
    assert encode_options([WindowScale(14)]) == b"\x03\x03\x0e\x00"
    assert parse_options(b"\x03\x03\x0e\x00") == (WindowScale(14), EOL)


def test_bytes_after_eol_are_padding() -> None:
    assert parse_options(b"\x00\xff\xff\xff") == (EOL,)


def test_bad_checksum_detected() -> None:
    raw = build_tcp(LOCAL, REMOTE, 1, 2, checksum_value=0xDEAD)
    assert TcpSegment(raw).checksum == 0xDEAD and not TcpSegment(raw).checksum_ok(LOCAL, REMOTE)


# --- traps --------------------------------------------------------------------------------


def _expect(data: bytes, field: str, offset: int) -> None:
    with pytest.raises(WireError) as info:
        TcpSegment(data)
    assert (info.value.field, info.value.offset) == (field, offset), info.value


def _with_options(opts: bytes) -> bytes:
    doff = (20 + len(opts)) // 4
    return SYN_NO_CSUM[:12] + bytes((doff << 4,)) + SYN_NO_CSUM[13:20] + opts


def test_trap_shorter_than_header() -> None:
    _expect(SYN_NO_CSUM[:19], "tcp", 0)


@pytest.mark.parametrize("doff", [0, 1, 4])
def test_trap_data_offset_below_five(doff: int) -> None:
    _expect(SYN_NO_CSUM[:12] + bytes((doff << 4,)) + SYN_NO_CSUM[13:], "tcp.data_offset", 12)


def test_trap_data_offset_past_the_packet() -> None:
    _expect(SYN_NO_CSUM[:12] + b"\xf0" + SYN_NO_CSUM[13:], "tcp.data_offset", 12)


@pytest.mark.parametrize("length", [0, 1])
def test_trap_option_length_zero_or_one(length: int) -> None:
    _expect(_with_options(bytes((2, length, 5, 0xB4))), "tcp.option.length", 21)


def test_trap_option_length_zero_unknown_kind() -> None:
    # A zero length would loop forever in a naive parser.
    _expect(_with_options(bytes((1, 1, 99, 0))), "tcp.option.length", 23)


def test_trap_option_running_past_the_header() -> None:
    _expect(_with_options(bytes((1, 1, 8, 10))), "tcp.option.length", 23)


def test_trap_option_without_length_octet() -> None:
    _expect(_with_options(bytes((1, 1, 1, 2))), "tcp.option.length", 23)


@pytest.mark.parametrize(
    ("opts", "field"),
    [
        (bytes((2, 3, 5, 0)), "tcp.option.mss.length"),
        (bytes((3, 4, 7, 0)), "tcp.option.window_scale.length"),
        (bytes((4, 3, 0, 0)), "tcp.option.sack_permitted.length"),
        (bytes((8, 6, 0, 0, 0, 0, 1, 1)), "tcp.option.timestamps.length"),
        (bytes((5, 2, 1, 1)), "tcp.option.sack.length"),
        (bytes((5, 6, 0, 0, 0, 0, 1, 1)), "tcp.option.sack.length"),
    ],
)
def test_trap_known_option_with_wrong_length(opts: bytes, field: str) -> None:
    _expect(_with_options(opts), field, 21)


def test_builder_rejects_impossible_values() -> None:
    for kwargs in ({"seq": 1 << 32}, {"ack": -1}, {"window": 65536}, {"flags": 0x1000}):
        with pytest.raises(WireError):
            build_tcp(LOCAL, REMOTE, 1, 2, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(WireError, match="src_port"):
        build_tcp(LOCAL, REMOTE, 65536, 2)
    with pytest.raises(WireError, match="40"):
        build_tcp(LOCAL, REMOTE, 1, 2, options=[Sack(((1, 2),) * 4), Timestamps(1, 2)])
    with pytest.raises(WireError, match="blocks"):
        build_tcp(LOCAL, REMOTE, 1, 2, options=[Sack(())])


# --- hypothesis round trips ---------------------------------------------------------------

u32 = st.integers(0, 0xFFFFFFFF)
option = st.one_of(
    st.just(NOP),
    st.builds(Mss, st.integers(0, 0xFFFF)),
    st.builds(WindowScale, st.integers(0, 255)),
    st.just(SACK_PERMITTED),
    st.builds(Sack, st.lists(st.tuples(u32, u32), min_size=1, max_size=3).map(tuple)),
    st.builds(Timestamps, u32, u32),
    st.builds(
        UnknownOption,
        st.integers(6, 255).filter(lambda k: k != 8),
        st.binary(max_size=10),
    ),
)
option_lists = st.lists(option, max_size=8).filter(lambda o: len(encode_options_unchecked(o)) <= 40)


def encode_options_unchecked(opts: list[TcpOption]) -> bytes:
    return b"".join(o.encode() for o in opts)


segments = st.fixed_dictionaries(
    {
        "src_port": st.integers(0, 0xFFFF),
        "dst_port": st.integers(0, 0xFFFF),
        "seq": u32,
        "ack": u32,
        "flags": st.integers(0, 0xFFF),
        "window": st.integers(0, 0xFFFF),
        "urgent_pointer": st.integers(0, 0xFFFF),
        "options": option_lists,
        "payload": st.binary(max_size=100),
    }
)


@given(segments)
def test_build_then_parse_round_trip(f: dict[str, Any]) -> None:
    raw = build_tcp(LOCAL, REMOTE, **f)
    s = TcpSegment(raw)
    for name, value in f.items():
        if name != "options":
            assert getattr(s, name) == value, name
    assert s.options[: len(f["options"])] == tuple(f["options"])
    assert all(o is EOL for o in s.options[len(f["options"]) :])
    assert s.checksum_ok(LOCAL, REMOTE)
    again = build_tcp(LOCAL, REMOTE, **{**f, "options": s.options})
    assert again == raw


# --- scapy cross-checks -------------------------------------------------------------------


def scapy_option(opt: TcpOption) -> tuple[object, object]:
    match opt:
        case Mss(value=v):
            return ("MSS", v)
        case WindowScale(shift=v):
            return ("WScale", v)
        case Timestamps(tsval=a, tsecr=b):
            return ("Timestamp", (a, b))
        case Sack(blocks=blocks):
            return ("SAck", tuple(x for block in blocks for x in block))
        case UnknownOption(kind=k, data=d):
            return (k, d)
    return {1: ("NOP", None), 4: ("SAckOK", b""), 0: ("EOL", None)}[opt.kind]


# Kinds scapy decodes into names of its own; the cross-check keeps to kinds it leaves raw.
SCAPY_NAMED_KINDS = set(TCPOptions[0]) | {30, 253, 254}
scapy_safe_lists = option_lists.filter(
    lambda opts: all(not isinstance(o, UnknownOption) or o.kind not in SCAPY_NAMED_KINDS for o in opts)
)


@given(segments, scapy_safe_lists)
def test_ours_parsed_by_scapy(f: dict[str, Any], opts: list[TcpOption]) -> None:
    raw = build_tcp(LOCAL, REMOTE, **{**f, "options": opts})
    s = IP(src="192.168.0.1", dst="192.0.2.1", proto=6) / TCP(raw)
    t = s[TCP]
    assert (t.sport, t.dport, t.seq, t.ack, t.window, t.urgptr) == (
        f["src_port"],
        f["dst_port"],
        f["seq"],
        f["ack"],
        f["window"],
        f["urgent_pointer"],
    )
    assert int(t.flags) | (t.reserved << 9) == f["flags"]
    assert t.dataofs * 4 == TcpSegment(raw).header_length
    expected = [scapy_option(o) for o in TcpSegment(raw).options]
    assert [tuple(o) for o in t.options] == expected
    assert bytes(t.payload) == f["payload"]
    del t.chksum
    assert IP(bytes(s))[TCP].chksum == TcpSegment(raw).checksum


@given(segments, scapy_safe_lists)
def test_scapy_built_parsed_by_ours(f: dict[str, Any], opts: list[TcpOption]) -> None:
    pkt = (
        IP(src="192.0.2.1", dst="192.168.0.1")
        / TCP(
            sport=f["src_port"],
            dport=f["dst_port"],
            seq=f["seq"],
            ack=f["ack"],
            flags=f["flags"] & 0x1FF,
            reserved=f["flags"] >> 9,
            window=f["window"],
            urgptr=f["urgent_pointer"],
            options=[scapy_option(o) for o in opts],
        )
        / f["payload"]
    )
    raw = bytes(pkt)[20:]
    s = TcpSegment(raw)
    assert (s.src_port, s.dst_port, s.seq, s.ack, s.flags, s.window, s.urgent_pointer) == (
        f["src_port"],
        f["dst_port"],
        f["seq"],
        f["ack"],
        f["flags"],
        f["window"],
        f["urgent_pointer"],
    )
    assert s.options[: len(opts)] == tuple(opts)
    assert all(o is EOL for o in s.options[len(opts) :])
    assert s.payload == f["payload"] and s.checksum_ok(REMOTE, LOCAL)
