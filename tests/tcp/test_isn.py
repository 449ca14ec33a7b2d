"""ISNs (RFC 6528 §3) and timestamp offsets (RFC 7323 §5.4)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from refstack.tcp.isn import IsnGenerator

SECRET = bytes(range(16))
LOCAL = bytes([192, 168, 0, 1])
REMOTE = bytes([192, 0, 2, 1])


def isn_at(gen: IsnGenerator, now: float, lport: int = 8080, rport: int = 40000) -> int:
    return gen.isn(LOCAL, lport, REMOTE, rport, now)


def test_deterministic_with_a_given_secret() -> None:
    a, b = IsnGenerator(SECRET), IsnGenerator(SECRET)
    assert isn_at(a, 12.5) == isn_at(b, 12.5)
    assert a.ts_offset(LOCAL, REMOTE) == b.ts_offset(LOCAL, REMOTE)
    assert isn_at(IsnGenerator(b"another secret!!"), 12.5) != isn_at(a, 12.5)
    assert 0 <= isn_at(a, 12.5) <= 0xFFFFFFFF


def test_random_secret_when_none() -> None:
    values = {isn_at(IsnGenerator(), 0.0) for _ in range(4)}
    assert len(values) > 1  # four random 32-bit values colliding: 1 in ~10**18


def test_at_time_zero_isn_is_f() -> None:
    # M = 0, so the ISN is F itself: any change of the 4-tuple changes it.
    gen = IsnGenerator(SECRET)
    base = isn_at(gen, 0.0)
    others = {
        gen.isn(LOCAL, 8081, REMOTE, 40000, 0.0),
        gen.isn(LOCAL, 8080, REMOTE, 40001, 0.0),
        gen.isn(bytes([192, 168, 0, 2]), 8080, REMOTE, 40000, 0.0),
        gen.isn(LOCAL, 8080, bytes([192, 0, 2, 2]), 40000, 0.0),
        gen.isn(REMOTE, 40000, LOCAL, 8080, 0.0),  # the reverse direction
        gen.isn(REMOTE, 8080, LOCAL, 40000, 0.0),  # addresses swapped, ports kept
    }
    assert base not in others and len(others) == 6


def test_grows_250000_per_second() -> None:
    gen = IsnGenerator(SECRET)
    base = isn_at(gen, 0.0)
    assert (isn_at(gen, 1.0) - base) % (1 << 32) == 250_000
    assert (isn_at(gen, 0.5) - base) % (1 << 32) == 125_000
    assert (isn_at(gen, 4e-6 * 3) - base) % (1 << 32) in (2, 3)  # a 4 µs tick (float rounding)
    assert (isn_at(gen, 100.0) - isn_at(gen, 99.0)) % (1 << 32) == 250_000


@given(st.integers(0, 10**7), st.integers(1, 10**5))
def test_increments_are_exact_ticks(k: int, step: int) -> None:
    gen = IsnGenerator(SECRET)
    t0, t1 = k / 8, (k + step) / 8  # eighths of a second: exact floats, 31250 ticks each
    assert (isn_at(gen, t1) - isn_at(gen, t0)) % (1 << 32) == (31_250 * step) % (1 << 32)


def test_wraps_modulo_two_to_the_32() -> None:
    gen = IsnGenerator(SECRET)
    f = isn_at(gen, 0.0)  # M = 0: the ISN is F
    # In steps of 1/8 s (31250 ticks, exact in floats) find the step where M + F passes 2**32.
    n = -(-((1 << 32) - f) // 31_250)
    before, after = isn_at(gen, (n - 1) / 8), isn_at(gen, n / 8)
    assert before == f + 31_250 * (n - 1) >= (1 << 32) - 31_250
    assert after == f + 31_250 * n - (1 << 32) < 31_250
    # 2**28 s is 2**30 * 62500 ticks, a whole number of 2**32 periods: the same value again.
    assert isn_at(gen, 3.0 + (1 << 28)) == isn_at(gen, 3.0)


def test_ts_offset_per_address_pair() -> None:
    gen = IsnGenerator(SECRET)
    off = gen.ts_offset(LOCAL, REMOTE)
    assert 0 <= off <= 0xFFFFFFFF
    assert gen.ts_offset(LOCAL, bytes([192, 0, 2, 2])) != off
    assert gen.ts_offset(REMOTE, LOCAL) != off
    assert IsnGenerator(b"another secret!!").ts_offset(LOCAL, REMOTE) != off


def test_ipv6_addresses_and_bad_arguments() -> None:
    gen = IsnGenerator(SECRET)
    a6, b6 = bytes(15) + b"\x01", bytes(15) + b"\x02"
    assert gen.isn(a6, 1, b6, 2, 0.0) != gen.isn(b6, 1, a6, 2, 0.0)
    with pytest.raises(ValueError, match="remote_port"):
        gen.isn(LOCAL, 1, REMOTE, 70000, 0.0)
    with pytest.raises(ValueError, match="secret"):
        IsnGenerator(b"")
    with pytest.raises(ValueError, match="secret"):
        IsnGenerator(bytes(33))
