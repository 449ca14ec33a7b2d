"""Initial sequence numbers (RFC 6528 §3) and per-connection timestamp offsets (RFC 7323).

RFC 6528 §3: ISN = M + F(localip, localport, remoteip, remoteport, secretkey),
where M is a timer ticking every 4 microseconds and F a pseudorandom function of
the connection-id and a secret.  Connections to different peers get unrelated
sequence spaces, while one connection-id reused over time still sees its ISN
advance with the clock (RFC 9293 §3.4.1).  F here is BLAKE2s keyed with the secret
(:mod:`hashlib`), its first 32 bits.  Time is passed in (seconds); nothing reads a
clock.
"""

from __future__ import annotations

import hashlib
import math
import os
import struct

_MASK = 0xFFFFFFFF
TICKS_PER_SECOND = 250_000
"""RFC 6528 §3 (RFC 9293 §3.4.1): M is "a 4 microsecond timer"."""
SECRET_LEN = 16


class IsnGenerator:
    """ISNs and timestamp offsets from one secret (one per stack).

    ``secret`` is the key of F; None draws 16 random bytes (``os.urandom``) — tests pass
    their own for determinism.  RFC 6528 §3 asks that the secret be hard to guess
    and, if ever changed, changed with care; BLAKE2s accepts keys of 1 to 32 bytes.
    """

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes | None = None) -> None:
        if secret is None:
            secret = os.urandom(SECRET_LEN)
        if not 1 <= len(secret) <= hashlib.blake2s.MAX_KEY_SIZE:
            raise ValueError(f"secret must be 1..{hashlib.blake2s.MAX_KEY_SIZE} bytes, got {len(secret)}")
        self._secret = bytes(secret)

    def _f(self, person: bytes, message: bytes) -> int:
        """The keyed hash, truncated to its first 32 bits (big-endian)."""
        digest = hashlib.blake2s(message, key=self._secret, person=person).digest()
        return int.from_bytes(digest[:4], "big")

    def isn(self, local_ip: bytes, local_port: int, remote_ip: bytes, remote_port: int, now: float) -> int:
        """The ISN for a connection (RFC 6528 §3): ``(M + F(4-tuple, secret)) mod 2**32``.

        M = ``floor(now / 4 µs)``, so the ISN grows by 250 000 a second and wraps
        about every 4.77 hours.  Addresses are raw bytes (4 for IPv4, 16 for IPv6).
        """
        for name, port in (("local_port", local_port), ("remote_port", remote_port)):
            if not 0 <= port <= 0xFFFF:
                raise ValueError(f"{name} {port} is outside 0..65535")
        m = math.floor(now * TICKS_PER_SECOND)
        message = b"".join(
            (
                bytes([len(local_ip)]),
                local_ip,
                struct.pack("!H", local_port),
                bytes([len(remote_ip)]),
                remote_ip,
                struct.pack("!H", remote_port),
            )
        )
        return (m + self._f(b"tcp-isn", message)) & _MASK

    def ts_offset(self, local_ip: bytes, remote_ip: bytes) -> int:
        """A 32-bit offset added to the timestamp clock for connections between these
        addresses (RFC 7323 §5.4: the timestamp clock may start from a random offset;
        its security and privacy considerations explain why: one global clock leaks
        uptime and lets hosts be told apart).

        Like Linux (``secure_tcp_ts_off``, a keyed hash of the address pair), the offset
        depends on the address pair only, so every connection between the same two
        hosts shares one timestamp clock.
        """
        message = bytes([len(local_ip)]) + local_ip + bytes([len(remote_ip)]) + remote_ip
        return self._f(b"tcp-tso", message)

    def __repr__(self) -> str:
        return "<IsnGenerator secret=...>"
