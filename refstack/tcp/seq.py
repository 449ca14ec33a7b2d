"""Sequence-number arithmetic (RFC 9293 §3.4 "Sequence Numbers").

Sequence numbers are 32-bit and wrap, so "less than" is only meaningful between
numbers less than half the space apart.  This module has the two views a stack
needs:

* **wire values** (0 .. 2**32-1) compared modulo 2**32 with serial-number
  arithmetic in the style of RFC 1982 §3.2: ``a < b`` iff ``0 < (b - a) mod 2**32 < 2**31``.
  Two numbers exactly 2**31 apart are neither less nor greater than each other
  (RFC 1982 leaves that comparison undefined; here every ordering predicate is
  ``False`` for such a pair).
* **unwrapped values**: plain Python ints that grow without bound.  The connection
  keeps SND.UNA, SND.NXT, RCV.NXT and friends unwrapped, so ordinary ``<`` works, and
  converts at the edge: :func:`unwrap` for a number read off the wire, :func:`wrap`
  for one written onto it.
"""

from __future__ import annotations

MASK = 0xFFFFFFFF
"""The 32-bit sequence space (RFC 9293 §3.4: "arithmetic ... must be performed modulo 2**32")."""

_HALF = 1 << 31
_SPACE = 1 << 32


def wrap(x: int) -> int:
    """An unwrapped stream position -> the 32-bit value carried on the wire."""
    return x & MASK


def seq_add(a: int, n: int) -> int:
    """``(a + n) mod 2**32``: the wire value ``n`` octets after ``a`` (``n`` may be negative)."""
    return (a + n) & MASK


def seq_diff(a: int, b: int) -> int:
    """The signed distance ``a - b`` modulo 2**32, in ``-2**31 .. 2**31 - 1``.

    Two values exactly 2**31 apart are at distance ``-2**31`` (the one value of the
    range without a positive counterpart), in both orders.
    """
    d = (a - b) & MASK
    return d - _SPACE if d >= _HALF else d


def seq_lt(a: int, b: int) -> bool:
    """``a < b`` modulo 2**32: ``0 < (b - a) mod 2**32 < 2**31`` (RFC 9293 §3.4, RFC 1982 §3.2)."""
    return 0 < ((b - a) & MASK) < _HALF


def seq_le(a: int, b: int) -> bool:
    """``a <= b`` modulo 2**32: equal, or :func:`seq_lt`."""
    return ((b - a) & MASK) < _HALF


def seq_gt(a: int, b: int) -> bool:
    """``a > b`` modulo 2**32, that is ``b < a``."""
    return 0 < ((a - b) & MASK) < _HALF


def seq_ge(a: int, b: int) -> bool:
    """``a >= b`` modulo 2**32: equal, or :func:`seq_gt`."""
    return ((a - b) & MASK) < _HALF


def unwrap(wire: int, reference: int) -> int:
    """The unwrapped int congruent to ``wire`` modulo 2**32 that is nearest to ``reference``.

    ``reference`` is an unwrapped position the connection already knows to be close
    (RCV.NXT for a received SEQ, SND.UNA for a received ACK).  The result lies in
    ``reference - 2**31 .. reference + 2**31 - 1``: at the exact tie, 2**31 either
    side, the older (lower) value is chosen, matching :func:`seq_diff`.  The result
    may be negative when the reference is near zero and the value is "behind" it.
    """
    return reference + seq_diff(wire, reference)
