"""The syntax tree of a ``.pkt`` script (GRAMMAR.md §1-§7).

The tree says what the script says, nothing more: relative times stay relative,
script-space sequence numbers stay in script space, symbols (``SOCK_STREAM``) stay
names and ICMP names stay names (next to the numbers they stand for).  A later
executor maps it to live values.

Every node is a frozen dataclass with a 1-based ``line`` and ``col`` (keyword-only,
so constructors read ``IntExpr(3, line=1, col=5)``).  Positions take no part in
equality or ``repr``: two nodes are equal when they say the same thing, wherever
they were written, which lets tests compare whole subtrees.

Times are integers of microseconds, packetdrill's internal unit (an integer time is
seconds, a float is converted exactly, to the microsecond).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import ClassVar, TypeAlias

__all__ = [
    "ICMP_CODES",
    "ICMP_TYPES",
    "IGMP_KINDS",
    "IGMP_RECORD_TYPES",
    "AccEcnOption",
    "Action",
    "AnyOptions",
    "ArrayExpr",
    "BitOrExpr",
    "Body",
    "CallExpr",
    "CodeEvent",
    "Direction",
    "EchoedRaw",
    "EchoedTcp",
    "EchoedUdp",
    "Ecn",
    "EllipsisExpr",
    "Encap",
    "EolOption",
    "Event",
    "Expr",
    "FastOpenExpOption",
    "FastOpenOption",
    "GreEncap",
    "IcmpBody",
    "IgmpBody",
    "IgmpRecord",
    "IntExpr",
    "IpEncap",
    "IpInfo",
    "Md5Option",
    "MplsEncap",
    "MplsEntry",
    "MssOption",
    "Node",
    "NopOption",
    "Option",
    "PacketEvent",
    "Ports",
    "PspEncap",
    "SackBlock",
    "SackOkOption",
    "SackOption",
    "Script",
    "ShellEvent",
    "SilenceBody",
    "SizedExpr",
    "StringExpr",
    "StructExpr",
    "SymbolExpr",
    "SyscallEvent",
    "TcpBody",
    "TcpOptionSpec",
    "TimeKind",
    "TimeSpec",
    "TimestampOption",
    "UdpBody",
    "WscaleOption",
    "icmp_code_number",
    "icmp_type_number",
]


@dataclass(frozen=True)
class Node:
    """Where a construct starts in the script (1-based); not part of equality or repr."""

    line: int = field(default=0, compare=False, repr=False, kw_only=True)
    col: int = field(default=0, compare=False, repr=False, kw_only=True)


# --- the file ----------------------------------------------------------------------


@dataclass(frozen=True)
class Option(Node):
    """``--name`` or ``--name=value`` at the top of a script (GRAMMAR.md §7)."""

    name: str
    value: str | None = None


@dataclass(frozen=True)
class Script(Node):
    """A whole file: options in order, the init command (a backquoted block before
    the first event), the events, and the cleanup command (a backquoted block after
    the last one; always run, but only if the init command ran)."""

    path: str
    options: tuple[Option, ...]
    init_command: ShellEvent | None
    events: tuple[Event, ...]
    cleanup_command: ShellEvent | None

    def option(self, name: str) -> str | None:
        """The value of the last ``--name=value`` option (``""`` for a bare ``--name``)."""
        for option in reversed(self.options):
            if option.name == name:
                return "" if option.value is None else option.value
        return None


# --- time specs (§2) ---------------------------------------------------------------


class TimeKind(enum.Enum):
    ABSOLUTE = "absolute"  # 1.5: seconds since the script started
    RELATIVE = "relative"  # +0.1: after the previous event (anchoring: GRAMMAR.md §2)
    ABSOLUTE_RANGE = "absolute range"  # 0.1~0.2 (outbound packets only)
    RELATIVE_RANGE = "relative range"  # +0.1~+0.2 (outbound packets only)
    ANY = "any"  # * (outbound packets only; no timing check, no sniff timeout)


@dataclass(frozen=True)
class TimeSpec(Node):
    """When an event happens.  ``start_usecs`` is the (first) time as written, 0 for
    ``*``; ``end_usecs`` the end of a range, else None.  Relative times are kept
    relative: their anchor (the previous event's actual or scripted time) is the
    executor's business."""

    kind: TimeKind
    start_usecs: int = 0
    end_usecs: int | None = None

    @property
    def is_relative(self) -> bool:
        return self.kind in (TimeKind.RELATIVE, TimeKind.RELATIVE_RANGE)

    @property
    def is_range(self) -> bool:
        return self.kind in (TimeKind.ABSOLUTE_RANGE, TimeKind.RELATIVE_RANGE)


@dataclass(frozen=True)
class Event(Node):
    """``time action``; the position is the time's."""

    time: TimeSpec
    action: Action


# --- packets (§3) ------------------------------------------------------------------


class Direction(enum.Enum):
    INBOUND = "<"  # injected into the system under test
    OUTBOUND = ">"  # expected from the system under test


class Ecn(enum.Enum):
    """The ECN codepoint an ip_info sets (inbound) or checks (outbound)."""

    NOT_ECT = "noecn"
    ECT0 = "ect0"
    ECT1 = "ect1"
    CE = "ce"
    ECT01 = "ect01"  # outbound only: either ECT codepoint

    @property
    def codepoint(self) -> int | None:
        """The two-bit value (None for ``ect01``, which accepts 1 or 2)."""
        return {"noecn": 0, "ect1": 1, "ect0": 2, "ce": 3}.get(self.value)


@dataclass(frozen=True)
class IpInfo(Node):
    """``(ect0, flowlabel 0x1)`` / ``[tos 0x10]`` / ``(ttl 64)`` after the direction.
    Unwritten fields are None (not checked outbound, defaults inbound)."""

    ecn: Ecn | None = None
    tos: int | None = None
    ttl: int | None = None
    flowlabel: int | None = None
    # Extensions (EXTENSIONS.md): the packet's own addresses, identification, DF, and
    # which slice of the datagram this line is when it is a fragment.
    src: str | None = None
    dst: str | None = None
    ip_id: int | None = None
    df: bool | None = None
    frag_offset: int | None = None  # bytes into the datagram's payload (a multiple of 8)
    frag_length: int | None = None  # None: to the end of the datagram
    mf: bool | None = None  # None: set when the slice ends before the datagram does

    @property
    def is_fragment(self) -> bool:
        return self.frag_offset is not None


@dataclass(frozen=True)
class Ports(Node):
    """Explicit ``sport>dport``: a packet for a flow other than the socket under test's."""

    src: int
    dst: int


@dataclass(frozen=True)
class IpEncap(Node):
    """An outer IP header: ``ipv4 A > B:`` / ``ipv6 A > B:`` (IPIP, or before ``gre:``)."""

    version: int  # 4 or 6
    src: str
    dst: str
    ip_info: IpInfo | None = None


@dataclass(frozen=True)
class GreEncap(Node):
    """``gre:`` or ``gre flags 0xb000, sum 511, off 1023, key 0x80001234, seq 512:``;
    unwritten fields are None (``flags [checksum present, ...]`` is stored as its bits)."""

    flags: int | None = None
    sum: int | None = None
    off: int | None = None
    key: int | None = None
    seq: int | None = None


@dataclass(frozen=True)
class MplsEntry(Node):
    """One ``(label L, tc T, [S], ttl N)`` label stack entry."""

    label: int
    tc: int
    bottom: bool
    ttl: int


@dataclass(frozen=True)
class MplsEncap(Node):
    """``mpls (label ...) (label ...):``, outermost entry first."""

    entries: tuple[MplsEntry, ...]


@dataclass(frozen=True)
class PspEncap(Node):
    """PSP (wire mode only): ``psp spi N[, vc N]:`` after an outer IP header (tunnel
    mode) or ``encap psp spi N[, vc N]`` right after the direction (transport mode)."""

    spi: int
    vc: int | None = None
    transport: bool = False


Encap: TypeAlias = IpEncap | GreEncap | MplsEncap | PspEncap


@dataclass(frozen=True)
class TcpOptionSpec(Node):
    """A TCP option as written in ``<...>``.  ``KIND`` is the option kind byte and
    :attr:`length` the bytes it takes on the wire (options are never padded: the
    list must add up to a multiple of 4)."""

    KIND: ClassVar[int]

    @property
    def length(self) -> int:
        raise NotImplementedError


@dataclass(frozen=True)
class NopOption(TcpOptionSpec):
    KIND: ClassVar[int] = 1

    @property
    def length(self) -> int:
        return 1


@dataclass(frozen=True)
class EolOption(TcpOptionSpec):
    KIND: ClassVar[int] = 0

    @property
    def length(self) -> int:
        return 1


@dataclass(frozen=True)
class MssOption(TcpOptionSpec):
    KIND: ClassVar[int] = 2
    mss: int

    @property
    def length(self) -> int:
        return 4


@dataclass(frozen=True)
class WscaleOption(TcpOptionSpec):
    KIND: ClassVar[int] = 3
    shift: int

    @property
    def length(self) -> int:
        return 3


@dataclass(frozen=True)
class SackOkOption(TcpOptionSpec):
    KIND: ClassVar[int] = 4

    @property
    def length(self) -> int:
        return 2


@dataclass(frozen=True)
class SackBlock(Node):
    """``L:R`` in script space (shifted by the local ISN on the way in and out)."""

    left: int
    right: int


@dataclass(frozen=True)
class SackOption(TcpOptionSpec):
    KIND: ClassVar[int] = 5
    blocks: tuple[SackBlock, ...]

    @property
    def length(self) -> int:
        return 2 + 8 * len(self.blocks)


@dataclass(frozen=True)
class TimestampOption(TcpOptionSpec):
    """``TS val V ecr E`` (script values; see GRAMMAR.md §3.1 for the mapping)."""

    KIND: ClassVar[int] = 8
    val: int
    ecr: int

    @property
    def length(self) -> int:
        return 10


@dataclass(frozen=True)
class FastOpenOption(TcpOptionSpec):
    """``FO [cookie]`` (kind 34); an empty cookie is a cookie request."""

    KIND: ClassVar[int] = 34
    cookie: bytes = b""

    @property
    def length(self) -> int:
        return 2 + len(self.cookie)


@dataclass(frozen=True)
class FastOpenExpOption(TcpOptionSpec):
    """``FOEXP [cookie]``: experimental TFO (kind 254, magic 0xF989)."""

    KIND: ClassVar[int] = 254
    MAGIC: ClassVar[int] = 0xF989
    cookie: bytes = b""

    @property
    def length(self) -> int:
        return 4 + len(self.cookie)


@dataclass(frozen=True)
class Md5Option(TcpOptionSpec):
    """``md5 <hex digest>`` (kind 19; up to 16 bytes, shorter ones allowed on purpose)."""

    KIND: ClassVar[int] = 19
    digest: bytes

    @property
    def length(self) -> int:
        return 2 + len(self.digest)


@dataclass(frozen=True)
class AccEcnOption(TcpOptionSpec):
    """AccECN ``ECN e0b N [ceb N [e1b N]]`` (order 0, kind 172) or ``ECN e1b N [ceb N
    [e0b N]]`` (order 1, kind 174): ``counters`` in written order, 3 bytes each."""

    KIND: ClassVar[int] = 172
    KIND_ORDER1: ClassVar[int] = 174
    counters: tuple[tuple[str, int], ...]

    @property
    def kind(self) -> int:
        return self.KIND_ORDER1 if self.counters and self.counters[0][0] == "e1b" else self.KIND

    @property
    def length(self) -> int:
        return 2 + 3 * len(self.counters)


@dataclass(frozen=True)
class AnyOptions(Node):
    """``<...>`` (outbound only): do not check the options at all."""


# TCP flag bits, low 9 bits of the 12-bit field of RFC 9293 §3.1 (AE: RFC 9768, bit 8).
_FLAG_BITS = {
    "F": 0x01,
    "S": 0x02,
    "R": 0x04,
    "P": 0x08,
    ".": 0x10,
    "U": 0x20,
    "E": 0x40,
    "W": 0x80,
    "A": 0x100,
}


@dataclass(frozen=True)
class TcpBody(Node):
    """``FLAGS START:END(LEN) [ack N] [win N] [urg N] [<options>]``.

    ``flags`` is the flag text as written (``"S."``, ``"P."``, ``".5"``), ``""`` for
    ``-``.  ``options`` is None when none were written (the packet carries none),
    :class:`AnyOptions` for ``<...>``, else the options in order."""

    flags: str
    seq_start: int
    seq_end: int
    seq_len: int
    ack: int | None = None
    win: int | None = None
    urg: int | None = None
    options: tuple[TcpOptionSpec, ...] | AnyOptions | None = None

    @property
    def flag_bits(self) -> int:
        """The flags as the 12-bit header field's low 9 bits; an AccECN digit sets
        the ACE field (AE|CWR|ECE, most significant first)."""
        bits = 0
        for char in self.flags:
            if char.isdigit():
                ace = int(char)
                bits |= (0x100 if ace & 4 else 0) | (0x80 if ace & 2 else 0) | (0x40 if ace & 1 else 0)
            else:
                bits |= _FLAG_BITS[char]
        return bits


@dataclass(frozen=True)
class UdpBody(Node):
    """``udp [sport>dport] (LEN)``: LEN payload bytes."""

    length: int


@dataclass(frozen=True)
class EchoedTcp(Node):
    """``[START:END(LEN)]``: the echoed TCP header's seq, relative to the socket."""

    seq_start: int
    seq_end: int
    seq_len: int


@dataclass(frozen=True)
class EchoedUdp(Node):
    """``[udp(LEN)]``: an echoed UDP datagram of LEN payload bytes."""

    length: int


@dataclass(frozen=True)
class EchoedRaw(Node):
    """``[raw(LEN)]``: LEN bytes of ICMP payload, no echoed header."""

    length: int


# ICMP type and code names per IP version (RFC 792, RFC 1812; RFC 4443), as packetdrill
# spells them.  ``type_N``/``code_N`` give any other number.
ICMP_TYPES: dict[int, dict[str, int]] = {
    4: {
        "echo_reply": 0,
        "unreachable": 3,
        "source_quench": 4,
        "redirect": 5,
        "echo_request": 8,
        "time_exceeded": 11,
        "parameter_problem": 12,
        "timestamp_request": 13,
        "timestamp_reply": 14,
        "information_request": 15,
        "information_reply": 16,
        "address_mask_request": 17,
        "address_mask_reply": 18,
    },
    6: {
        "unreachable": 1,
        "packet_too_big": 2,
        "time_exceeded": 3,
        "parameter_problem": 4,
        "echo_request": 128,
        "echo_reply": 129,
    },
}
ICMP_CODES: dict[int, dict[int, dict[str, int]]] = {
    4: {
        3: {
            "net_unreachable": 0,
            "host_unreachable": 1,
            "protocol_unreachable": 2,
            "port_unreachable": 3,
            "frag_needed": 4,
            "source_route_failed": 5,
            "net_unknown": 6,
            "host_unknown": 7,
            "source_host_isolated": 8,
            "net_prohibited": 9,
            "host_prohibited": 10,
            "net_unreachable_for_tos": 11,
            "host_unreachable_for_tos": 12,
            "packet_filtered": 13,
            "precedence_violation": 14,
            "precedence_cutoff": 15,
        },
    },
    6: {
        1: {
            "net_unreachable": 0,
            "no_route": 0,
            "admin_prohibited": 1,
            "not_neighbour": 2,
            "address_unreachable": 3,
            "port_unreachable": 4,
        },
        3: {"exceeded_hop_limit": 0, "exceeded_frag_time": 1},
        4: {"header_field": 0, "unknown_next_header": 1, "unknown_option": 2},
    },
}
_ICMP_NUMBERED = re.compile(r"(type|code)_([0-9]+)")


def icmp_type_number(version: int, name: str) -> int | None:
    """The ICMP type ``name`` stands for in IP ``version`` (4 or 6), or None."""
    numbered = _ICMP_NUMBERED.fullmatch(name)
    if numbered and numbered.group(1) == "type":
        number = int(numbered.group(2))
        return number if number <= 0xFF else None
    return ICMP_TYPES.get(version, {}).get(name)


def icmp_code_number(version: int, type_number: int, name: str | None) -> int | None:
    """The code ``name`` stands for under ``type_number`` (a missing code is 0), or None."""
    if name is None:
        return 0
    numbered = _ICMP_NUMBERED.fullmatch(name)
    if numbered and numbered.group(1) == "code":
        number = int(numbered.group(2))
        return number if number <= 0xFF else None
    return ICMP_CODES.get(version, {}).get(type_number, {}).get(name)


@dataclass(frozen=True)
class IcmpBody(Node):
    """``icmp TYPE [CODE] [mtu N] [id N] [[echoed]]``.

    ``type``/``code`` are the names as written (``type_N``/``code_N`` allowed; no
    code means code 0), valid in IP ``version`` (the one the script was parsed for:
    names are not translated between versions); :attr:`type_num`/:attr:`code_num`
    are what they stand for.  Without ``echoed``, packetdrill echoes a TCP header
    with sequence number 0."""

    type: str
    code: str | None = None
    mtu: int | None = None
    id: int | None = None
    echoed: EchoedTcp | EchoedUdp | EchoedRaw | None = None
    version: int = 4

    @property
    def type_num(self) -> int:
        number = icmp_type_number(self.version, self.type)
        if number is None:
            raise ValueError(f"no ICMPv{self.version} type called {self.type}")
        return number

    @property
    def code_num(self) -> int:
        number = icmp_code_number(self.version, self.type_num, self.code)
        if number is None:
            raise ValueError(f"no ICMPv{self.version} {self.type} code called {self.code}")
        return number


IGMP_RECORD_TYPES = {"is_in": 1, "is_ex": 2, "to_in": 3, "to_ex": 4, "allow": 5, "block": 6}
"""IGMPv3 group record types (RFC 3376 §4.2.12), by their short names."""


@dataclass(frozen=True)
class IgmpRecord(Node):
    """``to_ex 239.1.2.3 [198.51.100.7, ...]``: one IGMPv3 group record."""

    kind: str  # a key of IGMP_RECORD_TYPES
    group: str
    sources: tuple[str, ...] = ()

    @property
    def type_num(self) -> int:
        return IGMP_RECORD_TYPES[self.kind]


IGMP_KINDS = ("v1_query", "v2_query", "v3_query", "v1_report", "v2_report", "leave", "v3_report")


@dataclass(frozen=True)
class IgmpBody(Node):
    """``igmp KIND ...`` (extension): an IGMP message (RFC 1112, 2236, 3376).

    Queries: ``igmp v1_query``, ``igmp v2_query [GROUP] [max_resp N]``,
    ``igmp v3_query [GROUP] [max_resp N] [qrv N] [qqic N] [s] [sources [A, B]]``.
    Reports: ``igmp v1_report GROUP``, ``igmp v2_report GROUP``, ``igmp leave GROUP``,
    ``igmp v3_report [RECORD, ...]``.  ``max_resp`` is the raw Max Resp Code field
    (tenths of a second below 128).  Unwritten fields are not checked outbound.
    """

    kind: str
    group: str | None = None
    max_resp: int | None = None
    qrv: int | None = None
    qqic: int | None = None
    suppress: bool = False
    sources: tuple[str, ...] = ()
    records: tuple[IgmpRecord, ...] | None = None


@dataclass(frozen=True)
class SilenceBody(Node):
    """``> none`` (extension): no packet may leave the DUT during the event's window.

    The window runs from the previous event to the end of the line's time (for
    ``+0.3 > none``, 0.3 s after the previous event; for ``+0~+0.5 > none``, 0.5 s).
    Plain packetdrill has no way to say "nothing is sent"; without it a stray packet
    is absorbed into the next expected one.
    """


Body: TypeAlias = TcpBody | UdpBody | IcmpBody | IgmpBody | SilenceBody


@dataclass(frozen=True)
class PacketEvent(Node):
    """``< ...`` / ``> ...``: a packet to inject or to expect."""

    direction: Direction
    ip_info: IpInfo | None  # None: nothing written (not checked outbound)
    ports: Ports | None  # None: the socket under test's live ports
    body: Body
    encaps: tuple[Encap, ...] = ()  # outermost first


# --- system calls (§4) -------------------------------------------------------------


@dataclass(frozen=True)
class IntExpr(Node):
    value: int


@dataclass(frozen=True)
class SymbolExpr(Node):
    """A name resolved at run time (``SOCK_STREAM``, ``O_NONBLOCK``, ``ECONNREFUSED``)."""

    name: str


@dataclass(frozen=True)
class BitOrExpr(Node):
    """``A|B|C``, flattened, two operands or more."""

    operands: tuple[Expr, ...]


@dataclass(frozen=True)
class StringExpr(Node):
    """``"text"`` (adjacent strings concatenated, text as written); ``"text"...`` has
    ``ellipsis`` set."""

    value: str
    ellipsis: bool = False


@dataclass(frozen=True)
class EllipsisExpr(Node):
    """``...``: let the executor fill in (addresses, buffers) or ignore (results)."""


@dataclass(frozen=True)
class ArrayExpr(Node):
    """``[1]``, ``[]``, ``[{...}, {...}]``: pointer-to-value arguments and lists."""

    items: tuple[Expr, ...]


@dataclass(frozen=True)
class StructExpr(Node):
    """``{fd=4, events=POLLOUT}`` or ``{..., 1000}``: members in written order, each
    ``(name, value)`` with name None for a positional member."""

    fields: tuple[tuple[str | None, Expr], ...]

    def get(self, name: str) -> Expr | None:
        """The value of the member called ``name``, or None."""
        for key, value in self.fields:
            if key == name:
                return value
        return None


@dataclass(frozen=True)
class SizedExpr(Node):
    """The value of a ``name(size)=value`` member: ``msg_iov(1)=[...]`` (the iovec
    count) or ``msg_name(...)=...`` (the address length)."""

    size: Expr
    value: Expr


@dataclass(frozen=True)
class CallExpr(Node):
    """``htons(8080)``, ``htonl(N)``, ``inet_addr("192.0.2.1")``, ``inet6_addr("::1")``."""

    func: str
    args: tuple[Expr, ...]


Expr: TypeAlias = (
    IntExpr
    | SymbolExpr
    | BitOrExpr
    | StringExpr
    | EllipsisExpr
    | ArrayExpr
    | StructExpr
    | SizedExpr
    | CallExpr
)


@dataclass(frozen=True)
class SyscallEvent(Node):
    """``[...END] name(args) = ret [ERRNO] [(note)]``.

    ``end_time`` is the time a blocking call (``+.1...0.200 read(...)``) must return
    by, None for a call checked for its start time only.  Its kind follows the
    event's: ABSOLUTE after an absolute start, RELATIVE after a relative one, in
    which case it counts from the same anchor as the start (packetdrill shifts the
    end by the start's offset), so ``+0...0.000`` returns at once."""

    name: str
    args: tuple[Expr, ...]
    ret: Expr
    errno: str | None = None
    note: str | None = None
    end_time: TimeSpec | None = None


# --- commands and code (§5, §6) ----------------------------------------------------


@dataclass(frozen=True)
class ShellEvent(Node):
    """A backquoted shell script, run with ``/bin/sh`` (multi-line text is one script).
    Also the node of the init and cleanup commands, which have no time."""

    command: str


@dataclass(frozen=True)
class CodeEvent(Node):
    """``%{ python }%``, leading and trailing spaces and tabs stripped."""

    code: str


Action: TypeAlias = PacketEvent | SyscallEvent | ShellEvent | CodeEvent
