"""The ``.pkt`` tokenizer (GRAMMAR.md §1 and §9).

Longest match wins, as in packetdrill's flex lexer; on a tie the earlier rule in
this list wins: ``...``, float, hex integer, integer, word, IPv4 address, IPv6
address.  That gives the traps of §9 their right answers:

* ``1:1001(1000)`` is ``1`` ``:`` ``1001`` ``(`` ``1000`` ``)``: an IPv6 address
  needs at least two colons (``2::2222``), so a sequence range never is one;
* a float must contain a ``.`` followed by a digit: ``.1`` and ``0.200`` are floats,
  ``.`` alone is punctuation (the ACK flag), ``S.`` is ``S`` then ``.``, and ``S.0``
  is ``S`` then the float ``.0``;
* ``+.1`` is ``+`` then ``.1``; ``+.1...0.200`` is ``+`` ``.1`` ``...`` ``0.200``;
* ``3021b9d889017eeb`` is one word (longer than the integer ``3021``), ``0x1f`` a hex
  integer, ``-1`` a negative integer.

Comments are ``// ...`` and ``/* ... */``; ``#`` is not a comment.  A character no
rule knows becomes an :attr:`TokenKind.UNKNOWN` token for the parser to report (a
free-form syscall note may hold one).  Strings stay on one line and keep their text
as written (no escape processing, like packetdrill); backquoted commands and
``%{ }%`` code blocks may span lines.

``-D SYM=VAL`` defines are applied here, to words: a value starting with ``"``
becomes a string, with a backquote a command, a number an integer (or a float),
anything else a word.  An in-script ``--define=SYM=VAL`` option adds a define for
the rest of the file unless the caller's defines already name ``SYM`` (command-line
values override in-script ones, §7).
"""

from __future__ import annotations

import bisect
import dataclasses
import enum
import ipaddress
import re
from collections.abc import Mapping

from conformance.script.errors import ScriptError, raise_first

__all__ = ["Token", "TokenKind", "tokenize"]


class TokenKind(enum.Enum):
    INT = "integer"
    FLOAT = "number"
    WORD = "word"
    STRING = "string"
    COMMAND = "backquoted command"
    CODE = "code block"
    OPTION = "option"
    IPV4 = "IPv4 address"
    IPV6 = "IPv6 address"
    ELLIPSIS = "'...'"
    PUNCT = "punctuation"
    UNKNOWN = "unknown character"
    EOF = "end of file"


@dataclasses.dataclass(frozen=True)
class Token:
    """One token.  ``text`` is the token as written (or as substituted by a define);
    for a string, command or code block it is the content between the delimiters,
    for an option its name without ``--`` (and ``value`` is what follows ``=``, or
    None).  ``offset``/``end`` are the source span; ``line``/``col`` are 1-based."""

    kind: TokenKind
    text: str
    line: int
    col: int
    offset: int
    end: int
    end_line: int
    value: str | None = None
    bol: bool = False  # first token on its line

    def is_punct(self, chars: str) -> bool:
        """True if this is one of the single punctuation characters in ``chars``."""
        return self.kind is TokenKind.PUNCT and self.text in chars

    def is_word(self, *names: str) -> bool:
        return self.kind is TokenKind.WORD and (not names or self.text in names)

    @property
    def is_number(self) -> bool:
        return self.kind in (TokenKind.INT, TokenKind.FLOAT)

    @property
    def int_value(self) -> int:
        """The value of an INT token (decimal, possibly negative or zero-padded, or hex)."""
        text = self.text.lower()
        negative = text.startswith("-")
        digits = text[1:] if negative else text
        value = int(digits[2:], 16) if digits.startswith("0x") else int(digits, 10)
        return -value if negative else value

    def describe(self) -> str:
        """How an error message names this token."""
        if self.kind is TokenKind.EOF:
            return "end of file"
        if self.kind is TokenKind.STRING:
            return f'string "{_clip(self.text)}"'
        if self.kind is TokenKind.COMMAND:
            return f"backquoted command `{_clip(self.text)}`"
        if self.kind is TokenKind.CODE:
            return "a %{ code }% block"
        if self.kind is TokenKind.OPTION:
            return f"option '--{self.text}'"
        return f"'{self.text}'"


def _clip(text: str, limit: int = 24) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


_FLOAT = re.compile(r"-?[0-9]*\.[0-9]+")
_HEX = re.compile(r"-?0[xX][0-9a-fA-F]+")
_INT = re.compile(r"-?[0-9]+")
_WORD = re.compile(r"[A-Za-z0-9_]+")
_IPV4 = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")
_IPV6_RUN = re.compile(r"[0-9A-Fa-f:.]+")
_OPTION = re.compile(r"--([A-Za-z0-9_]+)")
_SPACE = re.compile(r"[ \t\r\n\f\v]+")

# In rule order: the first of several equally long matches wins.
_RULES: tuple[tuple[TokenKind, re.Pattern[str]], ...] = (
    (TokenKind.FLOAT, _FLOAT),
    (TokenKind.INT, _HEX),
    (TokenKind.INT, _INT),
    (TokenKind.WORD, _WORD),
    (TokenKind.IPV4, _IPV4),
)

PUNCTUATION = "<>()[]{},:=|+*~.-;/!&%"


def _ipv6_length(text: str, pos: int) -> int:
    """Length of the longest IPv6 address starting at ``pos`` (0 if none).

    An address must have at least two colons, which keeps ``1:1001`` (a sequence
    range) and ``gre:`` out."""
    run = _IPV6_RUN.match(text, pos)
    if run is None:
        return 0
    candidate = run.group()
    while candidate.count(":") >= 2:
        try:
            ipaddress.IPv6Address(candidate)
        except ValueError:
            candidate = candidate[:-1]
            continue
        return len(candidate)
    return 0


def define_token_kind(value: str) -> tuple[TokenKind, str]:
    """What a ``-D SYM=VALUE`` substitution lexes as: (kind, text)."""
    if value.startswith('"'):
        return TokenKind.STRING, value[1:-1] if len(value) >= 2 and value.endswith('"') else value[1:]
    if value.startswith("`"):
        return TokenKind.COMMAND, value[1:-1] if len(value) >= 2 and value.endswith("`") else value[1:]
    if _HEX.fullmatch(value) or _INT.fullmatch(value):
        return TokenKind.INT, value
    if _FLOAT.fullmatch(value):
        return TokenKind.FLOAT, value
    return TokenKind.WORD, value


class _Lexer:
    def __init__(self, text: str, path: str, defines: Mapping[str, str] | None) -> None:
        self.text = text
        self.path = path
        self.cli_defines: Mapping[str, str] = defines or {}
        self.script_defines: dict[str, str] = {}
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
        self.tokens: list[Token] = []
        self.errors: list[ScriptError] = []

    def position(self, offset: int) -> tuple[int, int]:
        index = bisect.bisect_right(self.line_starts, offset) - 1
        return index + 1, offset - self.line_starts[index] + 1

    def error(self, offset: int, message: str) -> None:
        line, col = self.position(offset)
        self.errors.append(ScriptError(self.path, line, col, message))

    def emit(self, kind: TokenKind, text: str, start: int, end: int, value: str | None = None) -> None:
        line, col = self.position(start)
        end_line, _ = self.position(max(start, end - 1))
        self.tokens.append(Token(kind, text, line, col, start, end, end_line, value))

    def run(self) -> list[Token]:
        text, n, pos = self.text, len(self.text), 0
        while pos < n:
            space = _SPACE.match(text, pos)
            if space:
                pos = space.end()
                continue
            if text.startswith("//", pos):
                newline = text.find("\n", pos)
                pos = n if newline < 0 else newline
                continue
            if text.startswith("/*", pos):
                close = text.find("*/", pos + 2)
                if close < 0:
                    self.error(pos, "unterminated /* comment: no closing */ before the end of the file")
                    break
                pos = close + 2
                continue
            if text.startswith("%{", pos):
                close = text.find("}%", pos + 2)
                if close < 0:
                    self.error(pos, "unterminated %{ code block: no closing }% before the end of the file")
                    break
                self.emit(TokenKind.CODE, text[pos + 2 : close].strip(" \t"), pos, close + 2)
                pos = close + 2
                continue
            char = text[pos]
            if char == '"':
                pos = self.quoted(pos, '"', TokenKind.STRING, multiline=False)
                continue
            if char == "`":
                pos = self.quoted(pos, "`", TokenKind.COMMAND, multiline=True)
                continue
            option = _OPTION.match(text, pos)
            if option:
                pos = self.option(pos, option)
                continue
            pos = self.simple(pos)
        self.emit(TokenKind.EOF, "", n, n)
        last_line = 0
        for index, token in enumerate(self.tokens):
            if token.line > last_line:
                self.tokens[index] = dataclasses.replace(token, bol=True)
            last_line = token.end_line
        raise_first(self.errors)
        return self.tokens

    def quoted(self, start: int, quote: str, kind: TokenKind, *, multiline: bool) -> int:
        text, n, pos = self.text, len(self.text), start + 1
        while pos < n:
            char = text[pos]
            if char == "\\" and pos + 1 < n and (multiline or text[pos + 1] != "\n"):
                pos += 2
                continue
            if char == quote:
                self.emit(kind, text[start + 1 : pos], start, pos + 1)
                return pos + 1
            if char == "\n" and not multiline:
                break
            pos += 1
        if kind is TokenKind.STRING:
            self.error(start, 'unterminated string: no closing " on this line')
            return pos  # carry on at the end of the line
        self.error(start, "unterminated backquoted command: no closing ` before the end of the file")
        return n

    def option(self, start: int, match: re.Match[str]) -> int:
        text, n = self.text, len(self.text)
        name, pos = match.group(1), match.end()
        value: str | None = None
        if pos < n and text[pos] == "=":
            pos += 1
            if pos < n and text[pos] == '"':
                close = text.find('"', pos + 1)
                newline = text.find("\n", pos + 1)
                if close < 0 or 0 <= newline < close:
                    self.error(pos, 'unterminated string: no closing " on this line')
                    return n if newline < 0 else newline
                value, pos = text[pos + 1 : close], close + 1
            else:
                value_start = pos
                while pos < n and not text[pos].isspace() and not text.startswith(("//", "/*"), pos):
                    pos += 1
                value = text[value_start:pos]
        self.emit(TokenKind.OPTION, name, start, pos, value)
        if name == "define" and value is not None and "=" in value:
            symbol, _, replacement = value.partition("=")
            if symbol not in self.cli_defines:
                self.script_defines[symbol] = replacement
        return pos

    def simple(self, pos: int) -> int:
        text = self.text
        if text.startswith("...", pos):
            self.emit(TokenKind.ELLIPSIS, "...", pos, pos + 3)
            return pos + 3
        best_kind, best_len = TokenKind.UNKNOWN, 0
        for kind, pattern in _RULES:
            match = pattern.match(text, pos)
            if match and match.end() - pos > best_len:
                best_kind, best_len = kind, match.end() - pos
        ipv6 = _ipv6_length(text, pos)
        if ipv6 > best_len:
            best_kind, best_len = TokenKind.IPV6, ipv6
        if best_len == 0:
            char = text[pos]
            kind = TokenKind.PUNCT if char in PUNCTUATION else TokenKind.UNKNOWN
            self.emit(kind, char, pos, pos + 1)
            return pos + 1
        end = pos + best_len
        word = text[pos:end]
        if best_kind is TokenKind.IPV4 and any(int(octet) > 255 for octet in word.split(".")):
            self.error(pos, f"bad IPv4 address {word}: each of its four numbers must be 0..255")
        if best_kind is TokenKind.WORD:
            replacement = self.cli_defines.get(word, self.script_defines.get(word))
            if replacement is not None:
                kind, substituted = define_token_kind(replacement)
                self.emit(kind, substituted, pos, end)
                return end
        self.emit(best_kind, word, pos, end)
        return end


def tokenize(text: str, path: str = "<string>", defines: Mapping[str, str] | None = None) -> list[Token]:
    """The tokens of ``text``, ending with an EOF token.

    Raises :class:`ScriptError` (the first of all lexical errors, carrying the others)
    for an unterminated string, command, code block or comment."""
    return _Lexer(text, path, defines).run()
