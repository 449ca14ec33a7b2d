"""The Internet checksum (RFC 1071) and the TCP/UDP pseudo-header (RFC 9293 §3.1, RFC 768).

The checksum is the 16-bit one's complement of the one's complement sum of the
data taken as big-endian 16-bit words (an odd trailing byte is padded with zero).

Implementation note: because 2**16 ≡ 1 (mod 2**16 - 1), the one's complement sum of
the words of a buffer is congruent, modulo 0xFFFF, to the buffer read as one big
integer.  ``int.from_bytes(data) % 0xFFFF`` therefore does in C what a word loop
would do in Python, which makes it the fast path here.  The only case the modulus
cannot tell apart is a sum of +0 (every word zero) from -0 (0xFFFF); we track
"every word zero" separately, as RFC 1071 §1 (one's complement arithmetic) requires.
"""

from __future__ import annotations

from .errors import WireError

_M = 0xFFFF

# A partial sum is kept as (value mod 0xFFFF, any word non-zero).
PartialSum = tuple[int, bool]


def partial_sum(data: bytes | bytearray | memoryview) -> PartialSum:
    """Sum ``data`` (padded to even length) as 16-bit words, for later combination."""
    n = int.from_bytes(data, "big")
    if len(data) & 1:
        n <<= 8
    return n % _M, n != 0


def pseudo_header_sum(src: bytes, dst: bytes, protocol: int, length: int) -> PartialSum:
    """The IPv4 pseudo-header of RFC 9293 §3.1 / RFC 768: src, dst, zero, protocol, length."""
    if len(src) != 4 or len(dst) != 4:
        raise WireError("ipv4.address", None, "pseudo-header addresses must be 4 bytes")
    if not 0 <= length <= 0xFFFF:
        raise WireError("pseudo_header.length", None, f"{length} is outside 0..65535")
    n = (int.from_bytes(src + dst, "big") << 32) | (protocol << 16) | length
    return n % _M, n != 0


def _fold(sums: tuple[PartialSum, ...]) -> int:
    """The one's complement sum, in 0..0xFFFF, of the combined partial sums."""
    total = 0
    nonzero = False
    for value, nz in sums:
        total += value
        nonzero = nonzero or nz
    total %= _M
    if total == 0 and nonzero:
        return _M  # -0: the sum of words that are not all zero never folds to +0
    return total


def checksum(*parts: bytes | bytearray | memoryview | PartialSum) -> int:
    """RFC 1071 checksum over ``parts`` (buffers, each of even length except the
    last, or precomputed partial sums such as :func:`pseudo_header_sum`)."""
    if len(parts) == 1 and not isinstance(parts[0], tuple):  # one buffer (an IPv4 header): one reduction
        value, nonzero = partial_sum(parts[0])
        return _M - (value or (_M if nonzero else 0))
    sums = tuple(p if isinstance(p, tuple) else partial_sum(p) for p in parts)
    return _M - _fold(sums)


def checksum_ok(*parts: bytes | bytearray | memoryview | PartialSum) -> bool:
    """True when ``parts``, checksum field included, sum to -0 (0xFFFF), i.e. verify."""
    sums = tuple(p if isinstance(p, tuple) else partial_sum(p) for p in parts)
    return _fold(sums) == _M


def pseudo_header_base(src: bytes, dst: bytes, protocol: int) -> int:
    """The pseudo-header sum without its length word, modulo 0xFFFF: a connection's
    constant part, to which each datagram adds its length (RFC 9293 §3.1).  It is
    never -0 in disguise: the protocol word alone makes the words not all zero."""
    if len(src) != 4 or len(dst) != 4:
        raise WireError("ipv4.address", None, "pseudo-header addresses must be 4 bytes")
    return ((int.from_bytes(src + dst, "big") << 32) | (protocol << 16)) % _M


def transport_checksum(base: int, header: bytes, payload: bytes | bytearray | memoryview) -> int:
    """The checksum field for ``header`` (even length, checksum field zero) followed by
    ``payload``, under a pseudo-header whose constant part is ``base``
    (:func:`pseudo_header_base`): one reduction over the whole segment.  Equal to
    :func:`checksum` of the same parts."""
    n = int.from_bytes(payload, "big")
    if len(payload) & 1:
        n <<= 8
    total = (base + len(header) + len(payload) + int.from_bytes(header, "big") + n) % _M
    return _M - total if total else 0  # the words are never all zero: a sum of 0 is -0


def transport_checksum_ok(base: int, segment: bytes | bytearray | memoryview) -> bool:
    """Verify a TCP/UDP ``segment`` (checksum field included) under a pseudo-header
    whose constant part is ``base``: the one's complement sum must be -0."""
    n = int.from_bytes(segment, "big")
    if len(segment) & 1:
        n <<= 8
    return (base + len(segment) + n) % _M == 0
