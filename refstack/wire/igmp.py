"""IGMP messages: IGMPv1 (RFC 1112 Appendix I), IGMPv2 (RFC 2236 §2) and IGMPv3
(RFC 3376 §4).

IGMPv1/v2 messages are 8 bytes (RFC 2236 §2)::

    |      Type     | Max Resp Time |           Checksum            |
    |                         Group Address                         |

(IGMPv1 splits the first octet into version 1 and type 1 or 2, i.e. 0x11 or 0x12,
and leaves the second unused: RFC 1112 Appendix I.)

The IGMPv3 Membership Query (RFC 3376 §4.1) extends the query::

    |  Type = 0x11  | Max Resp Code |           Checksum            |
    |                         Group Address                         |
    | Resv  |S| QRV |     QQIC      |     Number of Sources (N)     |
    |                       Source Address [1..N]                   |

and the IGMPv3 Membership Report (RFC 3376 §4.2) is a list of group records::

    |  Type = 0x22  |    Reserved   |           Checksum            |
    |           Reserved            |  Number of Group Records (M)  |
    |  Record Type  |  Aux Data Len |     Number of Sources (N)     |   } one per
    |                       Multicast Address                       |   } group
    |                       Source Address [1..N]                   |   } record
    |                       Auxiliary Data (Aux Data Len words)     |   }

Which view a buffer gets follows RFC 3376 §7.1 (:func:`parse_igmp`): a query of 8
bytes is IGMPv1/v2, one of 12 or more is IGMPv3, anything in between is malformed.
The IGMP message is the whole buffer given (the IPv4 payload): the checksum covers
all of it (RFC 2236 §2.3, RFC 3376 §4.1.2), and octets after the fields described
here are kept as ``additional_data`` and otherwise ignored (RFC 2236 §2.5,
RFC 3376 §4.1.10 and §4.2.11).  This module holds no protocol state: timers,
membership tables and compatibility modes belong to the host.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

from .addresses import Ipv4Addr, ipv4_str
from .checksum import checksum, checksum_ok
from .errors import WireError, check_range

HEADER_LEN = 8
V3_QUERY_MIN_LEN = 12
GROUP_RECORD_HEADER_LEN = 8

# Types (RFC 2236 §2.1, RFC 3376 §4).
MEMBERSHIP_QUERY = 0x11
V1_REPORT = 0x12
V2_REPORT = 0x16
V2_LEAVE = 0x17
V3_REPORT = 0x22

TYPE_NAMES = {
    MEMBERSHIP_QUERY: "query",
    V1_REPORT: "v1-report",
    V2_REPORT: "v2-report",
    V2_LEAVE: "v2-leave",
    V3_REPORT: "v3-report",
}

# Group record types (RFC 3376 §4.2.12).
MODE_IS_INCLUDE = 1
MODE_IS_EXCLUDE = 2
CHANGE_TO_INCLUDE_MODE = 3
CHANGE_TO_EXCLUDE_MODE = 4
ALLOW_NEW_SOURCES = 5
BLOCK_OLD_SOURCES = 6

RECORD_TYPE_NAMES = {
    MODE_IS_INCLUDE: "IS_IN",
    MODE_IS_EXCLUDE: "IS_EX",
    CHANGE_TO_INCLUDE_MODE: "TO_IN",
    CHANGE_TO_EXCLUDE_MODE: "TO_EX",
    ALLOW_NEW_SOURCES: "ALLOW",
    BLOCK_OLD_SOURCES: "BLOCK",
}

# Well-known groups (RFC 1112 §4, RFC 2236 §3, RFC 3376 §4.2.14).
ALL_HOSTS: Ipv4Addr = bytes((224, 0, 0, 1))
ALL_ROUTERS: Ipv4Addr = bytes((224, 0, 0, 2))
IGMPV3_ROUTERS: Ipv4Addr = bytes((224, 0, 0, 22))

MAX_CODED_VALUE = 0x1F << 10  # 31744: mantissa 0xF, exponent 7 (RFC 3376 §4.1.1)

_V12 = struct.Struct("!BBH4s")
_V3Q = struct.Struct("!BBH4sBBH")
_V3R = struct.Struct("!BBHHH")
_REC = struct.Struct("!BBH4s")


def decode_max_resp_code(code: int) -> int:
    """Max Resp Code -> Max Resp Time in tenths of a second (RFC 3376 §4.1.1).

    Below 128 the code is the value; otherwise it is a floating-point number
    ``1 | exp(3) | mant(4)`` meaning ``(mant | 0x10) << (exp + 3)``.  The same
    encoding gives the Querier's Query Interval in seconds from QQIC (§4.1.7).
    """
    check_range("igmp.max_resp_code", code, 0xFF)
    if code < 128:
        return code
    return ((code & 0x0F) | 0x10) << (((code >> 4) & 0x07) + 3)


def encode_max_resp_code(value: int) -> int:
    """Max Resp Time (tenths of a second) or query interval (seconds) -> code
    (RFC 3376 §4.1.1, §4.1.7): the representable value nearest to ``value`` and not
    above it.  ``value`` must be in ``0..31744``.
    """
    check_range("igmp.max_resp_time", value, MAX_CODED_VALUE)
    if value < 128:
        return value
    exp = value.bit_length() - 8  # the mantissa with its implied 0x10 has 5 bits, shifted by exp + 3
    return 0x80 | (exp << 4) | ((value >> (exp + 3)) & 0x0F)


def _check_length(buf: bytes, need: int, field: str) -> None:
    if len(buf) < need:
        raise WireError(field, 0, f"needs {need} bytes, got {len(buf)}")


def _check_type(buf: bytes, want: int) -> None:
    if buf[0] != want:
        raise WireError("igmp.type", 0, f"0x{buf[0]:02x} is not 0x{want:02x}")


class IgmpMessage:
    """A checked view of the 8-byte IGMPv1/v2 message (RFC 1112 App. I, RFC 2236 §2).

    Any type is accepted, so that a host can ignore unknown ones itself (RFC 2236
    §2.1): :func:`parse_igmp` hands back this view for every type but 0x22 and
    IGMPv3 queries.  Octets past the first 8 are ignored except by the checksum
    (RFC 2236 §2.5); a query of 9 to 11 bytes is malformed (RFC 3376 §7.1).
    """

    __slots__ = ("_buf", "_f")
    _buf: bytes
    _f: tuple[int, int, int, bytes]

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        buf = data if type(data) is bytes else bytes(data)
        _check_length(buf, HEADER_LEN, "igmp")
        n = len(buf)
        if buf[0] == MEMBERSHIP_QUERY and HEADER_LEN < n < V3_QUERY_MIN_LEN:
            raise WireError(
                "igmp.query.length",
                HEADER_LEN,
                f"a {n}-byte query is neither IGMPv1/v2 (8 bytes) nor IGMPv3 (12 or more)",
            )
        self._buf = buf
        self._f = _V12.unpack_from(buf)

    @property
    def type(self) -> int:
        return self._f[0]

    @property
    def max_resp_time(self) -> int:
        """Max Resp Time in tenths of a second (RFC 2236 §2.2); 0 in IGMPv1 messages."""
        return self._f[1]

    @property
    def checksum(self) -> int:
        return self._f[2]

    @property
    def group(self) -> Ipv4Addr:
        """Group Address: 0.0.0.0 in a general query (RFC 2236 §2.4)."""
        return self._f[3]

    @property
    def version(self) -> int:
        """1 for an IGMPv1 query (Max Resp Time 0, RFC 2236 §4) or a 0x12 report, else 2."""
        t = self._f[0]
        if t == V1_REPORT or (t == MEMBERSHIP_QUERY and self._f[1] == 0):
            return 1
        return 2

    @property
    def additional_data(self) -> bytes:
        """Octets after the first 8 (ignored by IGMPv1/v2, RFC 2236 §2.5)."""
        return self._buf[HEADER_LEN:]

    def checksum_ok(self) -> bool:
        """Verify the checksum over the whole message (RFC 2236 §2.3)."""
        return checksum_ok(self._buf)

    def __bytes__(self) -> bytes:
        return self._buf

    def __repr__(self) -> str:
        t = self._f[0]
        name = TYPE_NAMES.get(t, f"type-0x{t:02x}")
        return (
            f"<IgmpMessage v{self.version} {name} group={ipv4_str(self._f[3])}"
            f" max_resp={self._f[1]} len={len(self._buf)}>"
        )


class IgmpV3Query:
    """A checked view of an IGMPv3 Membership Query (RFC 3376 §4.1), 12 bytes or more.

    The constructor checks the type and that the source list fits the buffer;
    afterwards no getter can fail.  The Resv bits are ignored (§4.1.4).
    """

    __slots__ = ("_buf", "_f", "_sources")
    _buf: bytes
    _f: tuple[int, int, int, bytes, int, int, int]
    _sources: tuple[Ipv4Addr, ...]

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        buf = data if type(data) is bytes else bytes(data)
        _check_length(buf, V3_QUERY_MIN_LEN, "igmp.v3_query")
        _check_type(buf, MEMBERSHIP_QUERY)
        f = _V3Q.unpack_from(buf)
        count = f[6]
        end = V3_QUERY_MIN_LEN + 4 * count
        if end > len(buf):
            raise WireError(
                "igmp.v3_query.sources",
                10,
                f"{count} sources need {4 * count} bytes, {len(buf) - V3_QUERY_MIN_LEN} left",
            )
        self._buf = buf
        self._f = f
        self._sources = tuple(buf[i : i + 4] for i in range(V3_QUERY_MIN_LEN, end, 4))

    @property
    def type(self) -> int:
        return self._f[0]

    @property
    def max_resp_code(self) -> int:
        """The Max Resp Code as carried (RFC 3376 §4.1.1)."""
        return self._f[1]

    @property
    def max_resp_time(self) -> int:
        """The decoded Max Resp Time, in tenths of a second (RFC 3376 §4.1.1)."""
        return decode_max_resp_code(self._f[1])

    @property
    def checksum(self) -> int:
        return self._f[2]

    @property
    def group(self) -> Ipv4Addr:
        """0.0.0.0 in a general query (RFC 3376 §4.1.3)."""
        return self._f[3]

    @property
    def s_flag(self) -> bool:
        """Suppress Router-Side Processing (RFC 3376 §4.1.5)."""
        return bool(self._f[4] & 0x08)

    @property
    def qrv(self) -> int:
        """Querier's Robustness Variable, 0..7 (RFC 3376 §4.1.6)."""
        return self._f[4] & 0x07

    @property
    def qqic(self) -> int:
        """Querier's Query Interval Code as carried (RFC 3376 §4.1.7)."""
        return self._f[5]

    @property
    def query_interval(self) -> int:
        """The decoded Querier's Query Interval, in seconds (RFC 3376 §4.1.7)."""
        return decode_max_resp_code(self._f[5])

    @property
    def sources(self) -> tuple[Ipv4Addr, ...]:
        return self._sources

    @property
    def additional_data(self) -> bytes:
        """Octets after the source list (ignored but checksummed, RFC 3376 §4.1.10)."""
        return self._buf[V3_QUERY_MIN_LEN + 4 * self._f[6] :]

    def checksum_ok(self) -> bool:
        """Verify the checksum over the whole message (RFC 3376 §4.1.2)."""
        return checksum_ok(self._buf)

    def __bytes__(self) -> bytes:
        return self._buf

    def __repr__(self) -> str:
        srcs = ",".join(ipv4_str(s) for s in self._sources)
        return (
            f"<IgmpV3Query group={ipv4_str(self._f[3])} max_resp={self.max_resp_time}"
            f"{' S' if self.s_flag else ''} qrv={self.qrv} qqi={self.query_interval} sources=[{srcs}]>"
        )


@dataclass(frozen=True, slots=True)
class GroupRecord:
    """One group record of an IGMPv3 report (RFC 3376 §4.2.4).

    ``record_type`` is kept as carried: types other than 1..6 must be ignored by the
    receiver (RFC 3376 §4.2.12), which is the host's business.  ``aux_data`` is the
    Auxiliary Data, a multiple of 4 bytes (§4.2.6, §4.2.10).
    """

    record_type: int
    group: Ipv4Addr
    sources: tuple[Ipv4Addr, ...] = ()
    aux_data: bytes = b""

    @property
    def name(self) -> str:
        return RECORD_TYPE_NAMES.get(self.record_type, f"record-{self.record_type}")


class IgmpV3Report:
    """A checked view of an IGMPv3 Membership Report (RFC 3376 §4.2).

    The constructor checks the type and parses every group record, checking that
    its source list and auxiliary data fit the buffer; afterwards no getter can
    fail.  The reserved fields are ignored (§4.2.1).
    """

    __slots__ = ("_buf", "_end", "_f", "_records")
    _buf: bytes
    _f: tuple[int, int, int, int, int]
    _records: tuple[GroupRecord, ...]
    _end: int

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        buf = data if type(data) is bytes else bytes(data)
        _check_length(buf, HEADER_LEN, "igmp.v3_report")
        _check_type(buf, V3_REPORT)
        f = _V3R.unpack_from(buf)
        n = len(buf)
        records: list[GroupRecord] = []
        off = HEADER_LEN
        for i in range(f[4]):
            field = f"igmp.v3_report.record[{i}]"
            if off + GROUP_RECORD_HEADER_LEN > n:
                raise WireError(
                    field, off, f"record header needs {GROUP_RECORD_HEADER_LEN} bytes, {n - off} left"
                )
            rtype, aux_words, count, group = _REC.unpack_from(buf, off)
            src_start = off + GROUP_RECORD_HEADER_LEN
            aux_start = src_start + 4 * count
            if aux_start > n:
                raise WireError(
                    field + ".sources",
                    off + 2,
                    f"{count} sources need {4 * count} bytes, {n - src_start} left",
                )
            end = aux_start + 4 * aux_words
            if end > n:
                raise WireError(
                    field + ".aux_data",
                    off + 1,
                    f"{aux_words} words of auxiliary data need {4 * aux_words} bytes, {n - aux_start} left",
                )
            sources = tuple(buf[j : j + 4] for j in range(src_start, aux_start, 4))
            records.append(GroupRecord(rtype, group, sources, buf[aux_start:end]))
            off = end
        self._buf = buf
        self._f = f
        self._records = tuple(records)
        self._end = off

    @property
    def type(self) -> int:
        return self._f[0]

    @property
    def checksum(self) -> int:
        return self._f[2]

    @property
    def records(self) -> tuple[GroupRecord, ...]:
        return self._records

    @property
    def additional_data(self) -> bytes:
        """Octets after the last record (ignored but checksummed, RFC 3376 §4.2.11)."""
        return self._buf[self._end :]

    def checksum_ok(self) -> bool:
        """Verify the checksum over the whole message (RFC 3376 §4.2.2)."""
        return checksum_ok(self._buf)

    def __bytes__(self) -> bytes:
        return self._buf

    def __repr__(self) -> str:
        recs = " ".join(
            f"{r.name}({ipv4_str(r.group)}{''.join(' ' + ipv4_str(s) for s in r.sources)})"
            for r in self._records
        )
        return f"<IgmpV3Report [{recs}]>"


def parse_igmp(data: bytes | bytearray | memoryview) -> IgmpMessage | IgmpV3Query | IgmpV3Report:
    """The right view for an IGMP message (the whole IPv4 payload), per RFC 3376 §7.1.

    A query of exactly 8 bytes is IGMPv1/v2 (:class:`IgmpMessage`), one of 12 bytes
    or more is IGMPv3 (:class:`IgmpV3Query`), and 9 to 11 bytes raise
    :class:`WireError`.  Type 0x22 is an :class:`IgmpV3Report`.  Every other type,
    known (reports, leave) or not, of 8 bytes or more gives an :class:`IgmpMessage`:
    ignoring unknown types (RFC 2236 §2.1, RFC 3376 §4) is left to the host.
    """
    buf = data if type(data) is bytes else bytes(data)
    _check_length(buf, HEADER_LEN, "igmp")
    t = buf[0]
    if t == MEMBERSHIP_QUERY and len(buf) >= V3_QUERY_MIN_LEN:
        return IgmpV3Query(buf)
    if t == V3_REPORT:
        return IgmpV3Report(buf)
    return IgmpMessage(buf)


def _finish(msg: bytes, checksum_value: int | None) -> bytes:
    if checksum_value is None:
        checksum_value = checksum(msg)
    else:
        check_range("igmp.checksum", checksum_value, 0xFFFF)
    return msg[:2] + checksum_value.to_bytes(2, "big") + msg[4:]


def _check_addr(field: str, addr: bytes) -> None:
    if len(addr) != 4:
        raise WireError(field, None, f"needs 4 bytes, got {len(addr)}")


def build_igmp(
    type: int,
    group: Ipv4Addr,
    *,
    max_resp_time: int = 0,
    checksum_value: int | None = None,
) -> bytes:
    """Emit an 8-byte IGMPv1/v2 message (RFC 2236 §2) with its checksum.

    ``max_resp_time`` is in tenths of a second (queries only; 0 makes an IGMPv1
    query).  ``checksum_value`` overrides the checksum.
    """
    check_range("igmp.type", type, 0xFF)
    check_range("igmp.max_resp_time", max_resp_time, 0xFF)
    _check_addr("igmp.group", group)
    return _finish(_V12.pack(type, max_resp_time, 0, bytes(group)), checksum_value)


def build_igmp_v3_query(
    group: Ipv4Addr = b"\0" * 4,
    *,
    max_resp_code: int = 100,
    s_flag: bool = False,
    qrv: int = 2,
    qqic: int = 125,
    sources: Iterable[Ipv4Addr] = (),
    checksum_value: int | None = None,
) -> bytes:
    """Emit an IGMPv3 Membership Query (RFC 3376 §4.1).

    ``max_resp_code`` and ``qqic`` are the coded fields (see
    :func:`encode_max_resp_code`); the defaults are the RFC 3376 §8 defaults of a
    10-second Query Response Interval, robustness 2 and a 125-second Query Interval.
    """
    check_range("igmp.max_resp_code", max_resp_code, 0xFF)
    check_range("igmp.qrv", qrv, 7)
    check_range("igmp.qqic", qqic, 0xFF)
    _check_addr("igmp.group", group)
    srcs = tuple(sources)
    check_range("igmp.v3_query.number_of_sources", len(srcs), 0xFFFF)
    for i, s in enumerate(srcs):
        _check_addr(f"igmp.v3_query.sources[{i}]", s)
    msg = _V3Q.pack(
        MEMBERSHIP_QUERY, max_resp_code, 0, bytes(group), (0x08 if s_flag else 0) | qrv, qqic, len(srcs)
    ) + b"".join(bytes(s) for s in srcs)
    return _finish(msg, checksum_value)


def build_igmp_v3_report(records: Iterable[GroupRecord], *, checksum_value: int | None = None) -> bytes:
    """Emit an IGMPv3 Membership Report (RFC 3376 §4.2) of ``records``, in order."""
    recs = tuple(records)
    check_range("igmp.v3_report.number_of_records", len(recs), 0xFFFF)
    out = bytearray(_V3R.pack(V3_REPORT, 0, 0, 0, len(recs)))
    for i, r in enumerate(recs):
        field = f"igmp.v3_report.record[{i}]"
        check_range(field + ".record_type", r.record_type, 0xFF)
        _check_addr(field + ".group", r.group)
        check_range(field + ".number_of_sources", len(r.sources), 0xFFFF)
        if len(r.aux_data) % 4 or len(r.aux_data) > 4 * 0xFF:
            raise WireError(
                field + ".aux_data", None, f"{len(r.aux_data)} bytes is not a multiple of 4 up to 1020"
            )
        out += _REC.pack(r.record_type, len(r.aux_data) // 4, len(r.sources), bytes(r.group))
        for j, s in enumerate(r.sources):
            _check_addr(f"{field}.sources[{j}]", s)
            out += s
        out += r.aux_data
    return _finish(bytes(out), checksum_value)
