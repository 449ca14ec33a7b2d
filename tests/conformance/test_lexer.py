"""The .pkt tokenizer: each token kind, the longest-match traps of GRAMMAR.md §9,
comments, -D defines and positions."""

from __future__ import annotations

import pytest

from conformance.script.lexer import Token, TokenKind, tokenize

K = TokenKind


def lex(text: str, defines: dict[str, str] | None = None) -> list[tuple[TokenKind, str]]:
    """(kind, text) of every token but the final EOF."""
    tokens = tokenize(text, defines=defines)
    assert tokens[-1].kind is K.EOF
    return [(t.kind, t.text) for t in tokens[:-1]]


# --- each kind ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", 0),
        ("8080", 8080),
        ("-1", -1),
        ("0x1f", 31),
        ("0XFF", 255),
        ("0xffffffff", 0xFFFFFFFF),
        ("007", 7),
    ],
)
def test_integers(text: str, value: int) -> None:
    (token,) = tokenize(text)[:-1]
    assert token.kind is K.INT and token.text == text and token.int_value == value


@pytest.mark.parametrize("text", [".1", "0.200", "1.5", "-.5", "-0.25"])
def test_floats_contain_a_dot_and_a_digit_after_it(text: str) -> None:
    assert lex(text) == [(K.FLOAT, text)]


def test_words() -> None:
    assert lex("SOCK_STREAM sackOK TS 3021b9d889017eeb _x1") == [
        (K.WORD, "SOCK_STREAM"),
        (K.WORD, "sackOK"),
        (K.WORD, "TS"),
        (K.WORD, "3021b9d889017eeb"),
        (K.WORD, "_x1"),
    ]


def test_string_keeps_its_text_as_written() -> None:
    assert lex(r'"reno" "a\"b" ""') == [(K.STRING, "reno"), (K.STRING, r"a\"b"), (K.STRING, "")]


def test_backquoted_command_may_span_lines() -> None:
    (token,) = tokenize("`sysctl -q a=1\nsysctl -q b=2`")[:-1]
    assert token.kind is K.COMMAND and token.text == "sysctl -q a=1\nsysctl -q b=2"
    assert (token.line, token.end_line) == (1, 2)


def test_code_block_strips_spaces_and_tabs_only() -> None:
    (token,) = tokenize("%{ \t assert x == 1 \t}%")[:-1]
    assert token.kind is K.CODE and token.text == "assert x == 1"
    (multi,) = tokenize("%{\nassert a\nassert b\n}%")[:-1]
    assert multi.text == "\nassert a\nassert b\n"


def test_options() -> None:
    tokens = tokenize('--dry_run --tolerance_usecs=10000 --define=SYM=VAL --so_flags="a b" --x=')[:-1]
    assert [(t.kind, t.text, t.value) for t in tokens] == [
        (K.OPTION, "dry_run", None),
        (K.OPTION, "tolerance_usecs", "10000"),
        (K.OPTION, "define", "SYM=VAL"),
        (K.OPTION, "so_flags", "a b"),
        (K.OPTION, "x", ""),
    ]


def test_option_value_stops_at_a_comment() -> None:
    tokens = tokenize("--ip_version=ipv4-mapped-ipv6// note\n--remote_ip=2001:DB8::1 /* c */")[:-1]
    assert [(t.text, t.value) for t in tokens] == [
        ("ip_version", "ipv4-mapped-ipv6"),
        ("remote_ip", "2001:DB8::1"),
    ]


def test_addresses() -> None:
    assert lex("192.0.2.1 2::2222 fd3d:fa7b:d17d::1 ::ffff:192.0.2.1 ::1") == [
        (K.IPV4, "192.0.2.1"),
        (K.IPV6, "2::2222"),
        (K.IPV6, "fd3d:fa7b:d17d::1"),
        (K.IPV6, "::ffff:192.0.2.1"),
        (K.IPV6, "::1"),
    ]


def test_punctuation_and_ellipsis() -> None:
    text = "< > ( ) [ ] { } , : = | + * ~ . - ..."
    assert lex(text) == [(K.PUNCT, c) for c in text.split()[:-1]] + [(K.ELLIPSIS, "...")]


def test_unknown_character_is_a_token_for_the_parser_to_report() -> None:
    assert lex("# x @") == [(K.UNKNOWN, "#"), (K.WORD, "x"), (K.UNKNOWN, "@")]


def test_eof_token_at_the_end() -> None:
    (eof,) = tokenize("")
    assert eof.kind is K.EOF and eof.describe() == "end of file"


# --- longest-match traps (GRAMMAR.md §9) ----------------------------------------------


def test_sequence_range_is_not_an_ipv6_address() -> None:
    assert lex("1:1001(1000)") == [
        (K.INT, "1"),
        (K.PUNCT, ":"),
        (K.INT, "1001"),
        (K.PUNCT, "("),
        (K.INT, "1000"),
        (K.PUNCT, ")"),
    ]


def test_sack_blocks_are_not_ipv6_addresses() -> None:
    assert [k for k, _ in lex("sack 1:1001 2001:3001")] == [
        K.WORD,
        K.INT,
        K.PUNCT,
        K.INT,
        K.INT,
        K.PUNCT,
        K.INT,
    ]


def test_ipv6_address_followed_by_colon() -> None:
    assert lex("1::1111: gre:") == [(K.IPV6, "1::1111"), (K.PUNCT, ":"), (K.WORD, "gre"), (K.PUNCT, ":")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("S.", [(K.WORD, "S"), (K.PUNCT, ".")]),
        (".", [(K.PUNCT, ".")]),
        ("P.", [(K.WORD, "P"), (K.PUNCT, ".")]),
        ("S.0", [(K.WORD, "S"), (K.FLOAT, ".0")]),
        ("+.1", [(K.PUNCT, "+"), (K.FLOAT, ".1")]),
        ("+0", [(K.PUNCT, "+"), (K.INT, "0")]),
        ("+.1...0.200", [(K.PUNCT, "+"), (K.FLOAT, ".1"), (K.ELLIPSIS, "..."), (K.FLOAT, "0.200")]),
        ("+0...0.000", [(K.PUNCT, "+"), (K.INT, "0"), (K.ELLIPSIS, "..."), (K.FLOAT, "0.000")]),
        ("1.", [(K.INT, "1"), (K.PUNCT, ".")]),
        ("0.1~0.2", [(K.FLOAT, "0.1"), (K.PUNCT, "~"), (K.FLOAT, "0.2")]),
        ("+0.1~+0.2", [(K.PUNCT, "+"), (K.FLOAT, "0.1"), (K.PUNCT, "~"), (K.PUNCT, "+"), (K.FLOAT, "0.2")]),
        ("<...>", [(K.PUNCT, "<"), (K.ELLIPSIS, "..."), (K.PUNCT, ">")]),
        ("1.2.3.4", [(K.IPV4, "1.2.3.4")]),
        ("1.2.3", [(K.FLOAT, "1.2"), (K.FLOAT, ".3")]),
        ("0x1g", [(K.WORD, "0x1g")]),
        ("3021b9d889017eeb", [(K.WORD, "3021b9d889017eeb")]),
        ("- 0:0", [(K.PUNCT, "-"), (K.INT, "0"), (K.PUNCT, ":"), (K.INT, "0")]),
        ("SEW", [(K.WORD, "SEW")]),
        ("1234>8080", [(K.INT, "1234"), (K.PUNCT, ">"), (K.INT, "8080")]),
    ],
)
def test_longest_match(text: str, expected: list[tuple[TokenKind, str]]) -> None:
    assert lex(text) == expected


# --- comments ------------------------------------------------------------------------


def test_comments_are_skipped() -> None:
    text = "a // one\nb /* two\nlines */ c // at the end, no newline"
    assert lex(text) == [(K.WORD, "a"), (K.WORD, "b"), (K.WORD, "c")]


def test_comment_markers_inside_strings_and_commands_are_text() -> None:
    assert lex('"a // b" `c /* d */`') == [(K.STRING, "a // b"), (K.COMMAND, "c /* d */")]


def test_hash_is_not_a_comment() -> None:
    assert lex("# not a comment")[0] == (K.UNKNOWN, "#")


# --- defines -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "kind", "text"),
    [
        ('"reno"', K.STRING, "reno"),
        ("`echo hi`", K.COMMAND, "echo hi"),
        ("8080", K.INT, "8080"),
        ("-1", K.INT, "-1"),
        ("0x10", K.INT, "0x10"),
        ("0.5", K.FLOAT, "0.5"),
        ("host_unreachable", K.WORD, "host_unreachable"),
        ("3021b9d889017eeb", K.WORD, "3021b9d889017eeb"),
    ],
)
def test_define_value_kinds(value: str, kind: TokenKind, text: str) -> None:
    assert lex("SYM", {"SYM": value}) == [(kind, text)]


def test_defines_apply_to_whole_words_only() -> None:
    assert lex('CODE CODE_X "CODE"', {"CODE": "x"}) == [(K.WORD, "x"), (K.WORD, "CODE_X"), (K.STRING, "CODE")]


def test_substituted_token_keeps_the_position_of_the_word() -> None:
    token = tokenize("  \n   PORT", defines={"PORT": "8080"})[0]
    assert (token.kind, token.int_value, token.line, token.col) == (K.INT, 8080, 2, 4)


def test_in_script_define_applies_to_the_rest_of_the_file() -> None:
    assert lex("A --define=A=1 A") == [(K.WORD, "A"), (K.OPTION, "define"), (K.INT, "1")]


def test_command_line_define_overrides_the_script() -> None:
    assert lex("--define=A=1 A", {"A": "2"})[1] == (K.INT, "2")


# --- positions -----------------------------------------------------------------------


def positions(text: str) -> list[tuple[str, int, int]]:
    return [(t.text, t.line, t.col) for t in tokenize(text)[:-1]]


def test_line_and_column_are_one_based() -> None:
    assert positions("0 socket(\n  ...)") == [
        ("0", 1, 1),
        ("socket", 1, 3),
        ("(", 1, 9),
        ("...", 2, 3),
        (")", 2, 6),
    ]


def test_positions_after_multiline_comment_and_command() -> None:
    assert positions("/* a\nb */ x `c\nd` y\n\tz") == [
        ("x", 2, 6),
        ("c\nd", 2, 8),
        ("y", 3, 4),
        ("z", 4, 2),  # a tab is one column
    ]


def test_first_token_of_each_line_is_marked() -> None:
    tokens = tokenize("0 a(\n1) = 0\n+0 `x\ny` b")
    assert [(t.text, t.bol) for t in tokens[:-1]] == [
        ("0", True),
        ("a", False),
        ("(", False),
        ("1", True),
        (")", False),
        ("=", False),
        ("0", False),
        ("+", True),
        ("0", False),
        ("x\ny", False),
        ("b", False),  # same line as the end of the command
    ]


def test_token_helpers() -> None:
    dot, word, integer = tokenize(". ack 5")[:3]
    assert dot.is_punct(".") and dot.is_punct("<.>") and not dot.is_word()
    assert word.is_word() and word.is_word("win", "ack") and not word.is_word("win")
    assert integer.is_number and not word.is_number
    assert isinstance(integer, Token) and integer.describe() == "'5'"
