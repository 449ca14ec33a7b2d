"""SYN cookies (RFC 4987 §3.6) as Linux makes them (``net/ipv4/syncookies.c``).

When a listener's SYN queue is full, a SYN is answered with a SYN-ACK whose ISN
*is* the state: nothing is kept.  The final ACK (SEG.ACK - 1 = the cookie) is
checked and, when valid, creates the established connection directly.

The cookie (Linux ``secure_tcp_syn_cookie``)::

    ISN = H0(4-tuple) + SEG.SEQ(SYN) + (count << 24) + ((H1(4-tuple, count) + mssind) mod 2**24)

- ``count`` is a minute counter (``tcp_cookie_time``: the clock divided by
  ``TCP_SYNCOOKIE_PERIOD``, 60 s); only its low 8 bits survive in the top byte.
- ``H0``/``H1`` are two keyed hashes of the 4-tuple (Linux: siphash with two random
  keys; here BLAKE2s keyed with the secret, as :mod:`refstack.tcp.isn`, with a
  different personalisation for each), the second including ``count``.
- ``mssind`` indexes :data:`MSSTAB` (536, 1300, 1440, 1460): the largest entry not
  above the MSS the SYN offered (536 when it offered less or nothing).

Checking (``check_tcp_syn_cookie`` / ``__cookie_v4_check``): with ``cookie = SEG.ACK - 1``
and ``sseq = SEG.SEQ - 1`` of the ACK, subtract ``H0 + sseq``; the top 8 bits give the
minute the cookie was made, valid when 0 or 1 minutes ago (``MAX_SYNCOOKIE_AGE`` 2);
subtracting ``H1`` for that minute leaves ``mssind``, valid when < 4.  So a cookie
lives between 60 and 120 s, for one 4-tuple and the SYN's sequence number.

Options (``cookie_init_timestamp`` / ``cookie_timestamp_decode``): the ISN has no room
for window scaling, SACK or ECN, so Linux puts them in the low 6 bits of the
SYN-ACK's TSval (before the per-host offset is added)::

    bits 0-3: the peer's window shift, 0xF for none;  bit 4: SACK;  bit 5: ECN

and the ACK's TSecr echoes them back.  The TSval is rounded down so that it never
runs ahead of the clock.  Without timestamps Linux clears every option before
making the cookie (``tcp_conn_request``: ``tcp_clear_options``): the SYN-ACK offers
MSS only, and the connection has no window scaling, SACK or ECN.
"""

from __future__ import annotations

import hashlib
import math
import os
import struct
from dataclasses import dataclass

MASK = 0xFFFFFFFF
MSSTAB = (536, 1300, 1440, 1460)
"""Linux ``msstab``: the MSS values a cookie can encode (1440: PPPoE)."""
COOKIEBITS = 24
COOKIEMASK = (1 << COOKIEBITS) - 1
COOKIE_PERIOD = 60.0
"""``TCP_SYNCOOKIE_PERIOD``: the counter in a cookie ticks once a minute."""
MAX_SYNCOOKIE_AGE = 2
"""A cookie is good in the minute it was made and the next (``MAX_SYNCOOKIE_AGE``)."""
COOKIE_VALID = MAX_SYNCOOKIE_AGE * COOKIE_PERIOD
"""``TCP_SYNCOOKIE_VALID``, 120 s: a listener checks ACKs as cookies only this long
after it last sent one (``tcp_synq_no_recent_overflow``)."""
TSBITS = 6
TSMASK = (1 << TSBITS) - 1
TS_OPT_WSCALE_MASK = 0xF
TS_OPT_SACK = 1 << 4
TS_OPT_ECN = 1 << 5
_TUPLE = struct.Struct("!4s4sHHI")
Tuple = tuple[bytes, int, bytes, int]
"""(remote address, remote port, local address, local port); IPv4 addresses as 4 bytes."""


@dataclass(frozen=True, slots=True)
class CookieOptions:
    """What a cookie's timestamp carries: the peer's window shift (None: no window
    scaling), SACK permitted, ECN."""

    wscale: int | None = None
    sack: bool = False
    ecn: bool = False


NO_OPTIONS = CookieOptions()


def mss_index(mss: int) -> int:
    """The index of the largest :data:`MSSTAB` entry not above ``mss`` (0 when ``mss``
    is below 536: Linux's loop stops at index 0)."""
    for i in range(len(MSSTAB) - 1, 0, -1):
        if mss >= MSSTAB[i]:
            return i
    return 0


def cookie_time(now: float) -> int:
    """``tcp_cookie_time``: whole cookie periods (minutes) since the clock's origin."""
    return math.floor(now / COOKIE_PERIOD) & MASK


def encode_ts(ts_now: int, options: CookieOptions) -> int:
    """``cookie_init_timestamp``: the clock ``ts_now`` (milliseconds, before the
    per-host offset) with its low :data:`TSBITS` bits replaced by ``options``, moved
    back one step when that would run ahead of the clock."""
    bits = TS_OPT_WSCALE_MASK if options.wscale is None else options.wscale & TS_OPT_WSCALE_MASK
    if options.sack:
        bits |= TS_OPT_SACK
    if options.ecn:
        bits |= TS_OPT_ECN
    ts_now &= MASK
    ts = (ts_now & ~TSMASK) | bits
    if ts > ts_now:
        ts -= 1 << TSBITS
    return ts & MASK


def decode_ts(tsecr: int) -> CookieOptions:
    """The options in an echoed cookie timestamp (``tsecr`` less the per-host offset)."""
    shift = tsecr & TS_OPT_WSCALE_MASK
    return CookieOptions(
        wscale=None if shift == TS_OPT_WSCALE_MASK else shift,
        sack=bool(tsecr & TS_OPT_SACK),
        ecn=bool(tsecr & TS_OPT_ECN),
    )


class SynCookies:
    """Makes and checks cookies with one secret (one per stack; None draws 16 random
    bytes, tests pass their own).  Stateless: nothing is remembered per SYN.

    ``conn`` is the connection's :data:`Tuple`: (remote address, remote port, local
    address, local port), the remote end being the SYN's source (Linux's ``saddr``)."""

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes | None = None) -> None:
        if secret is None:
            secret = os.urandom(16)
        if not 1 <= len(secret) <= hashlib.blake2s.MAX_KEY_SIZE:
            raise ValueError(f"secret must be 1..{hashlib.blake2s.MAX_KEY_SIZE} bytes, got {len(secret)}")
        self._secret = bytes(secret)

    def _hash(self, c: int, conn: Tuple, count: int) -> int:
        """Linux ``cookie_hash``: keyed hash ``c`` (0 or 1) of the 4-tuple and ``count``."""
        remote, rport, local, lport = conn
        message = _TUPLE.pack(remote, local, rport, lport, count & MASK)
        person = b"syncook0" if c == 0 else b"syncook1"
        digest = hashlib.blake2s(message, key=self._secret, person=person, digest_size=4).digest()
        return int.from_bytes(digest, "big")

    def make(self, conn: Tuple, sseq: int, mss: int, now: float) -> tuple[int, int]:
        """``__cookie_v4_init_sequence``: (the cookie ISN, the MSS it encodes) for a SYN
        with sequence number ``sseq`` offering ``mss``."""
        mssind = mss_index(mss)
        count = cookie_time(now)
        isn = (
            self._hash(0, conn, 0)
            + sseq
            + (count << COOKIEBITS)
            + ((self._hash(1, conn, count) + mssind) & COOKIEMASK)
        )
        return isn & MASK, MSSTAB[mssind]

    def check(self, cookie: int, conn: Tuple, sseq: int, now: float) -> int | None:
        """``__cookie_v4_check``: the MSS a cookie encodes, or None when it is not a
        cookie of the last two minutes for this 4-tuple and SYN sequence number.
        ``cookie`` is SEG.ACK - 1 and ``sseq`` SEG.SEQ - 1 of the ACK."""
        count = cookie_time(now)
        cookie = (cookie - self._hash(0, conn, 0) - sseq) & MASK
        diff = (count - (cookie >> COOKIEBITS)) & (MASK >> COOKIEBITS)
        if diff >= MAX_SYNCOOKIE_AGE:
            return None
        mssind = (cookie - self._hash(1, conn, count - diff)) & COOKIEMASK
        return MSSTAB[mssind] if mssind < len(MSSTAB) else None

    def __repr__(self) -> str:
        return "<SynCookies secret=...>"
