"""Sequence arithmetic (RFC 9293 §3.4): comparisons modulo 2**32, unwrap/wrap."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from refstack.tcp.seq import MASK, seq_add, seq_diff, seq_ge, seq_gt, seq_le, seq_lt, unwrap, wrap

u32 = st.integers(0, MASK)
HALF = 1 << 31


def test_plain_order_and_wrap_around_zero() -> None:
    assert seq_lt(1, 2) and not seq_lt(2, 1) and not seq_lt(5, 5)
    assert seq_lt(MASK, 0) and seq_gt(0, MASK)  # 0xFFFFFFFF is just before 0
    assert seq_lt(0xFFFFFF00, 0x10) and seq_le(0xFFFFFF00, 0x10)
    assert seq_le(7, 7) and seq_ge(7, 7) and not seq_gt(7, 7)


def test_add_and_diff_wrap() -> None:
    assert seq_add(MASK, 1) == 0
    assert seq_add(0, -1) == MASK
    assert seq_add(0xFFFFFFF0, 0x20) == 0x10
    assert seq_diff(0x10, 0xFFFFFFF0) == 0x20
    assert seq_diff(0xFFFFFFF0, 0x10) == -0x20
    assert seq_diff(5, 5) == 0


def test_edge_at_half_space() -> None:
    # 2**31 apart: undefined in RFC 1982, here neither order holds, both ways.
    a, b = 0, HALF
    for x, y in ((a, b), (b, a)):
        assert not seq_lt(x, y) and not seq_gt(x, y)
        assert not seq_le(x, y) and not seq_ge(x, y)
        assert seq_diff(x, y) == -HALF
    # One less than half: ordered.
    assert seq_lt(0, HALF - 1) and seq_gt(HALF - 1, 0)
    assert seq_diff(HALF - 1, 0) == HALF - 1
    # One more than half: ordered the other way round.
    assert seq_lt(HALF + 1, 0) and seq_diff(0, HALF + 1) == HALF - 1


def test_wrap() -> None:
    assert wrap(0) == 0 and wrap(1 << 32) == 0 and wrap((5 << 32) + 7) == 7 and wrap(-1) == MASK


def test_unwrap_examples() -> None:
    ref = (3 << 32) + 0xFFFFFFF0  # an unwrapped position just before a wrap
    assert unwrap(0x10, ref) == (4 << 32) + 0x10  # just after the wrap: forward
    assert unwrap(0xFFFFFF00, ref) == (3 << 32) + 0xFFFFFF00  # a little behind
    assert unwrap(MASK, 0) == -1  # behind a reference near zero
    # Exactly 2**31 away: the older value.
    assert unwrap(HALF, 0) == -HALF


@given(u32, u32)
def test_antisymmetry(a: int, b: int) -> None:
    assert seq_lt(a, b) == seq_gt(b, a)
    assert seq_le(a, b) == seq_ge(b, a)
    assert not (seq_lt(a, b) and seq_lt(b, a))
    assert seq_le(a, b) == (seq_lt(a, b) or a == b)
    if seq_diff(a, b) != -HALF:  # trichotomy away from the undefined edge
        assert [seq_lt(a, b), a == b, seq_gt(a, b)].count(True) == 1


@given(u32, u32)
def test_diff_add_round_trip(a: int, b: int) -> None:
    d = seq_diff(a, b)
    assert -HALF <= d < HALF
    assert seq_add(b, d) == a
    assert seq_lt(b, a) == (d > 0) and seq_lt(a, b) == (-HALF < d < 0)


@given(st.integers(-(1 << 40), 1 << 40), st.integers(-(HALF - 1), HALF - 1))
def test_unwrap_inverts_wrap_near_reference(ref: int, delta: int) -> None:
    x = ref + delta
    assert unwrap(wrap(x), ref) == x


@given(u32, st.integers(-(1 << 40), 1 << 40))
def test_unwrap_is_congruent_and_nearest(w: int, ref: int) -> None:
    x = unwrap(w, ref)
    assert wrap(x) == w
    assert -HALF <= x - ref < HALF


@given(st.integers(0, 1 << 40), st.integers(-(HALF - 1), HALF - 1))
def test_wire_order_agrees_with_unwrapped_order(x: int, delta: int) -> None:
    y = x + delta
    assert seq_lt(wrap(x), wrap(y)) == (x < y)
    assert seq_le(wrap(x), wrap(y)) == (x <= y)
    assert seq_diff(wrap(y), wrap(x)) == delta
