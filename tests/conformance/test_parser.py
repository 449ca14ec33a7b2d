"""The .pkt parser: every construct of GRAMMAR.md §1-§7 and the examples of §10."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.script import parse, parse_file
from conformance.script.syntax import (
    AccEcnOption,
    AnyOptions,
    ArrayExpr,
    BitOrExpr,
    CallExpr,
    CodeEvent,
    Direction,
    EchoedRaw,
    EchoedTcp,
    EchoedUdp,
    Ecn,
    EllipsisExpr,
    EolOption,
    Event,
    FastOpenExpOption,
    FastOpenOption,
    GreEncap,
    IcmpBody,
    IntExpr,
    IpEncap,
    IpInfo,
    Md5Option,
    MplsEncap,
    MplsEntry,
    MssOption,
    NopOption,
    Option,
    PacketEvent,
    Ports,
    PspEncap,
    SackBlock,
    SackOkOption,
    SackOption,
    ShellEvent,
    SilenceBody,
    SizedExpr,
    StringExpr,
    StructExpr,
    SymbolExpr,
    SyscallEvent,
    TcpBody,
    TcpOptionSpec,
    TimeKind,
    TimeSpec,
    TimestampOption,
    UdpBody,
    WscaleOption,
)

SCRIPTS = Path(__file__).parent / "scripts"
SOCKET = "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n"


def second(line: str) -> Event:
    """The event of ``line``, parsed as the second event of a script."""
    script = parse(SOCKET + line)
    assert len(script.events) == 2
    return script.events[1]


def packet(line: str) -> PacketEvent:
    action = second("+0 " + line).action
    assert isinstance(action, PacketEvent)
    return action


def tcp(line: str) -> TcpBody:
    body = packet(line).body
    assert isinstance(body, TcpBody)
    return body


def syscall(line: str) -> SyscallEvent:
    action = second("+0 " + line).action
    assert isinstance(action, SyscallEvent)
    return action


def arg(expr_text: str) -> object:
    """The single argument of ``f(expr_text) = 0``."""
    (only,) = syscall(f"f({expr_text}) = 0").args
    return only


# --- §1 file structure ---------------------------------------------------------------


def test_options_are_collected_in_order() -> None:
    script = parse("--tolerance_usecs=10000\n--dry_run   // just parse\n--ip_version=ipv4\n" + SOCKET)
    assert script.options == (
        Option("tolerance_usecs", "10000"),
        Option("dry_run"),
        Option("ip_version", "ipv4"),
    )
    assert script.option("tolerance_usecs") == "10000" and script.option("dry_run") == ""
    assert script.option("mtu") is None
    assert (script.options[1].line, script.options[1].col) == (2, 1)


def test_init_and_cleanup_commands() -> None:
    script = parse("--mtu=1500\n`../common/defaults.sh\nsysctl -q a=1`\n" + SOCKET + "`/tmp/restore.sh`\n")
    assert script.init_command == ShellEvent("../common/defaults.sh\nsysctl -q a=1")
    assert script.cleanup_command == ShellEvent("/tmp/restore.sh")
    assert script.init_command is not None and script.init_command.line == 2
    assert script.cleanup_command is not None and script.cleanup_command.line == 5
    assert len(script.events) == 1


def test_no_init_or_cleanup_command() -> None:
    script = parse(SOCKET)
    assert script.init_command is None and script.cleanup_command is None
    assert script.path == "<string>" and script.options == ()


def test_statements_may_span_lines() -> None:
    call = syscall("poll([{fd=3,\n   events=POLLIN|POLLOUT,\n   revents=POLLOUT}], 1,\n   100)\n = 1")
    assert call.name == "poll" and call.ret == IntExpr(1)


def test_path_is_recorded() -> None:
    assert parse(SOCKET, path="x/y.pkt").path == "x/y.pkt"


# --- §2 time specs -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("1.5", TimeSpec(TimeKind.ABSOLUTE, 1_500_000)),
        ("2", TimeSpec(TimeKind.ABSOLUTE, 2_000_000)),
        ("+0.1", TimeSpec(TimeKind.RELATIVE, 100_000)),
        ("+.1", TimeSpec(TimeKind.RELATIVE, 100_000)),
        ("+0", TimeSpec(TimeKind.RELATIVE, 0)),
        ("+4.35", TimeSpec(TimeKind.RELATIVE, 4_350_000)),  # exact, no binary-float truncation
        ("+0.0000015", TimeSpec(TimeKind.RELATIVE, 1)),  # below 1 µs truncates
        ("0.1~0.2", TimeSpec(TimeKind.ABSOLUTE_RANGE, 100_000, 200_000)),
        ("+0.1~+0.2", TimeSpec(TimeKind.RELATIVE_RANGE, 100_000, 200_000)),
        ("+1~+1", TimeSpec(TimeKind.RELATIVE_RANGE, 1_000_000, 1_000_000)),
        ("*", TimeSpec(TimeKind.ANY)),
    ],
)
def test_time_specs(text: str, spec: TimeSpec) -> None:
    event = second(f"{text} > S 0:0(0)")
    assert event.time == spec
    assert (event.line, event.col, event.time.line, event.time.col) == (2, 1, 2, 1)


def test_relative_times_stay_relative() -> None:
    script = parse(SOCKET + "+1 close(3) = 0\n+1 close(4) = 0\n3 close(5) = 0\n")
    assert [e.time for e in script.events] == [
        TimeSpec(TimeKind.ABSOLUTE, 0),
        TimeSpec(TimeKind.RELATIVE, 1_000_000),  # anchored by the executor, not summed here
        TimeSpec(TimeKind.RELATIVE, 1_000_000),
        TimeSpec(TimeKind.ABSOLUTE, 3_000_000),
    ]
    assert script.events[1].time.is_relative and not script.events[3].time.is_relative


def test_first_event_may_be_relative_zero_or_any() -> None:
    assert parse("+0 close(3) = 0").events[0].time == TimeSpec(TimeKind.RELATIVE, 0)
    assert parse("* > S 0:0(0)").events[0].time == TimeSpec(TimeKind.ANY)


def test_blocking_call_after_relative_start() -> None:
    call = syscall("...0.200 read(4, ..., 2000) = 2000")
    assert call.end_time == TimeSpec(TimeKind.RELATIVE, 200_000)
    assert call.end_time is not None and (call.end_time.line, call.end_time.col) == (2, 4)
    blocking = second("+.1...0.200 read(4, ..., 2000) = 2000")
    assert blocking.time == TimeSpec(TimeKind.RELATIVE, 100_000)
    immediate = syscall("...0.000 read(4, ..., 1000) = 1000")
    assert immediate.end_time == TimeSpec(TimeKind.RELATIVE, 0)


def test_blocking_call_after_absolute_start() -> None:
    event = second("1...1.5 accept(3, ..., ...) = 4")
    assert isinstance(event.action, SyscallEvent)
    assert event.action.end_time == TimeSpec(TimeKind.ABSOLUTE, 1_500_000)


def test_non_blocking_call_has_no_end_time() -> None:
    assert syscall("close(3) = 0").end_time is None


# --- §3 packets ----------------------------------------------------------------------


def test_inbound_tcp_packet() -> None:
    event = packet("< S 0:0(0) win 65535 <mss 1460,sackOK,nop,nop,nop,wscale 7>")
    assert event == PacketEvent(
        Direction.INBOUND,
        None,
        None,
        TcpBody(
            "S",
            0,
            0,
            0,
            win=65535,
            options=(MssOption(1460), SackOkOption(), NopOption(), NopOption(), NopOption(), WscaleOption(7)),
        ),
    )
    assert (event.line, event.col, event.body.line, event.body.col) == (2, 4, 2, 6)


def test_outbound_tcp_packet_with_ack_win_urg() -> None:
    body = tcp("> P. 1:1001(1000) ack 1 win 257 urg 10")
    assert body == TcpBody("P.", 1, 1001, 1000, ack=1, win=257, urg=10)
    assert body.options is None  # none written: the packet must carry none


@pytest.mark.parametrize(
    ("flags", "text", "bits"),
    [
        ("S", "S", 0x02),
        ("S.", "S.", 0x12),
        (".", ".", 0x10),
        ("P.", "P.", 0x18),
        ("F.", "F.", 0x11),
        ("R", "R", 0x04),
        ("R.", "R.", 0x14),
        ("SEW", "SEW", 0xC2),
        ("S.E", "S.E", 0x52),
        ("U.", "U.", 0x30),
        ("FPU", "FPU", 0x29),
        ("SEWA", "SEWA", 0x1C2),  # AccECN setup SYN
        ("WA.", "WA.", 0x190),
        ("-", "", 0),
        (".5", ".5", 0x150),  # ACK + ACE 5 = AE|ECE
        ("S.0", "S.0", 0x12),
        ("7", "7", 0x1C0),
        ("P.2", "P.2", 0x98),
    ],
)
def test_tcp_flags(flags: str, text: str, bits: int) -> None:
    body = tcp(f"> {flags} 0:0(0)")
    assert (body.flags, body.flag_bits) == (text, bits)


OPTION_CASES: list[tuple[str, tuple[TcpOptionSpec, ...], int]] = [
    ("nop,nop,nop,nop", (NopOption(),) * 4, 4),
    ("eol,eol,eol,eol", (EolOption(),) * 4, 4),
    ("mss 1460", (MssOption(1460),), 4),
    ("nop,wscale 10", (NopOption(), WscaleOption(10)), 4),
    ("sackOK,nop,nop", (SackOkOption(), NopOption(), NopOption()), 4),
    (
        "nop,nop,sack 1:1001 2001:3001",
        (NopOption(), NopOption(), SackOption((SackBlock(1, 1001), SackBlock(2001, 3001)))),
        20,
    ),
    ("nop,nop,TS val 100 ecr 0", (NopOption(), NopOption(), TimestampOption(100, 0)), 12),
    ("FO,nop,nop", (FastOpenOption(b""), NopOption(), NopOption()), 4),
    (
        "FO 3021b9d889017eeb,nop,nop",
        (FastOpenOption(bytes.fromhex("3021b9d889017eeb")), NopOption(), NopOption()),
        12,
    ),
    ("FO 12345678,nop,nop", (FastOpenOption(bytes.fromhex("12345678")), NopOption(), NopOption()), 8),
    ("FOEXP", (FastOpenExpOption(b""),), 4),
    ("FOEXP abcd1234", (FastOpenExpOption(bytes.fromhex("abcd1234")),), 8),
    (
        "md5 000102030405060708090a0b0c0d0e0f,nop,nop",
        (Md5Option(bytes(range(16))), NopOption(), NopOption()),
        20,
    ),
    ("ECN e0b 1 ceb 2 e1b 3,nop", (AccEcnOption((("e0b", 1), ("ceb", 2), ("e1b", 3))), NopOption()), 12),
    ("ECN e1b 1 ceb 0,nop,nop,nop,nop", (AccEcnOption((("e1b", 1), ("ceb", 0))),) + (NopOption(),) * 4, 12),
    ("ECN e0b 5,nop,nop,nop", (AccEcnOption((("e0b", 5),)), NopOption(), NopOption(), NopOption()), 8),
    (
        "mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 10",
        (MssOption(1460), SackOkOption(), TimestampOption(100, 0), NopOption(), WscaleOption(10)),
        20,
    ),
]


@pytest.mark.parametrize(("text", "options", "length"), OPTION_CASES, ids=[c[0] for c in OPTION_CASES])
def test_tcp_options(text: str, options: tuple[TcpOptionSpec, ...], length: int) -> None:
    body = tcp(f"> S 0:0(0) <{text}>")
    assert body.options == options
    assert isinstance(body.options, tuple) and sum(o.length for o in body.options) == length


def test_tcp_option_kinds_and_lengths() -> None:
    assert [(o.KIND, o.length) for o in (NopOption(), EolOption(), MssOption(1), WscaleOption(1))] == [
        (1, 1),
        (0, 1),
        (2, 4),
        (3, 3),
    ]
    assert (SackOkOption.KIND, SackOption((SackBlock(1, 2),) * 3).length) == (4, 26)
    assert (TimestampOption.KIND, FastOpenOption.KIND, FastOpenExpOption.KIND, Md5Option.KIND) == (
        8,
        34,
        254,
        19,
    )
    assert AccEcnOption((("e0b", 1),)).kind == 172 and AccEcnOption((("e1b", 1),)).kind == 174
    assert AccEcnOption((("e1b", 1), ("ceb", 1), ("e0b", 1))).length == 11


def test_tcp_option_positions() -> None:
    body = tcp("> S 0:0(0) <mss 1460,\n  nop,wscale 7>")
    assert isinstance(body.options, tuple)
    assert [(o.line, o.col) for o in body.options] == [(2, 16), (3, 3), (3, 7)]


def test_fast_open_cookie_from_a_define() -> None:
    script = parse(
        SOCKET + "+0 > S 0:0(0) <FO TFO_COOKIE,nop,nop>", defines={"TFO_COOKIE": "3021b9d889017eeb"}
    )
    action = script.events[1].action
    assert isinstance(action, PacketEvent) and isinstance(action.body, TcpBody)
    assert action.body.options == (
        FastOpenOption(bytes.fromhex("3021b9d889017eeb")),
        NopOption(),
        NopOption(),
    )


def test_any_options_on_outbound_packet() -> None:
    body = tcp("> S 0:0(0) <...>")
    assert body.options == AnyOptions() and isinstance(body.options, AnyOptions)


@pytest.mark.parametrize(
    ("text", "info"),
    [
        ("(noecn)", IpInfo(ecn=Ecn.NOT_ECT)),
        ("(ect0)", IpInfo(ecn=Ecn.ECT0)),
        ("[ect1]", IpInfo(ecn=Ecn.ECT1)),
        ("[ce]", IpInfo(ecn=Ecn.CE)),
        ("(tos 0x10)", IpInfo(tos=0x10)),
        ("(ttl 64)", IpInfo(ttl=64)),
        ("(flowlabel 0x12345)", IpInfo(flowlabel=0x12345)),
        ("(ect0, flowlabel 0x1)", IpInfo(ecn=Ecn.ECT0, flowlabel=1)),
        ("[ce, ttl 1]", IpInfo(ecn=Ecn.CE, ttl=1)),
    ],
)
def test_ip_info(text: str, info: IpInfo) -> None:
    event = packet(f"< {text} . 1:1(0) ack 1 win 257")
    assert event.ip_info == info
    assert event.ip_info is not None and (event.ip_info.line, event.ip_info.col) == (2, 6)


def test_ect01_on_outbound_packet() -> None:
    event = packet("> [ect01] . 1:1(0) ack 1")
    assert event.ip_info == IpInfo(ecn=Ecn.ECT01)
    assert Ecn.ECT01.codepoint is None and Ecn.ECT0.codepoint == 2 and Ecn.CE.codepoint == 3


def test_no_ip_info_or_ports_by_default() -> None:
    event = packet("< . 1:1(0) ack 1 win 257")
    assert event.ip_info is None and event.ports is None and event.encaps == ()


def test_explicit_ports() -> None:
    event = packet("< 1234>8080 S 0:0(0) win 1000")
    assert event.ports == Ports(1234, 8080)
    assert isinstance(event.body, TcpBody) and event.body.flags == "S"


def test_udp_packets() -> None:
    assert packet("< udp(100)").body == UdpBody(100)
    assert packet("> udp (1000)").body == UdpBody(1000)
    event = packet("< [ect0] udp 5353>53 (20)")
    assert (event.body, event.ports, event.ip_info) == (UdpBody(20), Ports(5353, 53), IpInfo(ecn=Ecn.ECT0))


def icmp(line: str) -> IcmpBody:
    body = packet(line).body
    assert isinstance(body, IcmpBody)
    return body


def test_silence_extension() -> None:
    event = packet("> none")
    assert isinstance(event.body, SilenceBody)
    assert (event.ip_info, event.ports, event.encaps) == (None, None, ())


def test_icmp_frag_needed_with_mtu() -> None:
    body = icmp("< icmp unreachable frag_needed mtu 800")
    assert body == IcmpBody("unreachable", "frag_needed", mtu=800)
    assert (body.type_num, body.code_num, body.version) == (3, 4, 4)


def test_icmp_echoed_tcp_sequence() -> None:
    body = icmp("< icmp unreachable host_unreachable [0:10(10)]")
    assert body == IcmpBody("unreachable", "host_unreachable", echoed=EchoedTcp(0, 10, 10))
    assert (body.type_num, body.code_num) == (3, 1)


def test_icmp_echoed_udp_and_raw() -> None:
    udp = icmp("< icmp unreachable port_unreachable [udp(100)]")
    assert udp == IcmpBody("unreachable", "port_unreachable", echoed=EchoedUdp(100))
    raw = icmp("< icmp echo_request [raw(40)]")
    assert raw == IcmpBody("echo_request", echoed=EchoedRaw(40))
    assert (raw.type_num, raw.code_num) == (8, 0)


@pytest.mark.parametrize(
    ("text", "body", "numbers"),
    [
        ("> icmp echo_reply id 7", IcmpBody("echo_reply", id=7), (0, 0)),
        ("< icmp time_exceeded", IcmpBody("time_exceeded"), (11, 0)),
        ("< icmp type_3 code_13", IcmpBody("type_3", "code_13"), (3, 13)),
        ("< icmp unreachable packet_filtered", IcmpBody("unreachable", "packet_filtered"), (3, 13)),
        ("< icmp unreachable net_prohibited", IcmpBody("unreachable", "net_prohibited"), (3, 9)),
        ("< icmp redirect code_1", IcmpBody("redirect", "code_1"), (5, 1)),
        ("< icmp parameter_problem", IcmpBody("parameter_problem"), (12, 0)),
        ("< icmp source_quench", IcmpBody("source_quench"), (4, 0)),
    ],
)
def test_icmp_types_and_codes(text: str, body: IcmpBody, numbers: tuple[int, int]) -> None:
    parsed = icmp(text)
    assert parsed == body and (parsed.type_num, parsed.code_num) == numbers


def test_icmp_code_from_a_define() -> None:
    script = parse(SOCKET + "+0 < icmp unreachable CODE", defines={"CODE": "host_unreachable"})
    assert script.events[1].action == PacketEvent(
        Direction.INBOUND, None, None, IcmpBody("unreachable", "host_unreachable")
    )


def test_icmpv6_names() -> None:
    v6 = "--ip_version=ipv6\n" + SOCKET
    too_big = parse(v6 + "+.01 < icmp packet_too_big mtu 1400 [0:1440(1440)]").events[1].action
    assert isinstance(too_big, PacketEvent) and isinstance(too_big.body, IcmpBody)
    assert too_big.body == IcmpBody("packet_too_big", None, 1400, None, EchoedTcp(0, 1440, 1440), version=6)
    assert (too_big.body.type_num, too_big.body.code_num) == (2, 0)
    unreachable = parse(v6 + "+0 < icmp unreachable no_route").events[1].action
    assert isinstance(unreachable, PacketEvent) and isinstance(unreachable.body, IcmpBody)
    assert unreachable.body == IcmpBody("unreachable", "no_route", version=6)
    assert (unreachable.body.type_num, unreachable.body.code_num) == (1, 0)


def test_icmp_numbers_of_an_unknown_name_raise() -> None:
    with pytest.raises(ValueError, match="no ICMPv6 type called frag_needed"):
        _ = IcmpBody("frag_needed", version=6).type_num
    with pytest.raises(ValueError, match="no ICMPv4 unreachable code called nope"):
        _ = IcmpBody("unreachable", "nope").code_num


def test_ip_version_argument_overrides_the_script() -> None:
    script = parse("--ip_version=ipv6\n" + SOCKET + "+0 < icmp unreachable frag_needed", ip_version="ipv4")
    assert isinstance(script.events[1].action, PacketEvent)
    with pytest.raises(ValueError, match="ipv5"):
        parse(SOCKET, ip_version="ipv5")


def test_ipv4_mapped_ipv6_uses_ipv4_icmp_names() -> None:
    script = parse("--ip_version=ipv4-mapped-ipv6\n" + SOCKET + "+0 < icmp unreachable frag_needed mtu 1200")
    action = script.events[1].action
    assert isinstance(action, PacketEvent) and isinstance(action.body, IcmpBody) and action.body.version == 4


def test_encapsulation_prefixes() -> None:
    gre = packet("< ipv4 2.2.2.2 > 1.1.1.1: gre: . 1:1001(1000) ack 1 win 123")
    assert gre.encaps == (IpEncap(4, "2.2.2.2", "1.1.1.1"), GreEncap())
    mpls = packet(
        "> ipv6 2::2222 > 1::1111: gre:\n"
        "  mpls (label 0, tc 0, ttl 0) (label 1048575, tc 7, [S], ttl 255): . 1:1(0)"
    )
    assert mpls.encaps == (
        IpEncap(6, "2::2222", "1::1111"),
        GreEncap(),
        MplsEncap((MplsEntry(0, 0, False, 0), MplsEntry(1048575, 7, True, 255))),
    )
    fields = packet(
        "< ipv4 2.2.2.2 > 1.1.1.1 : gre flags 0xb000, sum 511, off 1023, key 0x80001234, seq 512: . 1:1(0)"
    )
    assert fields.encaps[1] == GreEncap(0xB000, 511, 1023, 0x80001234, 512)
    flag_words = packet("< ipv4 2.2.2.2 > 1.1.1.1: gre flags [checksum present, key present] key=5: . 1:1(0)")
    assert flag_words.encaps[1] == GreEncap(flags=0xA000, key=5)
    tunnel = packet("< ipv4 (tos 0x4) 2.2.2.2 > 1.1.1.1 : psp spi 12, vc 0x1: . 1:1(0)")
    assert tunnel.encaps == (IpEncap(4, "2.2.2.2", "1.1.1.1", IpInfo(tos=4)), PspEncap(12, 1))
    transport = packet("> encap psp spi 0x684abfc1 . 1:1001(1000) ack 1")
    assert transport.encaps == (PspEncap(0x684ABFC1, None, True),)
    assert isinstance(transport.body, TcpBody) and transport.body.seq_end == 1001


def test_ip_info_after_the_encapsulation() -> None:
    event = packet("< ipv4 2.2.2.2 > 1.1.1.1: (ect0) . 1:1(0)")
    assert event.ip_info == IpInfo(ecn=Ecn.ECT0) and len(event.encaps) == 1


# --- §4 system calls ------------------------------------------------------------------


def test_syscall_with_errno_and_note() -> None:
    call = syscall("connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)")
    assert call == SyscallEvent(
        "connect",
        (IntExpr(3), EllipsisExpr(), EllipsisExpr()),
        IntExpr(-1),
        errno="EINPROGRESS",
        note="Operation now in progress",
    )
    assert (call.line, call.col, call.ret.line, call.ret.col) == (2, 4, 2, 27)


def test_note_without_errno_is_free_form() -> None:
    call = syscall("fcntl(3, F_GETFL) = 0x802 (flags O_RDWR|O_NONBLOCK (twice))")
    assert (call.ret, call.errno, call.note) == (IntExpr(0x802), None, "flags O_RDWR|O_NONBLOCK (twice)")


def test_syscall_without_arguments() -> None:
    assert syscall("getpid() = 7") == SyscallEvent("getpid", (), IntExpr(7))


def test_integers_hex_and_symbols() -> None:
    call = syscall("setsockopt(4, SOL_TCP, TCP_NOTSENT_LOWAT, [0xffffffff], 4) = 0")
    assert call.args == (
        IntExpr(4),
        SymbolExpr("SOL_TCP"),
        SymbolExpr("TCP_NOTSENT_LOWAT"),
        ArrayExpr((IntExpr(0xFFFFFFFF),)),
        IntExpr(4),
    )


def test_bitwise_or() -> None:
    assert arg("O_RDWR|O_NONBLOCK|0x10") == BitOrExpr(
        (SymbolExpr("O_RDWR"), SymbolExpr("O_NONBLOCK"), IntExpr(16))
    )


def test_strings_concatenate_and_may_end_with_ellipsis() -> None:
    assert arg('"re" "no"') == StringExpr("reno")
    assert arg('"cubic"...') == StringExpr("cubic", ellipsis=True)


@pytest.mark.parametrize(
    ("text", "expr"),
    [
        ("[1]", ArrayExpr((IntExpr(1),))),
        ("[4000]", ArrayExpr((IntExpr(4000),))),
        ("[]", ArrayExpr(())),
        ("[ECONNREFUSED]", ArrayExpr((SymbolExpr("ECONNREFUSED"),))),
        ("...", EllipsisExpr()),
    ],
)
def test_arrays_and_ellipsis(text: str, expr: object) -> None:
    assert arg(text) == expr


def test_getsockopt_with_array_arguments() -> None:
    call = syscall("getsockopt(4, SOL_TCP, TCP_MAXSEG, [1100], [4]) = 0")
    assert call.args[3:] == (ArrayExpr((IntExpr(1100),)), ArrayExpr((IntExpr(4),)))


def test_pollfd_struct() -> None:
    expr = arg("[{fd=4, events=POLLIN|POLLOUT, revents=POLLOUT}]")
    assert expr == ArrayExpr(
        (
            StructExpr(
                (
                    ("fd", IntExpr(4)),
                    ("events", BitOrExpr((SymbolExpr("POLLIN"), SymbolExpr("POLLOUT")))),
                    ("revents", SymbolExpr("POLLOUT")),
                )
            ),
        )
    )
    assert isinstance(expr, ArrayExpr) and isinstance(expr.items[0], StructExpr)
    assert expr.items[0].get("fd") == IntExpr(4) and expr.items[0].get("nope") is None


def test_epoll_event_and_linger_structs() -> None:
    assert arg("{events=EPOLLIN, fd=4}") == StructExpr(
        (("events", SymbolExpr("EPOLLIN")), ("fd", IntExpr(4)))
    )
    assert arg("{events=0, ptr=0}") == StructExpr((("events", IntExpr(0)), ("ptr", IntExpr(0))))
    assert arg("{onoff=1, linger=0}") == StructExpr((("onoff", IntExpr(1)), ("linger", IntExpr(0))))


def test_sockaddr_with_htons_and_inet_addr() -> None:
    expr = arg('{sa_family=AF_INET, sin_port=htons(8080), sin_addr=inet_addr("192.0.2.1")}')
    assert expr == StructExpr(
        (
            ("sa_family", SymbolExpr("AF_INET")),
            ("sin_port", CallExpr("htons", (IntExpr(8080),))),
            ("sin_addr", CallExpr("inet_addr", (StringExpr("192.0.2.1"),))),
        )
    )


def test_inet6_addr_and_htonl() -> None:
    assert arg('inet6_addr("2001:db8::1")') == CallExpr("inet6_addr", (StringExpr("2001:db8::1"),))
    assert arg("htonl(1)") == CallExpr("htonl", (IntExpr(1),))


def test_msghdr_with_named_count_members() -> None:
    call = syscall(
        "sendmsg(4, {msg_name(...)=...,\n"
        "            msg_iov(1)=[{..., 1000}],\n"
        "            msg_flags=0}, MSG_NOSIGNAL|MSG_FASTOPEN) = 1000"
    )
    assert call.args[1] == StructExpr(
        (
            ("msg_name", SizedExpr(EllipsisExpr(), EllipsisExpr())),
            (
                "msg_iov",
                SizedExpr(
                    IntExpr(1), ArrayExpr((StructExpr(((None, EllipsisExpr()), (None, IntExpr(1000)))),))
                ),
            ),
            ("msg_flags", IntExpr(0)),
        )
    )


def test_msghdr_with_control_messages() -> None:
    expr = arg(
        "{msg_name(...)=..., msg_iov(1)=[{..., 0}], msg_flags=MSG_ERRQUEUE,"
        " msg_control=[{cmsg_level=CMSG_LEVEL_IP, cmsg_type=CMSG_TYPE_RECVERR,"
        " cmsg_data={ee_errno=ENOMSG, ee_origin=SO_EE_ORIGIN_TIMESTAMPING, ee_type=0,"
        " ee_code=0, ee_info=SCM_TSTAMP_SND, ee_data=0}}]}"
    )
    assert isinstance(expr, StructExpr)
    control = expr.get("msg_control")
    assert isinstance(control, ArrayExpr) and isinstance(control.items[0], StructExpr)
    cmsg = control.items[0]
    assert cmsg.get("cmsg_level") == SymbolExpr("CMSG_LEVEL_IP")
    data = cmsg.get("cmsg_data")
    assert isinstance(data, StructExpr)
    assert [name for name, _ in data.fields] == [
        "ee_errno",
        "ee_origin",
        "ee_type",
        "ee_code",
        "ee_info",
        "ee_data",
    ]


def test_timestamping_struct_and_lists() -> None:
    assert arg("{scm_sec=0, scm_nsec=100}") == StructExpr(
        (("scm_sec", IntExpr(0)), ("scm_nsec", IntExpr(100)))
    )
    assert arg("{1, 2}") == StructExpr(((None, IntExpr(1)), (None, IntExpr(2))))
    assert arg("{}") == StructExpr(())


def test_symbols_come_from_defines() -> None:
    script = parse(SOCKET + "+0 f(CMSG_LEVEL_IP) = 0", defines={"CMSG_LEVEL_IP": "SOL_IP"})
    action = script.events[1].action
    assert isinstance(action, SyscallEvent) and action.args == (SymbolExpr("SOL_IP"),)


def test_expression_positions() -> None:
    call = syscall("f(1, {a=B|C})\n = 0")
    struct = call.args[1]
    assert isinstance(struct, StructExpr)
    member = struct.fields[0][1]
    assert (struct.line, struct.col, member.line, member.col, call.ret.line) == (2, 9, 2, 12, 3)


# --- §5 shell commands, §6 code blocks ------------------------------------------------


def test_shell_command_event() -> None:
    event = second("+0 `sysctl -q net.ipv4.tcp_sack=0`")
    assert event.action == ShellEvent("sysctl -q net.ipv4.tcp_sack=0")
    assert (event.action.line, event.action.col) == (2, 4)


def test_multiline_shell_command_is_one_script() -> None:
    event = second("+0 `tc qdisc add dev tun0 root pfifo\nethtool -K tun0 tso off`")
    assert event.action == ShellEvent("tc qdisc add dev tun0 root pfifo\nethtool -K tun0 tso off")


def test_code_block_event() -> None:
    event = second("+0 %{ assert tcpi_snd_cwnd == 10, tcpi_snd_cwnd }%")
    assert event.action == CodeEvent("assert tcpi_snd_cwnd == 10, tcpi_snd_cwnd")


def test_shell_command_with_a_time_after_the_last_event_is_an_event() -> None:
    script = parse(SOCKET + "+0 `echo done`")
    assert script.cleanup_command is None and script.events[1].action == ShellEvent("echo done")


# --- §10 examples ---------------------------------------------------------------------


def actions(path: Path) -> list[object]:
    return [event.action for event in parse_file(path).events]


def test_example_passive_open_and_peer_close() -> None:
    script = parse_file(SCRIPTS / "passive_open_peer_close.pkt")
    assert len(script.events) == 15 and script.init_command is None
    kinds = [type(e.action).__name__ for e in script.events]
    assert kinds.count("PacketEvent") == 8 and kinds.count("SyscallEvent") == 7
    syn_ack = script.events[5]
    assert syn_ack.line == 9 and syn_ack.time == TimeSpec(TimeKind.RELATIVE, 0)
    assert syn_ack.action == PacketEvent(
        Direction.OUTBOUND,
        None,
        None,
        TcpBody(
            "S.",
            0,
            0,
            0,
            ack=1,
            options=(
                MssOption(1460),
                NopOption(),
                NopOption(),
                SackOkOption(),
                NopOption(),
                WscaleOption(10),
            ),
        ),
    )
    assert script.events[6].time == TimeSpec(TimeKind.RELATIVE, 10_000)
    assert script.events[8].action == PacketEvent(
        Direction.INBOUND, None, None, TcpBody("P.", 1, 101, 100, ack=1, win=514)
    )
    assert script.events[-1].action == PacketEvent(
        Direction.INBOUND, None, None, TcpBody(".", 102, 102, 0, ack=2, win=514)
    )


def test_example_active_open_refused() -> None:
    script = parse_file(SCRIPTS / "active_open_refused.pkt")
    assert len(script.events) == 6
    connect = script.events[2].action
    assert isinstance(connect, SyscallEvent)
    assert (connect.name, connect.ret, connect.errno) == ("connect", IntExpr(-1), "EINPROGRESS")
    syn = script.events[3].action
    assert isinstance(syn, PacketEvent) and isinstance(syn.body, TcpBody)
    assert syn.body.options == (
        MssOption(1460),
        SackOkOption(),
        TimestampOption(100, 0),
        NopOption(),
        WscaleOption(10),
    )
    assert script.events[4].action == PacketEvent(
        Direction.INBOUND, None, None, TcpBody("R.", 0, 0, 0, ack=1, win=0)
    )
    getsockopt = script.events[5].action
    assert isinstance(getsockopt, SyscallEvent)
    assert getsockopt.args[3:] == (ArrayExpr((SymbolExpr("ECONNREFUSED"),)), ArrayExpr((IntExpr(4),)))


def test_example_syn_backoff() -> None:
    script = parse_file(SCRIPTS / "syn_backoff.pkt")
    assert script.init_command == ShellEvent("sysctl -q net.ipv4.tcp_syn_linear_timeouts=0")
    assert script.cleanup_command is None and len(script.events) == 6
    syns = script.events[3:]
    assert [e.time.start_usecs for e in syns] == [0, 1_000_000, 2_000_000]
    assert all(
        isinstance(e.action, PacketEvent) and e.action.body == TcpBody("S", 0, 0, 0, options=AnyOptions())
        for e in syns
    )
