"""Fifty distinct malformed ``.pkt`` scripts, each with the line its error is on.

Every script is a good packetdrill preamble with one thing broken: a bad token, a
bad number, a missing part, a bad option, bad IP info, an unterminated code block
or string, an impossible time...  :func:`write_all` writes them to a directory as
``NN_<name>.pkt``; the harness must report each as ``file:line:col: message`` with
exit status 2, never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

GOOD = [
    "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3",
    "+0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0",
    "+0 bind(3, ..., ...) = 0",
    "+0 listen(3, 1) = 0",
    "+0 < S 0:0(0) win 65535 <mss 1000>",
    "+0 > S. 0:0(0) ack 1 <mss 1460>",
    "+.01 < . 1:1(0) ack 1 win 65535",
    "+0 accept(3, ..., ...) = 4",
]


class Malformed(NamedTuple):
    name: str
    text: str
    line: int  # the line the error must name (1-based)


def _at(index: int, bad: str, name: str) -> Malformed:
    """GOOD with line ``index`` (0-based) replaced by ``bad``."""
    lines = [*GOOD[:index], bad, *GOOD[index + 1 :]]
    return Malformed(name, "\n".join(lines) + "\n", index + 1)


def _after(bad: str, name: str) -> Malformed:
    """GOOD followed by ``bad`` (whatever it breaks, the error is on that last line)."""
    return Malformed(name, "\n".join([*GOOD, bad]) + "\n", len(GOOD) + 1)


CASES: list[Malformed] = [
    # --- lexical: bad tokens, unterminated strings, blocks and comments ---------------------
    _at(1, '+0 setsockopt(3, SOL_TCP, TCP_CONGESTION, "reno, 4) = 0', "unterminated_string"),
    _after("+0 `sysctl -q net.ipv4.tcp_sack=0", "unterminated_backquote"),
    _after("+0 %{ assert tcpi_snd_cwnd == 10", "unterminated_code_block"),
    Malformed("unterminated_comment", "/* a comment\n" + "\n".join(GOOD) + "\n", 1),
    _at(2, "# a shell comment", "hash_comment"),
    _at(3, "+0 listen(3 @ 1) = 0", "unknown_character_at"),
    _at(3, "+0 listen(3, 1) = 0 $", "unknown_character_dollar"),
    _after("+0 close(4)) = 0", "unbalanced_paren"),
    _after("+0 close(4 = 0", "unclosed_paren"),
    _at(1, "+0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1, 4) = 0", "unclosed_array"),
    # --- numbers and times ----------------------------------------------------------------------
    _at(0, "1 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3", "first_event_not_at_zero"),
    _at(0, "+0.5 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3", "first_event_relative"),
    _at(2, "+-0.5 bind(3, ..., ...) = 0", "negative_relative_time"),
    _at(2, "-1 bind(3, ..., ...) = 0", "negative_absolute_time"),
    _at(6, "+0.2~+0.1 < . 1:1(0) ack 1 win 65535", "backwards_relative_range"),
    _at(6, "0.2~0.1 < . 1:1(0) ack 1 win 65535", "backwards_absolute_range"),
    _at(6, "+0.1~0.2 < . 1:1(0) ack 1 win 65535", "relative_range_missing_plus"),
    _at(2, "+0.5.5 bind(3, ..., ...) = 0", "number_two_dots"),
    _at(4, "+0 < S 0x:0(0) win 65535 <mss 1000>", "hex_without_digits"),
    _at(4, "+0 < S 0:0(0) win 99999999 <mss 1000>", "window_too_big"),
    _at(4, "+0 < S 4294967296:4294967296(0) win 65535 <mss 1000>", "seq_past_32_bits"),
    _at(6, "+.01 < . 1:1(0) ack 4294967296 win 65535", "ack_past_32_bits"),
    _at(4, "+0 < S 0:10(5) win 65535 <mss 1000>", "seq_range_length_mismatch"),
    _at(4, "+0 < S a:0(0) win 65535 <mss 1000>", "seq_not_a_number"),
    # --- missing parts ----------------------------------------------------------------------------
    _at(5, "+0 > S. 0:0(0) ack <mss 1460>", "ack_without_value"),
    _at(4, "+0 < S 0:0(0) win <mss 1000>", "win_without_value"),
    _at(4, "+0 S 0:0(0) win 65535 <mss 1000>", "packet_without_direction"),
    _after("+0 >", "direction_without_packet"),
    _at(3, "+0 listen(3, 1)", "syscall_without_result"),
    _at(3, "+0 listen(3, 1) =", "syscall_result_missing"),
    _at(3, "+0 (3, 1) = 0", "syscall_without_name"),
    _at(4, "+0 < S 0:0 win 65535 <mss 1000>", "seq_without_length"),
    _after("+0", "time_without_event"),
    # --- bad flags and options ---------------------------------------------------------------------
    _at(4, "+0 < Q 0:0(0) win 65535 <mss 1000>", "unknown_tcp_flag"),
    _at(4, "+0 < S 0:0(0) win 65535 <mss 1000, frobnicate 3>", "unknown_tcp_option"),
    _at(4, "+0 < S 0:0(0) win 65535 <mss 70000>", "mss_too_big"),
    _at(4, "+0 < S 0:0(0) win 65535 <mss 1000, wscale 300>", "wscale_too_big"),
    _at(4, "+0 < S 0:0(0) win 65535 <mss 1000", "unterminated_option_list"),
    _at(6, "+.01 < . 1:1(0) ack 1 win 65535 <sack 1:>", "sack_block_missing_end"),
    _at(4, "+0 < S 0:0(0) win 65535 <mss 1000, TS val 100>", "timestamp_without_ecr"),
    _at(4, "+0 < S 0:0(0) win 65535 <mss 1000,, nop>", "option_list_double_comma"),
    _at(2, "+0 bind(3, {sa_family=AF_INET, sin_port=htons(8080), = 0", "struct_unclosed"),
    # --- bad IP info ---------------------------------------------------------------------------------
    _at(4, "+0 < (tos 0x1ff) S 0:0(0) win 65535 <mss 1000>", "ip_tos_too_big"),
    _at(4, "+0 < (ttl 256) S 0:0(0) win 65535 <mss 1000>", "ip_ttl_too_big"),
    _at(4, "+0 < (src 192.0.2) S 0:0(0) win 65535 <mss 1000>", "ip_source_address_truncated"),
    _at(4, "+0 < (frag 3) S 0:0(0) win 65535 <mss 1000>", "ip_fragment_offset_not_multiple_of_8"),
    _at(4, "+0 < (bogus) S 0:0(0) win 65535 <mss 1000>", "ip_unknown_info_word"),
    _at(4, "+0 < (ect0 S 0:0(0) win 65535 <mss 1000>", "ip_info_unclosed"),
    # --- other protocols -------------------------------------------------------------------------------
    _after("+0 < udp (", "udp_length_missing"),
    _after("+0 < icmp unreachable frag_needed mtu", "icmp_mtu_without_value"),
]


def write_all(directory: Path) -> list[tuple[Path, Malformed]]:
    """Write every case as ``NN_<name>.pkt`` under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for i, case in enumerate(CASES):
        path = directory / f"{i:02d}_{case.name}.pkt"
        path.write_text(case.text, encoding="utf-8")
        out.append((path, case))
    return out
