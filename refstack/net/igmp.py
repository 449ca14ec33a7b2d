"""IGMP, the host side (RFC 3376 IGMPv3, with RFC 2236 / RFC 1112 compatibility).

Socket memberships (IP_ADD_MEMBERSHIP, IP_ADD_SOURCE_MEMBERSHIP and their drops)
are merged per interface into one filter state per group (RFC 3376 §3.2): EXCLUDE
when any socket excludes, with the intersection of the exclude lists minus every
include list; INCLUDE otherwise, with the union of the include lists.  What the
network sees follows Linux (net/ipv4/igmp.c):

- A change of an interface's state for a group is announced at once (two jiffies
  later, as every Linux IGMP timer: changes made together share a report) with a
  State-Change Report (§5.1: TO_EX/TO_IN on a filter-mode change, ALLOW/BLOCK on a
  source-list change) and repeated so that each record goes out Robustness Variable
  times in all (2, or the querier's QRV), the repeats at random times within the
  Unsolicited Report Interval (1 s for IGMPv3, §8.11).  A leave is TO_IN({}).  A
  change while earlier ones are still being repeated is merged with them (§5.1):
  the mode-change record and each changed source keep their own count.
- A general query is answered after a random delay within its Max Resp Time with a
  Current-State Report of every group (IS_EX / IS_IN), group-specific queries
  with that group's record, group-and-source-specific ones with IS_IN of the asked
  sources the group receives (§5.2; Linux answers IS_EX(A) in EXCLUDE mode).
  224.0.0.1 is never reported (§5, RFC 2236 §6).
- An IGMPv2 query (8 bytes, Max Resp Time > 0) puts the interface in IGMPv2
  compatibility mode for the Older Version Querier Present Timeout (§7.2.1:
  Robustness x Query Interval + Query Response Interval = 260 s), an IGMPv1 query
  (Max Resp Time 0) in IGMPv1 mode: the host then answers queries with v2 (v1)
  reports to the group after a random delay (v3 queries included), stops the
  pending v3 retransmissions, suppresses its report when it hears
  another member's (RFC 2236 §3), announces joins with unsolicited reports repeated
  once after up to 10 s (RFC 2236 §3, §8.10), and leaves with a Leave Group message
  to 224.0.0.2 when it was the last to report (RFC 2236 §3; none in v1 mode).
- Every message goes out with TTL 1, TOS 0xc0, DF and the Router Alert option
  (RFC 2236 §2, RFC 3376 §4), as Linux sends them.

Multicast delivery uses :meth:`IgmpLayer.interface_accepts` (does any socket on
the interface want this group and source?) and :meth:`IgmpLayer.socket_accepts`
(does this socket? Linux's IP_MULTICAST_ALL, on by default, lets a wildcard-bound
socket with no membership of its own receive every group joined on the host).
"""

from __future__ import annotations

import errno
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

from ..nic.offload import RxOffload
from ..wire.addresses import Ipv4Addr, ipv4_str, is_multicast_ipv4
from ..wire.errors import WireError
from ..wire.igmp import (
    ALLOW_NEW_SOURCES,
    BLOCK_OLD_SOURCES,
    CHANGE_TO_EXCLUDE_MODE,
    CHANGE_TO_INCLUDE_MODE,
    MEMBERSHIP_QUERY,
    MODE_IS_EXCLUDE,
    MODE_IS_INCLUDE,
    GroupRecord,
    IgmpMessage,
    IgmpV3Query,
    IgmpV3Report,
    build_igmp,
    build_igmp_v3_report,
    decode_max_resp_code,
    parse_igmp,
)
from ..wire.ipv4 import ROUTER_ALERT, Ipv4Packet, build_ipv4
from .interface import Interface

if TYPE_CHECKING:
    from ..stack import Stack
    from ..timers import Timer

__all__ = ["ALL_HOSTS", "IgmpLayer", "Mode"]

PROTO_IGMP = 2
ALL_HOSTS = bytes((224, 0, 0, 1))
ALL_ROUTERS = bytes((224, 0, 0, 2))
IGMPV3_ROUTERS = bytes((224, 0, 0, 22))
V1_REPORT, V2_REPORT, V2_LEAVE = 0x12, 0x16, 0x17
IGMP_TOS = 0xC0  # Linux: internetwork control precedence on every IGMP message

DEFAULT_QRV = 2  # Robustness Variable (RFC 3376 §8.1; Linux net.ipv4.igmp_qrv)
QUERY_INTERVAL = 125.0  # §8.2
QUERY_RESPONSE_INTERVAL = 10.0  # §8.3
V3_UNSOLICITED_INTERVAL = 1.0  # §8.11; Linux igmpv3_unsolicited_report_interval 1000 ms
V2_UNSOLICITED_INTERVAL = 10.0  # RFC 2236 §8.10; Linux igmpv2_unsolicited_report_interval
INITIAL_REPORT_DELAY = 0.004  # Linux IGMP_INITIAL_REPORT_DELAY (1 jiffy) and igmp_ifc_event's delay
MAX_MEMBERSHIPS = 20  # Linux net.ipv4.igmp_max_memberships: per socket
MAX_SOURCE_FILTER = 10  # Linux net.ipv4.igmp_max_msf: sources per socket and group


class Mode(Enum):
    """A filter mode (RFC 3376 §3.1)."""

    INCLUDE = "include"
    EXCLUDE = "exclude"


@dataclass
class _Filter:
    """One socket's membership of one group on one interface."""

    mode: Mode
    sources: set[Ipv4Addr] = field(default_factory=set)


@dataclass
class _Group:
    """The interface's merged state for one group, and what is still to be reported."""

    group: Ipv4Addr
    members: dict[int, _Filter] = field(default_factory=dict)  # socket id -> its filter
    mode: Mode = Mode.INCLUDE
    sources: frozenset[Ipv4Addr] = frozenset()
    # State-Change retransmission state (§5.1, Linux pmc->crcount and psf->sf_crcount):
    # how many more reports carry a filter-mode-change record, and per source how many
    # more carry it in an ALLOW/BLOCK record (whichever the current state makes it).
    mode_retrans: int = 0
    source_retrans: dict[Ipv4Addr, int] = field(default_factory=dict)
    v2_timer: Timer | None = None  # v1/v2 mode: the report due for this group
    v3_timer: Timer | None = None  # v3: the answer to a group-specific query
    unsolicited: int = 0  # v1/v2 mode: unsolicited reports still to send
    reporter: bool = False  # v2: we sent the last report (so we send the leave)
    query_sources: set[Ipv4Addr] | None = None  # v3: the sources a pending query asked about

    @property
    def reporting(self) -> bool:
        """State-Change Reports are still due for this group."""
        return self.mode_retrans > 0 or bool(self.source_retrans)


class _Interface:
    """IGMP state of one interface: its groups and the querier's version."""

    def __init__(self, iface: Interface) -> None:
        self.iface = iface
        self.groups: dict[Ipv4Addr, _Group] = {}
        self.v1_seen_until = float("-inf")
        self.v2_seen_until = float("-inf")
        self.qrv = DEFAULT_QRV
        self.change_timer: Timer | None = None
        self.general_timer: Timer | None = None

    def version(self, now: float) -> int:
        if now < self.v1_seen_until:
            return 1
        if now < self.v2_seen_until:
            return 2
        return 3


class IgmpLayer:
    """Memberships, reports and query responses for every interface of a stack."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self._ifaces: dict[int, _Interface] = {}
        self._by_socket: dict[int, set[tuple[int, Ipv4Addr]]] = {}

    # --- the socket calls ----------------------------------------------------------
    def join(
        self, owner: int, iface: Interface, group: Ipv4Addr, source: Ipv4Addr | None, now: float
    ) -> None:
        """IP_ADD_MEMBERSHIP (``source`` None: any-source, EXCLUDE {}) or
        IP_ADD_SOURCE_MEMBERSHIP (INCLUDE, ``source`` added), with Linux's errnos."""
        if not is_multicast_ipv4(group):
            raise OSError(errno.EINVAL, "Invalid argument")
        state = self._iface(iface)
        key = (iface.index, group)
        mine = self._by_socket.setdefault(owner, set())
        entry = state.groups.get(group)
        current = entry.members.get(owner) if entry is not None else None
        if current is None and len(mine) >= MAX_MEMBERSHIPS:
            raise OSError(errno.ENOBUFS, "No buffer space available")
        if source is None:
            if current is not None:
                raise OSError(errno.EADDRINUSE, "Address already in use")
            new = _Filter(Mode.EXCLUDE)
        else:
            if current is not None and current.mode is Mode.EXCLUDE:
                raise OSError(errno.EINVAL, "Invalid argument")  # an any-source member
            if current is not None and source in current.sources:
                raise OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address")
            if current is not None and len(current.sources) >= MAX_SOURCE_FILTER:
                raise OSError(errno.ENOBUFS, "No buffer space available")
            new = _Filter(Mode.INCLUDE, {*(current.sources if current else ()), source})
        if entry is None:
            entry = state.groups[group] = _Group(group)
        entry.members[owner] = new
        mine.add(key)
        self._changed(state, entry, now)

    def leave(
        self, owner: int, iface: Interface, group: Ipv4Addr, source: Ipv4Addr | None, now: float
    ) -> None:
        """IP_DROP_MEMBERSHIP / IP_DROP_SOURCE_MEMBERSHIP; EADDRNOTAVAIL when not joined."""
        if not is_multicast_ipv4(group):
            raise OSError(errno.EINVAL, "Invalid argument")
        state = self._ifaces.get(iface.index)
        entry = state.groups.get(group) if state is not None else None
        current = entry.members.get(owner) if entry is not None else None
        if state is None or entry is None or current is None:
            raise OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address")
        if source is None:
            del entry.members[owner]
        else:
            if current.mode is not Mode.INCLUDE or source not in current.sources:
                raise OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address")
            current.sources.discard(source)
            if not current.sources:
                del entry.members[owner]
        if owner not in entry.members:
            self._by_socket.get(owner, set()).discard((iface.index, group))
        self._changed(state, entry, now)

    def drop_socket(self, owner: int, now: float) -> None:
        """A socket closed: it leaves every group it joined (Linux ip_mc_drop_socket)."""
        for index, group in sorted(self._by_socket.pop(owner, set())):
            state = self._ifaces[index]
            entry = state.groups.get(group)
            if entry is not None and entry.members.pop(owner, None) is not None:
                self._changed(state, entry, now)

    def memberships(self, owner: int) -> list[tuple[str, str]]:
        """(interface name, group) of every membership a socket holds (stackdump)."""
        return sorted((self._ifaces[i].iface.name, ipv4_str(g)) for i, g in self._by_socket.get(owner, set()))

    # --- delivery ------------------------------------------------------------------
    def interface_accepts(self, group: Ipv4Addr, iface: Interface, source: Ipv4Addr | None = None) -> bool:
        """RFC 1112 §7.2 / RFC 3376 §3.2: all-hosts always; a group once some socket
        joined it on ``iface``, and from ``source`` only if the merged filter allows."""
        if group == ALL_HOSTS:
            return True
        state = self._ifaces.get(iface.index)
        entry = state.groups.get(group) if state is not None else None
        if entry is None or not entry.members:
            return False
        if source is None:
            return True
        return (source in entry.sources) == (entry.mode is Mode.INCLUDE)

    def socket_accepts(
        self, owner: int, group: Ipv4Addr, source: Ipv4Addr, iface: Interface, multicast_all: bool
    ) -> bool:
        """Linux ip_mc_sf_allow: a socket with its own membership applies its own
        source filter; one without receives the group only with IP_MULTICAST_ALL."""
        if group == ALL_HOSTS:
            return True
        state = self._ifaces.get(iface.index)
        entry = state.groups.get(group) if state is not None else None
        mine = entry.members.get(owner) if entry is not None else None
        if mine is None:
            return multicast_all
        return (source in mine.sources) == (mine.mode is Mode.INCLUDE)

    # --- input ---------------------------------------------------------------------
    def input(
        self,
        ip: Ipv4Packet,
        iface: Interface,
        now: float,
        *,
        link_broadcast: bool,
        offload: RxOffload | None = None,
    ) -> None:
        """A received IGMP message (RFC 3376 §7, RFC 2236 §3); its checksum is always
        verified (devices offload only TCP and UDP checksums)."""
        counters = self.stack.counters
        try:
            msg = parse_igmp(ip.payload)
        except WireError:
            counters["igmp_rx_malformed"] += 1
            return
        if not msg.checksum_ok():
            counters["igmp_rx_bad_checksum"] += 1
            return
        counters["igmp_rx"] += 1
        state = self._iface(iface)
        if isinstance(msg, IgmpV3Query):
            self._v3_query(state, msg, now)
        elif isinstance(msg, IgmpV3Report):
            counters["igmp_rx_v3_report"] += 1  # hosts ignore v3 reports (§5, no suppression)
        elif msg.type == MEMBERSHIP_QUERY:
            self._v12_query(state, msg, now)
        elif msg.type in (V1_REPORT, V2_REPORT):
            self._other_report(state, msg)
        else:
            counters["igmp_rx_ignored"] += 1

    def icmp_error(self, msg: object, quoted: Ipv4Packet, now: float) -> None:
        """Nothing reports ICMP errors about IGMP."""

    def _v3_query(self, state: _Interface, query: IgmpV3Query, now: float) -> None:
        self.stack.counters["igmp_rx_v3_query"] += 1
        version = state.version(now)
        if version != 3:
            # §7.2.1: with an older querier present only the older protocol is used;
            # a v3 query is taken as a query of that version (RFC 2236 §2.5: longer
            # queries are still queries; Linux igmp_heard_query: v1 mode waits up to
            # 10 s and answers for every group, v2 mode uses the coded Max Resp Time).
            if version == 1:
                self._v12_answer(state, bytes(4), QUERY_RESPONSE_INTERVAL, now)
            else:
                max_delay = max(decode_max_resp_code(query.max_resp_code), 1) / 10.0
                self._v12_answer(state, query.group, max_delay, now)
            return
        state.qrv = query.qrv or DEFAULT_QRV
        delay = self._random_delay(max(decode_max_resp_code(query.max_resp_code), 1) / 10.0)
        if query.group == bytes(4):
            timer = state.general_timer
            if timer is None:
                timer = state.general_timer = self.stack.timers.timer(
                    f"igmp-general-{state.iface.name}", lambda t: self._send_current_state(state, None, t)
                )
            timer.arm_if_earlier(now + delay)
            return
        entry = state.groups.get(query.group)
        if entry is None or not entry.members:
            return
        if entry.v3_timer is None:
            entry.v3_timer = self.stack.timers.timer(
                f"igmp-group-{ipv4_str(query.group)}",
                lambda t: self._send_current_state(state, entry, t),
            )
        # §5.2 rules 4 and 5: a Group-and-Source-Specific Query records its sources
        # (added to those of a pending one); a Group-Specific Query, or one while a
        # group-specific answer is pending, makes the answer the group's whole state.
        pending = entry.v3_timer.armed
        if query.sources and (not pending or entry.query_sources is not None):
            entry.query_sources = (entry.query_sources if pending and entry.query_sources else set()) | set(
                query.sources
            )
        else:
            entry.query_sources = None
        entry.v3_timer.arm_if_earlier(now + delay)

    def _v12_query(self, state: _Interface, query: IgmpMessage, now: float) -> None:
        counters = self.stack.counters
        timeout = state.qrv * QUERY_INTERVAL + QUERY_RESPONSE_INTERVAL  # §8.12
        if query.max_resp_time == 0:
            counters["igmp_rx_v1_query"] += 1
            state.v1_seen_until = now + timeout
            max_delay = QUERY_RESPONSE_INTERVAL
        else:
            counters["igmp_rx_v2_query"] += 1
            state.v2_seen_until = now + timeout
            max_delay = query.max_resp_time / 10.0
        # §7.2.1: from now on only the older version's messages.  Linux
        # igmp_heard_query stops the interface change timer (mr_ifc_count = 0) and
        # drops the deleted-group records: pending v3 retransmissions are not sent.
        if state.change_timer is not None:
            state.change_timer.cancel()
        for entry in list(state.groups.values()):
            entry.mode_retrans, entry.source_retrans = 0, {}
            self._forget_if_empty(state, entry)
        self._v12_answer(state, query.group, max_delay, now)

    def _v12_answer(self, state: _Interface, group: Ipv4Addr, max_delay: float, now: float) -> None:
        """Schedule v1/v2 reports for ``group`` (or every group) within ``max_delay``;
        a query ends the unsolicited repeats (Linux igmp_mod_timer)."""
        for entry in state.groups.values():
            if entry.group == ALL_HOSTS or not entry.members:
                continue
            if group not in (bytes(4), entry.group):
                continue
            entry.unsolicited = 0
            self._arm_v12_report(state, entry, now + self._random_delay(max_delay))

    def _other_report(self, state: _Interface, report: IgmpMessage) -> None:
        """RFC 2236 §3: another member reported the group: cancel ours, and it is
        now the one to send the leave.  Only in v1/v2 mode (v3 never suppresses)."""
        entry = state.groups.get(report.group)
        if entry is None or entry.v2_timer is None or not entry.v2_timer.armed:
            return
        if state.version(self.stack.now) < 3:
            entry.v2_timer.cancel()
            entry.unsolicited = 0
            entry.reporter = False
            self.stack.counters["igmp_report_suppressed"] += 1

    # --- state changes ---------------------------------------------------------------
    def _changed(self, state: _Interface, entry: _Group, now: float) -> None:
        """Recompute the group's merged filter (§3.2) and announce any change (§5.1)."""
        old_mode, old_sources = entry.mode, entry.sources
        new_mode, new_sources = self._merge(entry.members.values())
        entry.mode, entry.sources = new_mode, new_sources
        joined = bool(entry.members)
        was_member = old_mode is Mode.EXCLUDE or bool(old_sources)
        if (new_mode, new_sources) == (old_mode, old_sources):
            return
        if entry.group == ALL_HOSTS:
            self._forget_if_empty(state, entry)
            return
        version = state.version(now)
        if version < 3:
            if joined and not was_member:
                entry.unsolicited = state.qrv
                entry.reporter = True
                self._arm_v12_report(state, entry, now + self._random_delay(INITIAL_REPORT_DELAY))
            elif not joined:
                if entry.v2_timer is not None:
                    entry.v2_timer.cancel()
                if version == 2 and entry.reporter:
                    self._send_v12(state.iface, V2_LEAVE, entry.group, ALL_ROUTERS, now)
                self._forget_if_empty(state, entry)
            return
        # §5.1: a change while earlier reports are still being retransmitted is merged
        # with them: a filter-mode change restarts the mode-change records (and, as
        # Linux ip_mc_add_src, drops the per-source state, which TO_EX/TO_IN's full
        # source list supersedes); a source-list change gives each changed source
        # [Robustness Variable] more reports, so no earlier change is lost.
        for kind, sources in self._change_records(old_mode, old_sources, new_mode, new_sources):
            if kind in (CHANGE_TO_EXCLUDE_MODE, CHANGE_TO_INCLUDE_MODE):
                entry.mode_retrans = state.qrv
                entry.source_retrans = {}
            else:
                entry.source_retrans.update(dict.fromkeys(sources, state.qrv))
        timer = state.change_timer
        if timer is None:
            timer = state.change_timer = self.stack.timers.timer(
                f"igmp-change-{state.iface.name}", lambda t: self._send_changes(state, t)
            )
        timer.arm_if_earlier(now + self._random_delay(INITIAL_REPORT_DELAY))

    @staticmethod
    def _merge(filters: Iterable[_Filter]) -> tuple[Mode, frozenset[Ipv4Addr]]:
        excludes = [f.sources for f in filters if f.mode is Mode.EXCLUDE]
        includes: set[Ipv4Addr] = set()
        for f in filters:
            if f.mode is Mode.INCLUDE:
                includes |= f.sources
        if excludes:
            common = set.intersection(*excludes) if excludes else set()
            return Mode.EXCLUDE, frozenset(common - includes)
        return Mode.INCLUDE, frozenset(includes)

    @staticmethod
    def _change_records(
        old_mode: Mode, old: frozenset[Ipv4Addr], new_mode: Mode, new: frozenset[Ipv4Addr]
    ) -> list[tuple[int, frozenset[Ipv4Addr]]]:
        """RFC 3376 §5.1's table of State-Change Records."""
        if old_mode is not new_mode:
            kind = CHANGE_TO_EXCLUDE_MODE if new_mode is Mode.EXCLUDE else CHANGE_TO_INCLUDE_MODE
            return [(kind, new)]
        allow, block = (new - old, old - new) if new_mode is Mode.INCLUDE else (old - new, new - old)
        records = []
        if allow:
            records.append((ALLOW_NEW_SOURCES, allow))
        if block:
            records.append((BLOCK_OLD_SOURCES, block))
        return records

    def _send_changes(self, state: _Interface, now: float) -> None:
        """The interface's change timer: one report with every pending record (§5.1)."""
        records: list[GroupRecord] = []
        for entry in list(state.groups.values()):
            if not entry.reporting:
                continue
            records += self._next_change_records(entry)
            self._forget_if_empty(state, entry)
        if records:
            self._send_v3(state.iface, records, now)
        if any(e.reporting for e in state.groups.values()) and state.change_timer is not None:
            state.change_timer.arm(now + self._random_delay(V3_UNSOLICITED_INTERVAL))

    @staticmethod
    def _next_change_records(entry: _Group) -> list[GroupRecord]:
        """The group's records in the next State-Change Report (§5.1; Linux
        igmpv3_send_cr): TO_EX/TO_IN with the current sources while the mode change is
        retransmitted (the sources' own retransmissions count down unsent meanwhile,
        as Linux's add_grec does), else ALLOW/BLOCK of every source with
        retransmission state, by what the current state makes of it."""
        sources = sorted(entry.source_retrans)
        for source in sources:
            entry.source_retrans[source] -= 1
            if entry.source_retrans[source] <= 0:
                del entry.source_retrans[source]
        if entry.mode_retrans > 0:
            entry.mode_retrans -= 1
            kind = CHANGE_TO_EXCLUDE_MODE if entry.mode is Mode.EXCLUDE else CHANGE_TO_INCLUDE_MODE
            return [GroupRecord(kind, entry.group, tuple(sorted(entry.sources)))]
        include = entry.mode is Mode.INCLUDE
        allowed = tuple(s for s in sources if (s in entry.sources) == include)
        blocked = tuple(s for s in sources if (s in entry.sources) != include)
        records = [GroupRecord(ALLOW_NEW_SOURCES, entry.group, allowed)] if allowed else []
        return records + ([GroupRecord(BLOCK_OLD_SOURCES, entry.group, blocked)] if blocked else [])

    def _send_current_state(self, state: _Interface, only: _Group | None, now: float) -> None:
        """Answer a query (§5.2): IS_EX/IS_IN records of one group or of all."""
        entries = [only] if only is not None else list(state.groups.values())
        records = []
        for entry in entries:
            if entry.group == ALL_HOSTS or not entry.members:
                continue
            if entry.mode is Mode.INCLUDE and not entry.sources:
                continue
            asked = entry.query_sources if only is not None else None
            if asked is not None:
                entry.query_sources = None
                # §5.2 rule 3: INCLUDE (A) -> IS_IN(A*B), EXCLUDE (A) -> IS_IN(B-A),
                # nothing if empty.  (Linux answers IS_EX(A) in EXCLUDE mode.)
                include = entry.mode is Mode.INCLUDE
                wanted = tuple(sorted(s for s in asked if (s in entry.sources) == include))
                if wanted:
                    records.append(GroupRecord(MODE_IS_INCLUDE, entry.group, wanted))
                continue
            kind = MODE_IS_EXCLUDE if entry.mode is Mode.EXCLUDE else MODE_IS_INCLUDE
            records.append(GroupRecord(kind, entry.group, tuple(sorted(entry.sources))))
        if records and state.version(now) == 3:
            self._send_v3(state.iface, records, now)

    def _arm_v12_report(self, state: _Interface, entry: _Group, deadline: float) -> None:
        if entry.v2_timer is None:
            entry.v2_timer = self.stack.timers.timer(
                f"igmp-v2-{ipv4_str(entry.group)}", lambda t: self._v12_report_due(state, entry, t)
            )
        entry.v2_timer.arm_if_earlier(deadline)

    def _v12_report_due(self, state: _Interface, entry: _Group, now: float) -> None:
        if not entry.members:
            return
        kind = V1_REPORT if state.version(now) == 1 else V2_REPORT
        self._send_v12(state.iface, kind, entry.group, entry.group, now)
        entry.reporter = True
        if entry.unsolicited > 1 and entry.v2_timer is not None:
            entry.unsolicited -= 1
            entry.v2_timer.arm(now + self._random_delay(V2_UNSOLICITED_INTERVAL))
        else:
            entry.unsolicited = 0

    # --- output --------------------------------------------------------------------
    def _send_v3(self, iface: Interface, records: list[GroupRecord], now: float) -> None:
        self._send(iface, IGMPV3_ROUTERS, build_igmp_v3_report(records), now)
        self.stack.counters["igmp_tx_v3_report"] += 1

    def _send_v12(self, iface: Interface, kind: int, group: Ipv4Addr, dst: Ipv4Addr, now: float) -> None:
        self._send(iface, dst, build_igmp(kind, group), now)
        self.stack.counters["igmp_tx_v2_leave" if kind == V2_LEAVE else "igmp_tx_v12_report"] += 1

    def _send(self, iface: Interface, dst: Ipv4Addr, message: bytes, now: float) -> None:
        """IGMP goes out on the interface itself, routes or not (RFC 3376 §4)."""
        ident = self.stack.ip.ids.next(iface.address, dst, PROTO_IGMP)
        datagram = build_ipv4(
            iface.address,
            dst,
            PROTO_IGMP,
            message,
            ttl=1,
            tos=IGMP_TOS,
            ident=ident,
            dont_fragment=True,
            options=(ROUTER_ALERT,),
        )
        self.stack.transmit(iface, dst, dst, datagram, now)
        self.stack.counters["ip_tx"] += 1

    # --- helpers ---------------------------------------------------------------------
    def _iface(self, iface: Interface) -> _Interface:
        state = self._ifaces.get(iface.index)
        if state is None:
            state = self._ifaces[iface.index] = _Interface(iface)
        return state

    def _random_delay(self, upper: float) -> float:
        """A uniformly random delay in [0, upper) on Linux's 4 ms jiffy grid, plus the
        two jiffies every IGMP timer of Linux adds (``mod_timer(jiffies + tv + 2)`` in
        igmp_start_timer, igmp_gq_start_timer and igmp_ifc_start_timer): a report is
        never sent in the same instant as the event that causes it, so changes made
        together (two joins in a row) go out in one report."""
        ticks = max(int(upper / 0.004), 1)
        return (self.stack.rng.randrange(ticks) + 2) * 0.004

    @staticmethod
    def _forget_if_empty(state: _Interface, entry: _Group) -> None:
        if not entry.members and not entry.reporting:
            for timer in (entry.v2_timer, entry.v3_timer):
                if timer is not None:
                    timer.cancel()
            state.groups.pop(entry.group, None)
