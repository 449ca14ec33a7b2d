"""Malformed scripts: each error names the place (line:col) and what was expected."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.script import ScriptError, parse, parse_file

S = "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n"  # a good first line

# (id, script, line, col, the message or its beginning)
CASES: list[tuple[str, str, int, int, str]] = [
    # lexical
    (
        "unterminated string",
        S + '+0 setsockopt(3, SOL_TCP, TCP_CONGESTION, "reno, 4) = 0\n',
        2,
        43,
        'unterminated string: no closing " on this line',
    ),
    (
        "unterminated backquote",
        S + "+0 `sysctl -q a=1\n+0 close(3) = 0\n",
        2,
        4,
        "unterminated backquoted command",
    ),
    (
        "unterminated code block",
        S + "+0 %{ assert tcpi_snd_cwnd == 10\n",
        2,
        4,
        "unterminated %{ code block: no closing }%",
    ),
    ("unterminated comment", "/* a comment\n" + S, 1, 1, "unterminated /* comment"),
    (
        "hash comment",
        S + "# a comment\n+0 close(3) = 0\n",
        2,
        1,
        "unexpected character '#': .pkt comments are // and /* */",
    ),
    ("unknown character", S + "+0 close(3 @) = 0\n", 2, 12, "unexpected character '@'"),
    # time specs
    (
        "first event not at 0",
        "1 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n",
        1,
        1,
        "the first event must be at time 0, got 1",
    ),
    ("first event relative", "+0.5 close(3) = 0\n", 1, 1, "the first event must be at time 0, got +0.5"),
    ("negative time", S + "+-0.5 close(3) = 0\n", 2, 2, "negative time -0.5"),
    ("range back to zero", S + "+0.2~+0 > S 0:0(0)\n", 2, 1, "time range +0.2~+0 is backwards"),
    ("negative absolute time", S + "-1 close(3) = 0\n", 2, 1, "negative time -1"),
    (
        "backwards absolute range",
        S + "0.2~0.1 > S 0:0(0)\n",
        2,
        1,
        "time range 0.2~0.1 is backwards: its end is before its start",
    ),
    ("backwards relative range", S + "+0.2~+0.1 > S 0:0(0)\n", 2, 1, "time range +0.2~+0.1 is backwards"),
    (
        "relative range without second +",
        S + "+0.1~0.2 > S 0:0(0)\n",
        2,
        5,
        "a relative time range needs '+' on both ends",
    ),
    (
        "absolute range ending relative",
        S + "0.1~+0.2 > S 0:0(0)\n",
        2,
        4,
        "an absolute time range cannot end with a relative time",
    ),
    (
        "range on inbound packet",
        S + "0.1~0.2 < S 0:0(0) win 1000\n",
        2,
        1,
        "a time range (absolute range) can only be used with outbound packets",
    ),
    (
        "range on syscall",
        S + "+0~+1 close(3) = 0\n",
        2,
        1,
        "a time range (relative range) can only be used with outbound packets",
    ),
    (
        "star on inbound packet",
        S + "* < . 1:1(0) ack 1 win 100\n",
        2,
        1,
        "'*' (any time) can only be used with outbound packets",
    ),
    (
        "star on shell command",
        S + "* `true`\n",
        2,
        1,
        "'*' (any time) can only be used with outbound packets",
    ),
    (
        "missing time",
        S + "close(3) = 0\n",
        2,
        1,
        "expected an event time (0, 1.5, +0.1, 0.1~0.2, +0.1~+0.2 or *), got 'close'",
    ),
    (
        "blocking call ends before it starts",
        S + "1...0.5 read(3, ..., 10) = 10\n",
        2,
        2,
        "blocking call ends at 0.5, before it starts at 1",
    ),
    (
        "blocking end with plus",
        S + "+0...+0.1 read(3, ..., 10) = 10\n",
        2,
        6,
        "the end time of a blocking call is written without '+'",
    ),
    (
        "blocking end before a packet",
        S + "+0...0.1 > S 0:0(0)\n",
        2,
        10,
        "expected a system call after the blocking end time '...', got '>'",
    ),
    # file structure
    ("no events", "--tolerance_usecs=10000\n`init.sh`\n", 3, 1, "the script has no events"),
    (
        "command without time in the middle",
        "`init`\n" + S + "`middle`\n+0 close(3) = 0\n",
        3,
        1,
        "a backquoted command needs a time (such as +0) unless it is the init command",
    ),
    (
        "option after an event",
        S + "--mtu=1500\n+0 close(3) = 0\n",
        2,
        1,
        "option --mtu out of place: options go first",
    ),
    (
        "bad ip_version",
        "--ip_version=ipv5\n" + S,
        1,
        1,
        "--ip_version=ipv5: expected ipv4, ipv4-mapped-ipv6 or ipv6",
    ),
    ("bad tolerance", "--tolerance_usecs=10ms\n" + S, 1, 1, "--tolerance_usecs=10ms: expected an integer"),
    ("option needs a value", "--tolerance_usecs\n" + S, 1, 1, "option --tolerance_usecs needs a value"),
    (
        "bad address option",
        "--remote_ip=192.0.2\n" + S,
        1,
        1,
        "--remote_ip=192.0.2: expected an IPv4 or IPv6 address",
    ),
    # system calls
    (
        "missing = after syscall",
        S + "+0 close(3) 0\n",
        2,
        13,
        "expected '=' and the expected return value after close(...), got '0'",
    ),
    (
        "missing ) after arguments",
        S + "+0 close(3 foo) = 0\n",
        2,
        12,
        "expected ')' after syscall arguments, got 'foo'",
    ),
    (
        "missing ( after name",
        S + "+0 close 3 = 0\n",
        2,
        10,
        "expected '(' after the system call name 'close', got '3'",
    ),
    (
        "missing return value",
        S + "+0 close(3) =\n+0 close(4) = 0\n",
        3,
        1,
        "expected an expression (a number, a SYMBOL, \"string\", [array], {struct}, ... or f(x)), got '+'",
    ),
    (
        "unterminated array",
        S + "+0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1 4) = 0\n",
        2,
        47,
        "expected ',' or ']' in the array, got '4'",
    ),
    (
        "unterminated struct",
        S + "+0 poll([{fd=3 events=POLLIN}], 1, 0) = 0\n",
        2,
        16,
        "expected ',' or '}' in the struct, got 'events'",
    ),
    (
        "unterminated note",
        S + "+0 connect(3, ..., ...) = -1 EINPROGRESS (Operation now\n",
        2,
        42,
        "unterminated note: no ')' matches this '('",
    ),
    (
        "unknown function",
        S + "+0 f(htonz(1)) = 0\n",
        2,
        6,
        "unknown function 'htonz': expected one of htons, htonl, inet_addr, inet6_addr",
    ),
    (
        "bad inet_addr",
        S + '+0 f(inet_addr("192.0.2")) = 0\n',
        2,
        6,
        "inet_addr(): '192.0.2' is not an IPv4 address",
    ),
    (
        "inet6_addr without string",
        S + "+0 f(inet6_addr(1)) = 0\n",
        2,
        6,
        "inet6_addr() takes a quoted IPv6 address",
    ),
    ("htons out of range", S + "+0 f(htons(70000)) = 0\n", 2, 6, "htons(70000): out of range 0..65535"),
    (
        "bare address",
        S + "+0 f(192.0.2.1) = 0\n",
        2,
        6,
        'a bare address is not an expression: write inet_addr("192.0.2.1")',
    ),
    (
        "sized member missing )",
        S + "+0 sendmsg(4, {msg_iov(1=[]}, 0) = 0\n",
        2,
        25,
        "expected ')' after the size of member msg_iov, got '='",
    ),
    (
        "statement continues",
        S + "+0 close(3) = 0 EBADF (x) junk\n",
        2,
        27,
        "unexpected 'junk' after the system call close()",
    ),
    # packets
    (
        "seq END mismatch",
        S + "+0 > S 0:10(5)\n",
        2,
        10,
        "inconsistent sequence range 0:10(5): END must be START + LEN = 5",
    ),
    (
        "seq missing",
        S + "+0 > S. ack 1\n",
        2,
        9,
        "expected the sequence range START:END(LEN) after the flags, got 'ack'",
    ),
    (
        "seq missing length",
        S + "+0 > S 0:0 ack 1\n",
        2,
        12,
        "expected '(' and the payload length in START:END(LEN)",
    ),
    (
        "sequence out of range",
        S + "+0 > . 4294967296:4294967296(0)\n",
        2,
        8,
        "start sequence number 4294967296 is out of range 0..4294967295",
    ),
    (
        "bad flag letter",
        S + "+0 > SX. 0:0(0)\n",
        2,
        7,
        "bad TCP flag 'X' in 'SX.': flags are S . F R P U E W A, an AccECN ACE digit 0-7, or - for none",
    ),
    ("flag digit 8", S + "+0 > .8 1:1(0)\n", 2, 7, "bad TCP flag '8' in '.8': the AccECN ACE digit is 0-7"),
    (
        "ACE digit mixed with E",
        S + "+0 > E.5 1:1(0)\n",
        2,
        6,
        "TCP flags 'E.5': the AccECN ACE digit sets A, W and E and cannot be mixed with them",
    ),
    ("two ACE digits", S + "+0 > 55 1:1(0)\n", 2, 7, "a second AccECN ACE digit '5' in TCP flags '55'"),
    ("duplicate flag", S + "+0 > SS 0:0(0)\n", 2, 7, "TCP flag 'S' given twice in 'SS'"),
    (
        "missing flags",
        S + "+0 > 0:0(0)\n",
        2,
        7,
        "expected the sequence range START:END(LEN) after the flags, got ':'",
    ),
    (
        "fields out of order",
        S + "+0 < . 1:1(0) win 257 ack 1\n",
        2,
        23,
        "'ack' is out of place: a TCP packet's fields come in the order ack N, win N, urg N, <options>",
    ),
    (
        "window out of range",
        S + "+0 < . 1:1(0) ack 1 win 65536\n",
        2,
        25,
        "TCP win 65536 is out of range 0..65535",
    ),
    (
        "options not a multiple of 4",
        S + "+0 > S 0:0(0) <mss 1460,nop>\n",
        2,
        15,
        "TCP options take 5 bytes, not a multiple of 4: pad them with nop or eol",
    ),
    (
        "options longer than 40",
        S + "+0 > . 1:1(0) <nop,nop,sack 1:2 3:4 5:6 7:8 9:10>\n",
        2,
        15,
        "TCP options take 44 bytes, more than the 40 a TCP header can hold",
    ),
    (
        "any options on inbound",
        S + "+0 < S 0:0(0) win 1000 <...>\n",
        2,
        24,
        "<...> (options not checked) can only be used with outbound packets",
    ),
    ("empty option list", S + "+0 > S 0:0(0) <>\n", 2, 16, "empty TCP option list"),
    (
        "unknown TCP option",
        S + "+0 > S 0:0(0) <mss 1460,timestamp 1>\n",
        2,
        25,
        "unknown TCP option 'timestamp': expected one of nop, eol, mss, wscale, sackOK, sack, TS, FO, FOEXP,",
    ),
    (
        "option list separator",
        S + "+0 > S 0:0(0) <mss 1460 nop>\n",
        2,
        25,
        "expected ',' or '>' in the TCP option list, got 'nop'",
    ),
    (
        "wscale out of range",
        S + "+0 > S 0:0(0) <nop,wscale 256>\n",
        2,
        27,
        "window scale shift count 256 is out of range 0..255",
    ),
    (
        "TS without ecr",
        S + "+0 > S 0:0(0) <TS val 1,nop,nop>\n",
        2,
        24,
        "expected 'ecr' after the TS val (TS val V ecr E), got ','",
    ),
    (
        "sack without blocks",
        S + "+0 > . 1:1(0) <nop,nop,sack>\n",
        2,
        28,
        "expected a SACK block L:R after 'sack', got '>'",
    ),
    (
        "odd FO cookie",
        S + "+0 > S 0:0(0) <FO 123,nop>\n",
        2,
        19,
        "TCP Fast Open cookie '123' has an odd number of hex digits",
    ),
    ("non-hex md5", S + "+0 > S 0:0(0) <md5 zz,nop,nop>\n", 2, 20, "TCP MD5 digest 'zz' is not a hex string"),
    (
        "long FO cookie",
        S + "+0 > S 0:0(0) <FO " + "00" * 17 + ",nop,nop>\n",
        2,
        19,
        "TCP Fast Open cookie of 17 bytes is longer than 16 bytes",
    ),
    (
        "AccECN order",
        S + "+0 > . 1:1(0) <ECN ceb 1,nop,nop,nop>\n",
        2,
        16,
        "AccECN counters in the order ceb: expected e0b [ceb [e1b]] or e1b [ceb [e0b]]",
    ),
    (
        "AccECN without counters",
        S + "+0 > . 1:1(0) <ECN,nop,nop>\n",
        2,
        19,
        "expected an AccECN counter (ECN e0b N [ceb N [e1b N]] or ECN e1b N [ceb N [e0b N]]), got ','",
    ),
    (
        "AccECN mixed order",
        S + "+0 > . 1:1(0) <ECN e0b 1 e1b 2,nop>\n",
        2,
        16,
        "AccECN counters in the order e0b e1b: expected e0b [ceb [e1b]] or e1b [ceb [e0b]]",
    ),
    (
        "bad ip info",
        S + "+0 < (ect2) . 1:1(0)\n",
        2,
        7,
        "expected noecn, ect0, ect1, ce, ect01, tos N, ttl N, flowlabel N, id N, src A, dst A, df, nodf, "
        "frag OFF[:LEN], mf or nomf (IP info), got 'ect2'",
    ),
    ("ecn and tos", S + "+0 > (ect0, tos 0x2) . 1:1(0)\n", 2, 7, "give an ECN codepoint or tos"),
    (
        "ect01 inbound",
        S + "+0 < [ect01] . 1:1(0)\n",
        2,
        7,
        "ect01 (either ECT codepoint) can only be used with outbound packets",
    ),
    (
        "flowlabel out of range",
        S + "+0 > (flowlabel 0x100000) . 1:1(0)\n",
        2,
        17,
        "IP flowlabel 0x100000 is out of range 0..1048575",
    ),
    (
        "port out of range",
        S + "+0 < 70000>8080 S 0:0(0)\n",
        2,
        6,
        "source port 70000 is out of range 0..65535",
    ),
    (
        "udp without length",
        S + "+0 < udp\n",
        3,
        1,
        "expected '(' and the payload length after udp, as in udp(100), got end of file",
    ),
    (
        "bad ICMP code",
        S + "+0 < icmp unreachable frag_neded mtu 800\n",
        2,
        23,
        "bad ICMP code frag_neded for IPv4 unreachable (net_unreachable, host_unreachable,",
    ),
    (
        "bad ICMP type",
        S + "+0 < icmp unreachabel\n",
        2,
        11,
        "bad ICMP type unreachabel for IPv4: expected type_N or one of",
    ),
    (
        "v4 code under ipv6",
        "--ip_version=ipv6\n" + S + "+0 < icmp unreachable frag_needed\n",
        3,
        23,
        "bad ICMP code frag_needed for IPv6 unreachable",
    ),
    ("undefined CODE", S + "+0 < icmp unreachable CODE\n", 2, 23, "bad ICMP code CODE for IPv4 unreachable"),
    (
        "code on a type without names",
        S + "+0 < icmp echo_request net_unreachable\n",
        2,
        24,
        "bad ICMP code net_unreachable for IPv4 echo_request (no names for echo_request, only code_N)",
    ),
    (
        "mtu without frag_needed",
        S + "+0 < icmp unreachable host_unreachable mtu 800\n",
        2,
        40,
        "mtu is only valid with ICMPv4 unreachable frag_needed",
    ),
    (
        "mtu on ipv6 unreachable",
        "--ip_version=ipv6\n" + S + "+0 < icmp unreachable port_unreachable mtu 1280\n",
        3,
        40,
        "mtu is only valid with ICMPv6 packet_too_big",
    ),
    (
        "bad echoed packet",
        S + "+0 < icmp unreachable port_unreachable [tcp(10)]\n",
        2,
        41,
        "expected the echoed packet: [START:END(LEN)], [udp(LEN)] or [raw(LEN)], got 'tcp'",
    ),
    (
        "echoed seq mismatch",
        S + "+0 < icmp unreachable host_unreachable [0:10(5)]\n",
        2,
        43,
        "inconsistent sequence range 0:10(5)",
    ),
    (
        "missing action",
        S + "+0\n",
        3,
        1,
        "expected a packet ('<' or '>'), a system call, a `command` or a %{ code }% block after the time, "
        "got end of file",
    ),
    (
        "encap without address",
        S + "+0 < ipv4 gre: . 1:1(0)\n",
        2,
        11,
        "expected the outer source address after 'ipv4', got 'gre'",
    ),
    (
        "mpls without entries",
        S + "+0 < mpls: . 1:1(0)\n",
        2,
        10,
        "expected an MPLS entry (label L, tc T, [S], ttl N) after 'mpls', got ':'",
    ),
    (
        "inbound silence",
        S + "+0 < none\n",
        2,
        6,
        "'none' (expect silence) is only for outbound lines",
    ),
]


@pytest.mark.parametrize(
    ("script", "line", "col", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_error(script: str, line: int, col: int, message: str) -> None:
    with pytest.raises(ScriptError) as caught:
        parse(script, path="t.pkt")
    error = caught.value
    assert (error.line, error.col) == (line, col), str(error)
    assert error.message.startswith(message), error.message
    assert str(error) == f"t.pkt:{line}:{col}: {error.message}"


def test_there_are_many_error_cases() -> None:
    assert len(CASES) >= 30


def test_several_errors_are_collected_in_source_order() -> None:
    script = (
        S
        + "+0 > S 0:10(5) <mss 1460,nop>\n"  # two checks fail on this line
        + "+0 close(3 4) = 0\n"  # a syntax error: the line is abandoned
        + "+0 > SX 0:0(0)\n"
        + "+0 close(3) = 0\n"
    )
    with pytest.raises(ScriptError) as caught:
        parse(script, path="t.pkt")
    assert [str(e) for e in caught.value.errors] == [
        "t.pkt:2:10: inconsistent sequence range 0:10(5): END must be START + LEN = 5",
        "t.pkt:2:16: TCP options take 5 bytes, not a multiple of 4: pad them with nop or eol",
        "t.pkt:3:12: expected ')' after syscall arguments, got '4'",
        "t.pkt:4:7: bad TCP flag 'X' in 'SX': flags are S . F R P U E W A, an AccECN ACE digit 0-7, or - "
        "for none",
    ]
    assert caught.value is caught.value.errors[0]


def test_several_lexical_errors_are_collected() -> None:
    with pytest.raises(ScriptError) as caught:
        parse(S + '+0 f("a) = 0\n+0 f("b) = 0\n')
    assert [(e.line, e.col) for e in caught.value.errors] == [(2, 6), (3, 6)]


def test_error_repr_and_fields() -> None:
    error = ScriptError("a.pkt", 3, 7, "expected ')'")
    assert (error.path, error.line, error.col, error.message) == ("a.pkt", 3, 7, "expected ')'")
    assert str(error) == "a.pkt:3:7: expected ')'" and error.errors == (error,)
    assert repr(error) == "ScriptError('a.pkt', 3, 7, \"expected ')'\")"


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "bad.pkt"
    path.write_bytes(S.encode() + b"+0 close(\xff) = 0\n")
    with pytest.raises(ScriptError) as caught:
        parse_file(path)
    assert (caught.value.line, caught.value.col) == (2, 10)
    assert "not UTF-8" in caught.value.message and caught.value.path == str(path)


EXAMPLE = (Path(__file__).parent / "scripts" / "passive_open_peer_close.pkt").read_text()
PIECES = [*'<>()[]{},:=|+*~.-"`%#@/\n 0123456789SFRPEWAx', "...", "--", "%{", "}%", "/*", "0x", "::"]


@given(st.data())
def test_mangled_scripts_raise_script_errors_only(data: st.DataObject) -> None:
    text = EXAMPLE
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(text)))
        if data.draw(st.booleans()):
            text = text[:at] + data.draw(st.sampled_from(PIECES)) + text[at:]
        else:
            text = text[:at] + text[at + data.draw(st.integers(1, 6)) :]
    try:
        parse(text)
    except ScriptError as error:
        assert all(e.line >= 1 and e.col >= 1 and e.message for e in error.errors)


@given(st.text(max_size=80))
def test_arbitrary_text_raises_script_errors_only(text: str) -> None:
    try:
        parse(text)
    except ScriptError as error:
        assert error.errors[0] is error
