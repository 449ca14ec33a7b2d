"""The ``.pkt`` parser: tokens to a :class:`~conformance.script.syntax.Script`.

A hand-written recursive-descent parser for GRAMMAR.md §1-§7 that also makes the
checks packetdrill makes at parse time ("semantic errors"): ``END == START + LEN``,
ranges and ``*`` only on outbound packets, no negative times or backwards ranges,
the first event at time 0, TCP options adding up to a multiple of 4 bytes (and at
most 40), ICMP type and code names of the script's IP version, ``mtu`` only where
it means something, TCP flag letters and the AccECN digit rule, value ranges.

It reports every error it can: a check that fails is recorded and parsing goes on;
a syntax error abandons the statement and parsing resumes at the next line that
starts an event.  :func:`parse` raises the first error with all of them attached.
"""

from __future__ import annotations

import dataclasses
import errno as _errno
import ipaddress
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

from conformance.script.errors import ScriptError, raise_first
from conformance.script.lexer import Token, TokenKind, tokenize
from conformance.script.syntax import (
    ICMP_CODES,
    ICMP_TYPES,
    IGMP_KINDS,
    IGMP_RECORD_TYPES,
    AccEcnOption,
    Action,
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
    Encap,
    EolOption,
    Event,
    Expr,
    FastOpenExpOption,
    FastOpenOption,
    GreEncap,
    IcmpBody,
    IgmpBody,
    IgmpRecord,
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
    Script,
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
    icmp_code_number,
    icmp_type_number,
)

_T = TypeVar("_T")

__all__ = ["parse", "parse_file"]

U8, U16, U20, U24, U32, U64 = 0xFF, 0xFFFF, 0xFFFFF, 0xFFFFFF, 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF
_IP_VERSIONS = {"ipv4": 4, "ipv4-mapped-ipv6": 4, "ipv6": 6}
_ECN = {ecn.value: ecn for ecn in Ecn}
_ERRNO_NAMES = frozenset(_errno.errorcode.values())  # Linux's names, as scripts write them
_FLAG_LETTERS = "SFRPUEWA."
_FUNCTIONS = ("htons", "htonl", "inet_addr", "inet6_addr")
_TCP_FIELDS = ("ack", "win", "urg")
_TCP_OPTION_NAMES = "nop, eol, mss, wscale, sackOK, sack, TS, FO, FOEXP, md5, ECN"
_MAX_TCP_OPTION_BYTES = 40
_MAX_COOKIE_BYTES = 16
_GRE_FLAG_WORDS = {"checksum": 0x8000, "key": 0x2000, "sequence": 0x1000}
_GRE_FIELDS = ("flags", "sum", "off", "key", "seq")

# Options whose values are checked (GRAMMAR.md §7); any other --name is kept as written.
_INT_OPTIONS = {
    "tolerance_usecs": U32,
    "tcp_ts_tick_usecs": U32,
    "mss": U16,
    "mtu": U16,
    "speed": U32,
    "bind_port": U16,
    "connect_port": U16,
    "wire_server_port": U16,
    "psp_udp_port": U16,
}
_ADDRESS_OPTIONS = ("local_ip", "remote_ip", "gateway_ip", "netmask_ip")
_VALUE_OPTIONS = ("ip_version", "tolerance_percent", "define")


class _StatementError(Exception):
    """A syntax error: the statement is abandoned."""

    def __init__(self, error: ScriptError) -> None:
        super().__init__(str(error))
        self.error = error


def _seconds(usecs: int) -> str:
    """Microseconds as seconds, the way a script writes them (1500000 -> "1.5")."""
    sign = "-" if usecs < 0 else ""
    whole, fraction = divmod(abs(usecs), 1_000_000)
    return f"{sign}{whole}.{fraction:06d}".rstrip("0").rstrip(".")


class _Parser:
    def __init__(self, tokens: list[Token], text: str, path: str, ip_version: str | None) -> None:
        self.tokens = tokens
        self.text = text
        self.path = path
        self.pos = 0
        self.errors: list[ScriptError] = []
        self.ip_version_override = ip_version
        self.version = 4

    # --- token plumbing ----------------------------------------------------------

    @property
    def tok(self) -> Token:
        return self.tokens[self.pos]

    def peek(self, ahead: int = 1) -> Token:
        return self.tokens[min(self.pos + ahead, len(self.tokens) - 1)]

    def advance(self) -> Token:
        token = self.tokens[self.pos]
        if token.kind is not TokenKind.EOF:
            self.pos += 1
        return token

    def report(self, where: Token | TimeSpec | Event, message: str) -> None:
        """Record an error and go on parsing."""
        self.errors.append(ScriptError(self.path, where.line, where.col, message))

    def abort(self, where: Token, message: str) -> _StatementError:
        return _StatementError(ScriptError(self.path, where.line, where.col, message))

    def expected(self, what: str) -> _StatementError:
        if self.tok.kind is TokenKind.UNKNOWN:
            return self.abort(self.tok, _unknown_char(self.tok))
        return self.abort(self.tok, f"expected {what}, got {self.tok.describe()}")

    def items(self, closing: str, item: Callable[[], _T], what: str) -> list[_T]:
        """Comma-separated ``item``s up to ``closing`` (none at all is allowed), which
        is consumed; anything else after an item is reported as expecting ``what``."""
        found: list[_T] = []
        if not self.tok.is_punct(closing):
            while True:
                found.append(item())
                if self.tok.is_punct(","):
                    self.advance()
                    continue
                if self.tok.is_punct(closing):
                    break
                raise self.expected(what)
        self.advance()
        return found

    def expect_punct(self, char: str, what: str) -> Token:
        if not self.tok.is_punct(char):
            raise self.expected(what)
        return self.advance()

    def expect_word(self, word: str, what: str) -> Token:
        if not self.tok.is_word(word):
            raise self.expected(what)
        return self.advance()

    def integer(self, what: str, high: int, low: int = 0) -> tuple[int, Token]:
        """An integer token in ``low..high`` (an out-of-range value is reported, kept)."""
        token = self.tok
        if token.kind is not TokenKind.INT:
            raise self.expected(what)
        self.advance()
        value = token.int_value
        if not low <= value <= high:
            self.report(token, f"{what} {token.text} is out of range {low}..{high}")
        return value, token

    # --- the file ----------------------------------------------------------------

    def script(self) -> Script:
        options: list[Option] = []
        while self.tok.kind is TokenKind.OPTION:
            options.append(self.option(self.advance()))
        self.version = self.ip_version(options)
        init = None
        if self.tok.kind is TokenKind.COMMAND:
            init = self.shell(self.advance())
        events: list[Event] = []
        cleanup = None
        while self.tok.kind is not TokenKind.EOF:
            if self.tok.kind is TokenKind.COMMAND and self.peek().kind is TokenKind.EOF:
                cleanup = self.shell(self.advance())
                break
            start = self.pos
            try:
                events.append(self.event())
            except _StatementError as abort:
                self.errors.append(abort.error)
                self.resync(start)
        if not events:
            self.report(
                self.tok, "the script has no events: expected at least one line such as '0 socket(...) = 3'"
            )
        elif events[0].time.kind is not TimeKind.ANY and events[0].time.start_usecs != 0:
            first = events[0].time
            written = ("+" if first.is_relative else "") + _seconds(first.start_usecs)
            self.report(first, f"the first event must be at time 0, got {written}")
        raise_first(self.errors)
        return Script(self.path, tuple(options), init, tuple(events), cleanup, line=1, col=1)

    def resync(self, start: int) -> None:
        """Skip to the next line that starts like an event (or the cleanup command)."""
        if self.pos == start:
            self.advance()
        while self.tok.kind is not TokenKind.EOF:
            token = self.tok
            if token.bol and (
                token.is_punct("+*")
                or token.is_number
                or (token.kind is TokenKind.COMMAND and self.peek().kind is TokenKind.EOF)
            ):
                return
            self.advance()

    def option(self, token: Token) -> Option:
        name, value = token.text, token.value
        option = Option(name, value, line=token.line, col=token.col)
        needs_value = name in _INT_OPTIONS or name in _ADDRESS_OPTIONS or name in _VALUE_OPTIONS
        if needs_value and not value:
            self.report(token, f"option --{name} needs a value: --{name}=VALUE")
            return option
        if value is None:
            return option
        if name == "ip_version" and value not in _IP_VERSIONS:
            self.report(token, f"--ip_version={value}: expected ipv4, ipv4-mapped-ipv6 or ipv6")
        elif name in _INT_OPTIONS:
            high = _INT_OPTIONS[name]
            if not re.fullmatch(r"[0-9]+", value) or int(value) > high:
                self.report(token, f"--{name}={value}: expected an integer in 0..{high}")
        elif name == "tolerance_percent":
            try:
                Decimal(value)
            except ArithmeticError:
                self.report(token, f"--tolerance_percent={value}: expected a number")
        elif name in _ADDRESS_OPTIONS:
            try:
                ipaddress.ip_interface(value)
            except ValueError:
                self.report(token, f"--{name}={value}: expected an IPv4 or IPv6 address")
        elif name == "define" and not re.fullmatch(r"[A-Za-z0-9_]+=.*", value, re.DOTALL):
            self.report(token, f"--define={value}: expected SYMBOL=VALUE")
        return option

    def ip_version(self, options: list[Option]) -> int:
        chosen = self.ip_version_override
        if chosen is None:
            for option in options:
                if option.name == "ip_version" and option.value in _IP_VERSIONS:
                    chosen = option.value
        return _IP_VERSIONS.get(chosen or "ipv4", 4)

    @staticmethod
    def shell(token: Token) -> ShellEvent:
        return ShellEvent(token.text, line=token.line, col=token.col)

    # --- events ------------------------------------------------------------------

    def event(self) -> Event:
        token = self.tok
        if token.kind is TokenKind.OPTION:
            raise self.abort(
                token,
                f"option --{token.text} out of place: options go first, before the init command and events",
            )
        if token.kind is TokenKind.COMMAND:
            raise self.abort(
                token,
                "a backquoted command needs a time (such as +0) unless it is the init command "
                "(before the first event) or the cleanup command (after the last one)",
            )
        time = self.time_spec()
        end_time = None
        if self.tok.kind is TokenKind.ELLIPSIS:
            end_time = self.end_time(time)
            if not (self.tok.is_word() and self.peek().is_punct("(")):
                raise self.expected("a system call after the blocking end time '...'")
        action = self.action(end_time)
        if time.kind is TimeKind.ANY or time.is_range:
            outbound = isinstance(action, PacketEvent) and action.direction is Direction.OUTBOUND
            if not outbound:
                what = "'*' (any time)" if time.kind is TimeKind.ANY else f"a time range ({time.kind.value})"
                self.report(time, f"{what} can only be used with outbound packets")
        after = self.tok
        if not after.bol and after.kind is not TokenKind.EOF:
            if after.kind is TokenKind.COMMAND and self.peek().kind is TokenKind.EOF:
                pass  # the cleanup command, written on the last event's line
            else:
                raise self.abort(after, f"unexpected {after.describe()} after the {_describe(action)}")
        return Event(time, action, line=time.line, col=time.col)

    def time_spec(self) -> TimeSpec:
        first = self.tok
        if first.is_punct("*"):
            self.advance()
            return TimeSpec(TimeKind.ANY, line=first.line, col=first.col)
        relative = first.is_punct("+")
        if relative:
            self.advance()
        start = self.seconds()
        if not self.tok.is_punct("~"):
            kind = TimeKind.RELATIVE if relative else TimeKind.ABSOLUTE
            return TimeSpec(kind, start, line=first.line, col=first.col)
        tilde = self.advance()
        end_relative = self.tok.is_punct("+")
        if end_relative:
            self.advance()
        end = self.seconds()
        if relative and not end_relative:
            self.report(tilde, "a relative time range needs '+' on both ends, as in +0.1~+0.2")
        elif end_relative and not relative:
            self.report(tilde, "an absolute time range cannot end with a relative time: write 0.1~0.2")
        spec = TimeSpec(
            TimeKind.RELATIVE_RANGE if relative else TimeKind.ABSOLUTE_RANGE,
            start,
            end,
            line=first.line,
            col=first.col,
        )
        if end < start:
            plus = "+" if relative else ""
            self.report(
                spec,
                f"time range {plus}{_seconds(start)}~{plus}{_seconds(end)} is backwards: "
                "its end is before its start",
            )
        return spec

    def seconds(self) -> int:
        """A time in seconds (an integer, or a float with a '.'), as microseconds."""
        token = self.tok
        if not token.is_number:
            raise self.expected("an event time (0, 1.5, +0.1, 0.1~0.2, +0.1~+0.2 or *)")
        self.advance()
        if token.kind is TokenKind.INT:
            usecs = token.int_value * 1_000_000
        else:
            usecs = int(Decimal(token.text) * 1_000_000)  # exact; truncates below 1 µs
        if token.text.startswith("-"):
            self.report(token, f"negative time {token.text}")
        return usecs

    def end_time(self, start: TimeSpec) -> TimeSpec:
        ellipsis = self.advance()
        if self.tok.is_punct("+"):
            raise self.abort(
                self.tok,
                "the end time of a blocking call is written without '+': "
                "it counts from the same point as the start time",
            )
        if not self.tok.is_number:
            raise self.expected("the end time of the blocking call after '...'")
        usecs = self.seconds()
        kind = TimeKind.RELATIVE if start.is_relative else TimeKind.ABSOLUTE
        if start.kind in (TimeKind.ABSOLUTE, TimeKind.RELATIVE) and usecs < start.start_usecs:
            self.report(
                ellipsis,
                f"blocking call ends at {_seconds(usecs)}, before it starts at {_seconds(start.start_usecs)}",
            )
        return TimeSpec(kind, usecs, line=ellipsis.line, col=ellipsis.col)

    def action(self, end_time: TimeSpec | None) -> Action:
        token = self.tok
        if token.is_punct("<>"):
            return self.packet()
        if token.kind is TokenKind.COMMAND:
            return self.shell(self.advance())
        if token.kind is TokenKind.CODE:
            self.advance()
            return CodeEvent(token.text, line=token.line, col=token.col)
        if token.kind is TokenKind.WORD:
            return self.syscall(end_time)
        raise self.expected(
            "a packet ('<' or '>'), a system call, a `command` or a %{ code }% block after the time"
        )

    # --- system calls (§4) -------------------------------------------------------

    def syscall(self, end_time: TimeSpec | None) -> SyscallEvent:
        name = self.advance()
        if not self.tok.is_punct("("):
            raise self.expected(f"'(' after the system call name '{name.text}'")
        self.advance()
        args = self.items(")", self.expr, "')' after syscall arguments")
        if not self.tok.is_punct("="):
            raise self.expected(f"'=' and the expected return value after {name.text}(...)")
        self.advance()
        ret = self.expr()
        errno = None
        if self.tok.is_word() and not self.tok.bol:
            word = self.advance()
            errno = word.text
            if errno not in _ERRNO_NAMES:
                self.report(
                    word, f"unknown errno name {errno!r} after the return value (EINVAL, EAGAIN, ...)"
                )
        note = None
        if self.tok.is_punct("(") and not self.tok.bol:
            note = self.note()
        return SyscallEvent(name.text, tuple(args), ret, errno, note, end_time, line=name.line, col=name.col)

    def note(self) -> str:
        """``(free-form text)``: whatever stands between balanced parentheses."""
        opening = self.advance()
        depth = 1
        while True:
            token = self.tok
            if token.kind is TokenKind.EOF:
                raise self.abort(opening, "unterminated note: no ')' matches this '('")
            self.advance()
            if token.is_punct("("):
                depth += 1
            elif token.is_punct(")"):
                depth -= 1
                if depth == 0:
                    return " ".join(self.text[opening.end : token.offset].split())

    def expr(self) -> Expr:
        first = self.term()
        if not self.tok.is_punct("|"):
            return first
        operands = [first]
        while self.tok.is_punct("|"):
            self.advance()
            operands.append(self.term())
        return BitOrExpr(tuple(operands), line=first.line, col=first.col)

    def term(self) -> Expr:
        token = self.tok
        line, col = token.line, token.col
        if token.kind is TokenKind.ELLIPSIS:
            self.advance()
            return EllipsisExpr(line=line, col=col)
        if token.kind is TokenKind.INT:
            self.advance()
            return IntExpr(token.int_value, line=line, col=col)
        if token.kind is TokenKind.STRING:
            parts = []
            while self.tok.kind is TokenKind.STRING:
                parts.append(self.advance().text)
            ellipsis = self.tok.kind is TokenKind.ELLIPSIS
            if ellipsis:
                self.advance()
            return StringExpr("".join(parts), ellipsis, line=line, col=col)
        if token.kind is TokenKind.WORD:
            self.advance()
            if self.tok.is_punct("("):
                return self.call(token)
            return SymbolExpr(token.text, line=line, col=col)
        if token.is_punct("["):
            return self.array()
        if token.is_punct("{"):
            return self.struct()
        if token.kind in (TokenKind.IPV4, TokenKind.IPV6):
            func = "inet_addr" if token.kind is TokenKind.IPV4 else "inet6_addr"
            raise self.abort(token, f'a bare address is not an expression: write {func}("{token.text}")')
        raise self.expected('an expression (a number, a SYMBOL, "string", [array], {struct}, ... or f(x))')

    def call(self, name: Token) -> CallExpr:
        self.advance()  # (
        args = self.items(")", self.expr, f"',' or ')' after the arguments of {name.text}()")
        call = CallExpr(name.text, tuple(args), line=name.line, col=name.col)
        if name.text not in _FUNCTIONS:
            self.report(name, f"unknown function '{name.text}': expected one of {', '.join(_FUNCTIONS)}")
            return call
        if len(args) != 1:
            self.report(name, f"{name.text}() takes one argument, got {len(args)}")
            return call
        arg = args[0]
        if name.text in ("inet_addr", "inet6_addr"):
            family = "IPv4" if name.text == "inet_addr" else "IPv6"
            if not isinstance(arg, StringExpr):
                self.report(name, f'{name.text}() takes a quoted {family} address, as in {name.text}("...")')
                return call
            try:
                if family == "IPv4":
                    ipaddress.IPv4Address(arg.value)
                else:
                    ipaddress.IPv6Address(arg.value)
            except ValueError:
                self.report(name, f"{name.text}(): '{arg.value}' is not an {family} address")
        elif isinstance(arg, IntExpr):
            high = U16 if name.text == "htons" else U32
            if not 0 <= arg.value <= high:
                self.report(name, f"{name.text}({arg.value}): out of range 0..{high}")
        return call

    def array(self) -> ArrayExpr:
        opening = self.advance()
        items = self.items("]", self.expr, "',' or ']' in the array")
        return ArrayExpr(tuple(items), line=opening.line, col=opening.col)

    def struct(self) -> StructExpr:
        opening = self.advance()
        fields = self.items("}", self.member, "',' or '}' in the struct")
        return StructExpr(tuple(fields), line=opening.line, col=opening.col)

    def member(self) -> tuple[str | None, Expr]:
        """``name=value``, ``name(size)=value`` or a positional ``value``."""
        token = self.tok
        if token.is_word() and self.peek().is_punct("="):
            self.advance()
            self.advance()
            return token.text, self.expr()
        if token.is_word() and self.peek().is_punct("(") and self.sized_member_ahead():
            self.advance()
            self.advance()  # (
            size = self.expr()
            self.expect_punct(")", f"')' after the size of member {token.text}")
            self.advance()  # = (checked by sized_member_ahead)
            value = self.expr()
            return token.text, SizedExpr(size, value, line=token.line, col=token.col)
        return None, self.expr()

    def sized_member_ahead(self) -> bool:
        """Is ``WORD ( ... )`` at the cursor followed by ``=``?"""
        depth, index = 0, self.pos + 1
        while index < len(self.tokens) - 1:
            token = self.tokens[index]
            if token.is_punct("(["):
                depth += 1
            elif token.is_punct(")]"):
                depth -= 1
                if depth == 0:
                    return self.tokens[index + 1].is_punct("=")
            index += 1
        return False

    # --- packets (§3) ------------------------------------------------------------

    def packet(self) -> PacketEvent:
        arrow = self.advance()
        direction = Direction.INBOUND if arrow.text == "<" else Direction.OUTBOUND
        ip_info = self.ip_info(direction) if self.tok.is_punct("([") else None
        encaps = self.encaps(direction)
        if encaps and ip_info is None and self.tok.is_punct("(["):
            ip_info = self.ip_info(direction)
        line, col = arrow.line, arrow.col
        if self.tok.is_word("none") and ip_info is None and not encaps:
            word = self.advance()
            if direction is Direction.INBOUND:
                raise self.abort(word, "'none' (expect silence) is only for outbound lines: '> none'")
            silence = SilenceBody(line=word.line, col=word.col)
            return PacketEvent(direction, None, None, silence, line=line, col=col)
        if self.tok.is_word("udp"):
            udp = self.advance()
            ports = self.ports()
            self.expect_punct("(", "'(' and the payload length after udp, as in udp(100)")
            length, _ = self.integer("UDP payload length", U16)
            self.expect_punct(")", "')' after the UDP payload length")
            body: TcpBody | UdpBody | IcmpBody = UdpBody(length, line=udp.line, col=udp.col)
            return PacketEvent(direction, ip_info, ports, body, tuple(encaps), line=line, col=col)
        if self.tok.is_word("icmp"):
            return PacketEvent(direction, ip_info, None, self.icmp(), tuple(encaps), line=line, col=col)
        if self.tok.is_word("igmp"):
            return PacketEvent(direction, ip_info, None, self.igmp(), tuple(encaps), line=line, col=col)
        ports = self.ports()
        return PacketEvent(direction, ip_info, ports, self.tcp(direction), tuple(encaps), line=line, col=col)

    def ports(self) -> Ports | None:
        if not (self.tok.kind is TokenKind.INT and self.peek().is_punct(">")):
            return None
        src, token = self.integer("source port", U16)
        self.advance()  # >
        dst, _ = self.integer("destination port", U16)
        return Ports(src, dst, line=token.line, col=token.col)

    def ip_info(self, direction: Direction) -> IpInfo:
        opening = self.advance()
        closing = ")" if opening.text == "(" else "]"
        ecn: Ecn | None = None
        ecn_token: Token | None = None
        values: dict[str, int] = {}
        addresses: dict[str, str] = {}
        bits: dict[str, bool] = {}
        frag: tuple[int, int | None] | None = None
        while True:
            token = self.tok
            if token.is_word(*_ECN):
                self.advance()
                if ecn is not None:
                    self.report(token, f"a second ECN codepoint '{token.text}' in the IP info")
                ecn, ecn_token = _ECN[token.text], token
                if ecn is Ecn.ECT01 and direction is Direction.INBOUND:
                    self.report(token, "ect01 (either ECT codepoint) can only be used with outbound packets")
            elif token.is_word("tos", "ttl", "flowlabel", "id"):
                self.advance()
                high = U20 if token.text == "flowlabel" else U16 if token.text == "id" else U8
                value, _ = self.integer(f"IP {token.text}", high)
                if token.text in values:
                    self.report(token, f"'{token.text}' given twice in the IP info")
                values[token.text] = value
            elif token.is_word("src", "dst"):
                self.advance()
                if self.tok.kind is not TokenKind.IPV4:
                    raise self.expected(f"an IPv4 address after '{token.text}'")
                if token.text in addresses:
                    self.report(token, f"'{token.text}' given twice in the IP info")
                addresses[token.text] = self.advance().text
            elif token.is_word("df", "nodf", "mf", "nomf"):
                self.advance()
                name = token.text.removeprefix("no")
                if name in bits:
                    self.report(token, f"'{name}' (or 'no{name}') given twice in the IP info")
                bits[name] = not token.text.startswith("no")
            elif token.is_word("frag"):
                self.advance()
                if frag is not None:
                    self.report(token, "'frag' given twice in the IP info")
                offset, offset_token = self.integer("fragment offset (bytes)", 0xFFF8)
                if offset % 8:
                    self.report(offset_token, f"fragment offset {offset} is not a multiple of 8")
                length: int | None = None
                if self.tok.is_punct(":"):
                    self.advance()
                    length, _ = self.integer("fragment length (bytes)", U16)
                frag = (offset, length)
            else:
                raise self.expected(
                    "noecn, ect0, ect1, ce, ect01, tos N, ttl N, flowlabel N, id N, src A, dst A, "
                    "df, nodf, frag OFF[:LEN], mf or nomf (IP info)"
                )
            if self.tok.is_punct(","):
                self.advance()
                continue
            if self.tok.is_punct(closing):
                self.advance()
                break
            raise self.expected(f"',' or '{closing}' in the IP info")
        if ecn_token is not None and "tos" in values:
            self.report(ecn_token, "give an ECN codepoint or tos (the whole byte, ECN included), not both")
        if "mf" in bits and frag is None:
            self.report(opening, "'mf'/'nomf' only make sense with 'frag OFF[:LEN]'")
        return IpInfo(
            ecn,
            values.get("tos"),
            values.get("ttl"),
            values.get("flowlabel"),
            src=addresses.get("src"),
            dst=addresses.get("dst"),
            ip_id=values.get("id"),
            df=bits.get("df"),
            frag_offset=None if frag is None else frag[0],
            frag_length=None if frag is None else frag[1],
            mf=bits.get("mf"),
            line=opening.line,
            col=opening.col,
        )

    def encaps(self, direction: Direction) -> list[Encap]:
        encaps: list[Encap] = []
        while True:
            token = self.tok
            line, col = token.line, token.col
            if token.is_word("ipv4", "ipv6"):
                self.advance()
                version = 4 if token.text == "ipv4" else 6
                kind = TokenKind.IPV4 if version == 4 else TokenKind.IPV6
                inner = self.ip_info(direction) if self.tok.is_punct("([") else None
                if self.tok.kind is not kind:
                    raise self.expected(f"the outer source address after '{token.text}'")
                src = self.advance().text
                self.expect_punct(">", f"'>' between the outer {token.text} addresses")
                if self.tok.kind is not kind:
                    raise self.expected(f"the outer destination address after '{token.text} {src} >'")
                dst = self.advance().text
                self.expect_punct(":", f"':' after the outer {token.text} header")
                encaps.append(IpEncap(version, src, dst, inner, line=line, col=col))
            elif token.is_word("gre", "GREv0"):
                self.advance()
                encaps.append(self.gre(token))
            elif token.is_word("mpls"):
                self.advance()
                entries: list[MplsEntry] = []
                while self.tok.is_punct("("):
                    entries.append(self.mpls_entry())
                if not entries:
                    raise self.expected("an MPLS entry (label L, tc T, [S], ttl N) after 'mpls'")
                self.expect_punct(":", "':' after the MPLS label stack")
                encaps.append(MplsEncap(tuple(entries), line=line, col=col))
            elif token.is_word("psp"):
                self.advance()
                spi, vc = self.psp_fields()
                self.expect_punct(":", "':' after the PSP header")
                encaps.append(PspEncap(spi, vc, line=line, col=col))
            elif token.is_word("encap"):
                self.advance()
                self.expect_word("psp", "'psp' after 'encap'")
                spi, vc = self.psp_fields()
                encaps.append(PspEncap(spi, vc, True, line=token.line, col=token.col))
            else:
                return encaps

    def gre(self, token: Token) -> GreEncap:
        values: dict[str, int] = {}
        if self.tok.is_punct(","):
            self.advance()
        while self.tok.is_word(*_GRE_FIELDS):
            name = self.advance()
            if name.text in values:
                self.report(name, f"GRE field '{name.text}' given twice")
            if name.text == "key" and self.tok.is_punct("="):
                self.advance()
            if name.text == "flags" and self.tok.is_punct("["):
                values["flags"] = self.gre_flag_list()
            else:
                high = U32 if name.text in ("key", "seq") else U16
                values[name.text], _ = self.integer(f"GRE {name.text}", high)
            if self.tok.is_punct(","):
                self.advance()
        self.expect_punct(":", "':' after the GRE header (gre: or gre flags N, sum N, off N, key N, seq N:)")
        return GreEncap(
            values.get("flags"),
            values.get("sum"),
            values.get("off"),
            values.get("key"),
            values.get("seq"),
            line=token.line,
            col=token.col,
        )

    def gre_flag_list(self) -> int:
        self.advance()  # [
        bits = 0
        while True:
            word = self.tok
            if word.is_word("none"):
                self.advance()
            elif word.is_word(*_GRE_FLAG_WORDS):
                self.advance()
                self.expect_word("present", f"'present' after '{word.text}'")
                bits |= _GRE_FLAG_WORDS[word.text]
            else:
                raise self.expected("none, checksum present, key present or sequence present")
            if self.tok.is_punct(","):
                self.advance()
                continue
            self.expect_punct("]", "',' or ']' in the GRE flags")
            return bits

    def mpls_entry(self) -> MplsEntry:
        opening = self.advance()
        self.expect_word("label", "'label' in the MPLS entry (label L, tc T, [S], ttl N)")
        label, _ = self.integer("MPLS label", U20)
        self.expect_punct(",", "',' after the MPLS label")
        self.expect_word("tc", "'tc' in the MPLS entry")
        tc, _ = self.integer("MPLS traffic class", 7)
        self.expect_punct(",", "',' after the MPLS traffic class")
        bottom = False
        if self.tok.is_punct("["):
            self.advance()
            self.expect_word("S", "[S] (bottom of stack)")
            self.expect_punct("]", "']' after [S")
            self.expect_punct(",", "',' after [S]")
            bottom = True
        self.expect_word("ttl", "'ttl' in the MPLS entry")
        ttl, _ = self.integer("MPLS ttl", U8)
        self.expect_punct(")", "')' at the end of the MPLS entry")
        return MplsEntry(label, tc, bottom, ttl, line=opening.line, col=opening.col)

    def psp_fields(self) -> tuple[int, int | None]:
        self.expect_word("spi", "'spi N' in the PSP header")
        spi, _ = self.integer("PSP spi", U32)
        vc = None
        if self.tok.is_punct(",") and self.peek().is_word("vc"):
            self.advance()
            self.advance()
            vc, _ = self.integer("PSP vc", U64)
        return spi, vc

    def tcp(self, direction: Direction) -> TcpBody:
        flags_token = self.tok
        flags = self.flags()
        start, end, length = self.seq_range("after the flags")
        fields: dict[str, int] = {}
        for name, high in zip(_TCP_FIELDS, (U32, U16, U16), strict=True):
            if self.tok.is_word(name):
                self.advance()
                fields[name], _ = self.integer(f"TCP {name}", high)
        options: tuple[TcpOptionSpec, ...] | AnyOptions | None = None
        if self.tok.is_punct("<"):
            options = self.tcp_options(direction)
        if self.tok.is_word(*_TCP_FIELDS) and not self.tok.bol:
            raise self.abort(
                self.tok,
                f"'{self.tok.text}' is out of place: a TCP packet's fields come in the order "
                "ack N, win N, urg N, <options>",
            )
        return TcpBody(
            flags,
            start,
            end,
            length,
            fields.get("ack"),
            fields.get("win"),
            fields.get("urg"),
            options,
            line=flags_token.line,
            col=flags_token.col,
        )

    def flags(self) -> str:
        """TCP flags: adjacent tokens (``S`` ``.``, ``S`` ``.0``, ``.``) or ``-``."""
        first = self.tok
        if first.is_punct("-"):
            self.advance()
            return ""
        startable = first.is_word() or first.is_punct(".") or first.kind in (TokenKind.INT, TokenKind.FLOAT)
        if not startable:
            raise self.expected("TCP flags (S, S., ., P., F., R, R., SEW, -, ...), udp or icmp")
        parts = [self.advance()]
        while (self.tok.offset == parts[-1].end) and (
            self.tok.is_word() or self.tok.is_punct(".") or self.tok.kind in (TokenKind.INT, TokenKind.FLOAT)
        ):
            parts.append(self.advance())
        text = "".join(part.text for part in parts)
        seen: set[str] = set()
        digit: str | None = None
        for index, char in enumerate(text):
            where = _at(first, index)
            if char in "01234567":
                if digit is not None:
                    self.report(where, f"a second AccECN ACE digit '{char}' in TCP flags '{text}'")
                digit = char
            elif char in _FLAG_LETTERS:
                if char in seen:
                    self.report(where, f"TCP flag '{char}' given twice in '{text}'")
                seen.add(char)
            elif char in "89":
                self.report(where, f"bad TCP flag '{char}' in '{text}': the AccECN ACE digit is 0-7")
            else:
                self.report(
                    where,
                    f"bad TCP flag '{char}' in '{text}': flags are S . F R P U E W A, "
                    "an AccECN ACE digit 0-7, or - for none",
                )
        if digit is not None and seen & set("EWA"):
            self.report(
                first,
                f"TCP flags '{text}': the AccECN ACE digit sets A, W and E and cannot be mixed with them",
            )
        return text

    def seq_range(self, where: str) -> tuple[int, int, int]:
        """``START:END(LEN)`` with ``END == START + LEN``."""
        if self.tok.kind is not TokenKind.INT:
            raise self.expected(f"the sequence range START:END(LEN) {where}")
        start, _ = self.integer("start sequence number", U32)
        self.expect_punct(":", "':' in the sequence range START:END(LEN)")
        if self.tok.kind is not TokenKind.INT:
            raise self.expected("the end sequence number in START:END(LEN)")
        end, end_token = self.integer("end sequence number", U32)
        self.expect_punct("(", "'(' and the payload length in START:END(LEN)")
        if self.tok.kind is not TokenKind.INT:
            raise self.expected("the payload length in START:END(LEN)")
        length, _ = self.integer("payload length", U16)
        self.expect_punct(")", "')' after the payload length in START:END(LEN)")
        if end != (start + length) & 0xFFFFFFFF:  # sequence space wraps (RFC 9293 §3.4)
            self.report(
                end_token,
                f"inconsistent sequence range {start}:{end}({length}): "
                f"END must be START + LEN = {(start + length) & 0xFFFFFFFF}",
            )
        return start, end, length

    def tcp_options(self, direction: Direction) -> tuple[TcpOptionSpec, ...] | AnyOptions:
        opening = self.advance()
        if self.tok.kind is TokenKind.ELLIPSIS:
            self.advance()
            self.expect_punct(">", "'>' after '<...'")
            if direction is Direction.INBOUND:
                self.report(opening, "<...> (options not checked) can only be used with outbound packets")
            return AnyOptions(line=opening.line, col=opening.col)
        if self.tok.is_punct(">"):
            raise self.abort(self.tok, "empty TCP option list: leave out '<>' (no options) or write <...>")
        errors_before = len(self.errors)
        options = self.items(">", self.tcp_option, "',' or '>' in the TCP option list")
        if len(self.errors) > errors_before:
            return tuple(options)  # a bad option's length would only add noise
        total = sum(option.length for option in options)
        if total % 4:
            self.report(
                opening,
                f"TCP options take {total} bytes, not a multiple of 4: pad them with nop or eol",
            )
        if total > _MAX_TCP_OPTION_BYTES:
            self.report(opening, f"TCP options take {total} bytes, more than the 40 a TCP header can hold")
        return tuple(options)

    def tcp_option(self) -> TcpOptionSpec:
        token = self.tok
        line, col = token.line, token.col
        if not token.is_word():
            raise self.expected(f"a TCP option ({_TCP_OPTION_NAMES})")
        name = token.text
        self.advance()
        if name == "nop":
            return NopOption(line=line, col=col)
        if name == "eol":
            return EolOption(line=line, col=col)
        if name == "mss":
            return MssOption(self.integer("mss", U16)[0], line=line, col=col)
        if name == "wscale":
            return WscaleOption(self.integer("window scale shift count", U8)[0], line=line, col=col)
        if name == "sackOK":
            return SackOkOption(line=line, col=col)
        if name == "sack":
            blocks: list[SackBlock] = []
            while self.tok.kind is TokenKind.INT and self.peek().is_punct(":"):
                left, left_token = self.integer("SACK left edge", U32)
                self.advance()  # :
                right, _ = self.integer("SACK right edge", U32)
                blocks.append(SackBlock(left, right, line=left_token.line, col=left_token.col))
            if not blocks:
                raise self.expected("a SACK block L:R after 'sack'")
            return SackOption(tuple(blocks), line=line, col=col)
        if name == "TS":
            self.expect_word("val", "'val' after 'TS' (TS val V ecr E)")
            val, _ = self.integer("TS val", U32)
            self.expect_word("ecr", "'ecr' after the TS val (TS val V ecr E)")
            ecr, _ = self.integer("TS ecr", U32)
            return TimestampOption(val, ecr, line=line, col=col)
        if name in ("FO", "FOEXP"):
            cookie = b""
            if self.tok.kind in (TokenKind.WORD, TokenKind.INT):
                cookie = self.hex_blob("TCP Fast Open cookie", _MAX_COOKIE_BYTES)
            return (
                FastOpenOption(cookie, line=line, col=col)
                if name == "FO"
                else FastOpenExpOption(cookie, line=line, col=col)
            )
        if name == "md5":
            if self.tok.kind not in (TokenKind.WORD, TokenKind.INT):
                raise self.expected("the hex MD5 digest after 'md5'")
            return Md5Option(self.hex_blob("TCP MD5 digest", 16), line=line, col=col)
        if name == "ECN":
            return self.accecn(token)
        raise self.abort(token, f"unknown TCP option '{name}': expected one of {_TCP_OPTION_NAMES}")

    def hex_blob(self, what: str, max_bytes: int) -> bytes:
        token = self.advance()
        text = token.text
        if len(text) % 2:
            self.report(token, f"{what} '{text}' has an odd number of hex digits")
            return b""
        try:
            blob = bytes.fromhex(text)
        except ValueError:
            self.report(token, f"{what} '{text}' is not a hex string")
            return b""
        if len(blob) > max_bytes:
            self.report(token, f"{what} of {len(blob)} bytes is longer than {max_bytes} bytes")
        return blob

    def accecn(self, token: Token) -> AccEcnOption:
        counters: list[tuple[str, int]] = []
        while self.tok.is_word("e0b", "ceb", "e1b"):
            name = self.advance()
            value, _ = self.integer(f"AccECN {name.text} counter", U24)
            counters.append((name.text, value))
        if not counters:
            raise self.expected("an AccECN counter (ECN e0b N [ceb N [e1b N]] or ECN e1b N [ceb N [e0b N]])")
        names = tuple(name for name, _ in counters)
        if names not in {("e0b", "ceb", "e1b")[: len(names)], ("e1b", "ceb", "e0b")[: len(names)]}:
            self.report(
                token,
                f"AccECN counters in the order {' '.join(names)}: "
                "expected e0b [ceb [e1b]] or e1b [ceb [e0b]]",
            )
        return AccEcnOption(tuple(counters), line=token.line, col=token.col)

    def address(self, what: str) -> str:
        if self.tok.kind is not TokenKind.IPV4:
            raise self.expected(what)
        return self.advance().text

    def address_list(self, what: str) -> tuple[str, ...]:
        self.expect_punct("[", f"'[' and the {what}, as in [198.51.100.7, 198.51.100.8]")
        return tuple(self.items("]", lambda: self.address(f"an IPv4 address in the {what}"), "',' or ']'"))

    def igmp(self) -> IgmpBody:
        """``igmp KIND ...`` (extension, EXTENSIONS.md)."""
        igmp = self.advance()
        kind = self.tok
        if not kind.is_word(*IGMP_KINDS):
            raise self.expected(f"an IGMP message after 'igmp' ({', '.join(IGMP_KINDS)})")
        self.advance()
        if kind.text in ("v1_report", "v2_report", "leave"):
            group = self.address(f"the group address after '{kind.text}'")
            return IgmpBody(kind.text, group, line=igmp.line, col=igmp.col)
        if kind.text == "v3_report":
            self.expect_punct("[", "'[' and the group records, as in [to_ex 239.1.2.3 []]")
            records = self.items("]", self.igmp_record, "',' or ']' after a group record")
            return IgmpBody(kind.text, records=tuple(records), line=igmp.line, col=igmp.col)
        queried = self.address("") if self.tok.kind is TokenKind.IPV4 else None
        fields: dict[str, int] = {}
        suppress = False
        sources: tuple[str, ...] = ()
        allowed: tuple[str, ...] = ("max_resp",) if kind.text == "v2_query" else ()
        if kind.text == "v3_query":
            allowed = ("max_resp", "qrv", "qqic", "s", "sources")
        while self.tok.is_word(*allowed):
            word = self.advance()
            if word.text == "s":
                suppress = True
            elif word.text == "sources":
                sources = self.address_list("source list")
            else:
                high = 7 if word.text == "qrv" else U8
                fields[word.text], _ = self.integer(f"IGMP {word.text}", high)
        if self.tok.is_word("max_resp", "qrv", "qqic", "s", "sources"):
            raise self.abort(self.tok, f"'{self.tok.text}' is not a field of an IGMP {kind.text}")
        return IgmpBody(
            kind.text,
            queried,
            fields.get("max_resp"),
            fields.get("qrv"),
            fields.get("qqic"),
            suppress,
            sources,
            line=igmp.line,
            col=igmp.col,
        )

    def igmp_record(self) -> IgmpRecord:
        kind = self.tok
        if not kind.is_word(*IGMP_RECORD_TYPES):
            raise self.expected(f"an IGMPv3 record type ({', '.join(IGMP_RECORD_TYPES)})")
        self.advance()
        group = self.address(f"the group address after '{kind.text}'")
        sources = self.address_list("source list") if self.tok.is_punct("[") else ()
        return IgmpRecord(kind.text, group, sources, line=kind.line, col=kind.col)

    def icmp(self) -> IcmpBody:
        icmp = self.advance()
        type_token = self.tok
        if not type_token.is_word():
            raise self.expected("an ICMP type after 'icmp' (unreachable, echo_request, time_exceeded, ...)")
        self.advance()
        code_token = None
        if self.tok.is_word() and not self.tok.is_word("mtu", "id"):
            code_token = self.advance()
        mtu_token = None
        mtu = None
        if self.tok.is_word("mtu"):
            mtu_token = self.advance()
            mtu, _ = self.integer("ICMP mtu", U16 if self.version == 4 else U32)
        echo_id = None
        if self.tok.is_word("id"):
            self.advance()
            echo_id, _ = self.integer("ICMP echo id", U16)
        echoed: EchoedTcp | EchoedUdp | EchoedRaw | None = None
        if self.tok.is_punct("["):
            echoed = self.icmp_echoed()
        type_num, code_num = self.icmp_numbers(type_token, code_token)
        if mtu_token is not None:
            if self.version == 4 and (type_num, code_num) != (3, 4):
                self.report(mtu_token, "mtu is only valid with ICMPv4 unreachable frag_needed")
            elif self.version == 6 and (type_num, code_num) != (2, 0):
                self.report(mtu_token, "mtu is only valid with ICMPv6 packet_too_big")
        return IcmpBody(
            type_token.text,
            None if code_token is None else code_token.text,
            mtu,
            echo_id,
            echoed,
            self.version,
            line=icmp.line,
            col=icmp.col,
        )

    def icmp_echoed(self) -> EchoedTcp | EchoedUdp | EchoedRaw:
        opening = self.advance()
        line, col = opening.line, opening.col
        echoed: EchoedTcp | EchoedUdp | EchoedRaw
        if self.tok.is_word("udp", "raw"):
            word = self.advance()
            self.expect_punct("(", f"'(' after '{word.text}' in the echoed packet, as in [{word.text}(100)]")
            length, _ = self.integer(f"echoed {word.text} length", U16)
            self.expect_punct(")", f"')' after the echoed {word.text} length")
            echoed = (
                EchoedUdp(length, line=line, col=col)
                if word.text == "udp"
                else EchoedRaw(length, line=line, col=col)
            )
        elif self.tok.kind is TokenKind.INT:
            start, end, length = self.seq_range("in the echoed packet")
            echoed = EchoedTcp(start, end, length, line=line, col=col)
        else:
            raise self.expected("the echoed packet: [START:END(LEN)], [udp(LEN)] or [raw(LEN)]")
        self.expect_punct("]", "']' after the echoed packet")
        return echoed

    def icmp_numbers(self, type_token: Token, code_token: Token | None) -> tuple[int, int]:
        """Check ICMP type and code names against the script's IP version (names are
        not translated between versions)."""
        version = self.version
        type_num = icmp_type_number(version, type_token.text)
        if type_num is None:
            names = ", ".join(ICMP_TYPES[version])
            self.report(
                type_token,
                f"bad ICMP type {type_token.text} for IPv{version}: expected type_N or one of {names}",
            )
            return -1, -1
        if code_token is None:
            return type_num, 0
        code_num = icmp_code_number(version, type_num, code_token.text)
        if code_num is None:
            codes = ICMP_CODES[version].get(type_num, {})
            known = ", ".join(codes) if codes else f"no names for {type_token.text}, only code_N"
            message = f"bad ICMP code {code_token.text} for IPv{version} {type_token.text} ({known})"
            self.report(code_token, message)
            return type_num, -1
        return type_num, code_num


def _at(token: Token, index: int) -> Token:
    """A position ``index`` characters into ``token`` (for pointing inside flags)."""
    return dataclasses.replace(token, col=token.col + index)


def _describe(action: Action) -> str:
    if isinstance(action, PacketEvent):
        return "packet"
    if isinstance(action, SyscallEvent):
        return f"system call {action.name}()"
    if isinstance(action, ShellEvent):
        return "command"
    return "code block"


def _unknown_char(token: Token) -> str:
    if token.text == "#":
        return "unexpected character '#': .pkt comments are // and /* */"
    return f"unexpected character {token.text!r}"


def parse(
    text: str,
    path: str = "<string>",
    defines: Mapping[str, str] | None = None,
    *,
    ip_version: str | None = None,
) -> Script:
    """Parse a whole ``.pkt`` script.

    ``defines`` are ``-D SYM=VAL`` substitutions (they override the script's own
    ``--define``); ``ip_version`` (``ipv4``, ``ipv4-mapped-ipv6``, ``ipv6``) overrides
    the script's ``--ip_version`` and decides which ICMP names are valid.  Raises
    :class:`ScriptError` (the first error, with all of them in ``.errors``)."""
    if ip_version is not None and ip_version not in _IP_VERSIONS:
        raise ValueError(f"ip_version {ip_version!r}: expected one of {', '.join(_IP_VERSIONS)}")
    tokens = tokenize(text, path, defines)
    return _Parser(tokens, text, path, ip_version).script()


def parse_file(
    path: str | Path,
    defines: Mapping[str, str] | None = None,
    *,
    ip_version: str | None = None,
) -> Script:
    """Read and parse a ``.pkt`` file (UTF-8).  OSError if it cannot be read."""
    name = str(path)
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        before = data[: error.start]
        line = before.count(b"\n") + 1
        col = error.start - (before.rfind(b"\n") + 1) + 1
        raise ScriptError(name, line, col, f"not UTF-8 text: byte 0x{data[error.start]:02x}") from None
    return parse(text, name, defines, ip_version=ip_version)
