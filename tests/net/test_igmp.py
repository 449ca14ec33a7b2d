"""The IGMP host (refstack/net/igmp.py), driven sans-I/O through a Stack.

RFC 3376 (IGMPv3: the merged filter state of §3.2, the State-Change Reports of §5.1,
query responses of §5.2, older-version compatibility of §7), RFC 2236 (IGMPv2 reports,
suppression, Leave) and RFC 1112 (IGMPv1), with the choices Linux's net/ipv4/igmp.c
makes where the RFCs leave them (timer granularity, report contents and timing);
plus the socket side: memberships and their errnos, delivery filtering at the
interface and at the socket (IP_MULTICAST_ALL) and multicast loopback.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refstack import socket as rsock
from refstack.net.igmp import IgmpLayer, Mode, _Filter
from refstack.runtime import Runtime
from refstack.udp import UdpEndpoint
from refstack.wire.addresses import Ipv4Addr, ipv4_addr
from refstack.wire.igmp import (
    ALLOW_NEW_SOURCES,
    BLOCK_OLD_SOURCES,
    CHANGE_TO_EXCLUDE_MODE,
    CHANGE_TO_INCLUDE_MODE,
    MEMBERSHIP_QUERY,
    MODE_IS_EXCLUDE,
    MODE_IS_INCLUDE,
    V1_REPORT,
    V2_LEAVE,
    V2_REPORT,
    GroupRecord,
    IgmpMessage,
    IgmpV3Report,
    build_igmp,
    build_igmp_v3_query,
    build_igmp_v3_report,
    parse_igmp,
)
from refstack.wire.ipv4 import OPT_ROUTER_ALERT, ROUTER_ALERT, Ipv4Packet, build_ipv4
from tests.net.peer import ANY, LOCAL, NEIGHBOUR, REMOTE, REMOTE2, Wire, udp_ip

GROUP = ipv4_addr("239.1.2.3")
GROUP2 = ipv4_addr("239.4.5.6")
SSM = ipv4_addr("232.1.1.1")
ALL_HOSTS = ipv4_addr("224.0.0.1")
ALL_ROUTERS = ipv4_addr("224.0.0.2")
V3_ROUTERS = ipv4_addr("224.0.0.22")
JIFFY = 0.004
FIRST = 2 * JIFFY  # Linux's IGMP timers fire at jiffies + random + 2
PROTO_IGMP = 2

Record = tuple[int, Ipv4Addr, frozenset[Ipv4Addr]]


# --- helpers --------------------------------------------------------------------------
@dataclass
class Sent:
    time: float
    ip: Ipv4Packet
    msg: IgmpMessage | IgmpV3Report

    @property
    def records(self) -> set[Record]:
        assert isinstance(self.msg, IgmpV3Report), self.msg
        return {(r.record_type, r.group, frozenset(r.sources)) for r in self.msg.records}


def igmp_sent(wire: Wire, until: float | None = None) -> list[Sent]:
    """Every IGMP message the stack sent so far (up to ``until``); other packets fail."""
    if until is not None:
        wire.at(until)
    out = []
    while wire.out:
        when, frame = wire.out.popleft()
        ip = Ipv4Packet(frame)
        assert ip.protocol == PROTO_IGMP, ip
        msg = parse_igmp(ip.payload)
        assert msg.checksum_ok(), msg
        out.append(Sent(when, ip, msg))  # type: ignore[arg-type]
    return out


def rec(kind: int, group: Ipv4Addr, *sources: Ipv4Addr) -> Record:
    return (kind, group, frozenset(sources))


def inject_igmp(wire: Wire, message: bytes, dst: Ipv4Addr = ALL_HOSTS, src: Ipv4Addr = NEIGHBOUR) -> None:
    wire.inject(build_ipv4(src, dst, PROTO_IGMP, message, ttl=1, tos=0xC0, options=(ROUTER_ALERT,)))


def v3_query(wire: Wire, group: Ipv4Addr = ANY, max_resp: int = 10, qrv: int = 2) -> None:
    inject_igmp(
        wire,
        build_igmp_v3_query(group, max_resp_code=max_resp, qrv=qrv),
        ALL_HOSTS if group == ANY else group,
    )


def v12_query(wire: Wire, group: Ipv4Addr = ANY, max_resp: int = 10) -> None:
    """An IGMPv2 query (``max_resp`` > 0, tenths of a second) or an IGMPv1 one (0)."""
    inject_igmp(
        wire,
        build_igmp(MEMBERSHIP_QUERY, group, max_resp_time=max_resp),
        ALL_HOSTS if group == ANY else group,
    )


def settle(wire: Wire, seconds: float = 3.0) -> list[Sent]:
    """Let every pending report go out; what was sent."""
    return igmp_sent(wire, wire.now + seconds)


def member(wire: Wire, port: int = 7, group: Ipv4Addr = GROUP, source: Ipv4Addr | None = None) -> UdpEndpoint:
    ep = wire.udp(ANY, port, reuseaddr=True)
    ep.join(group, LOCAL, 0, source, wire.now)
    return ep


# --- State-Change Reports (§5.1) ----------------------------------------------------------
def test_join_reports_to_ex_twice_within_the_unsolicited_interval() -> None:
    """§5.1/§8.11: TO_EX({}) two jiffies after the join (Linux igmp_ifc_start_timer),
    once more within 1 s (Robustness Variable 2), then nothing."""
    wire = Wire()
    member(wire)
    sent = igmp_sent(wire, 10.0)
    assert [s.records for s in sent] == [{rec(CHANGE_TO_EXCLUDE_MODE, GROUP)}] * 2
    assert sent[0].time == pytest.approx(FIRST)
    assert 0 < sent[1].time - sent[0].time <= 1.0 + FIRST


def test_report_header_as_linux_sends_it() -> None:
    """RFC 3376 §4: to 224.0.0.22 with TTL 1 and Router Alert; Linux's TOS 0xc0 and DF,
    from the interface address."""
    wire = Wire()
    member(wire)
    ip = igmp_sent(wire, 0.1)[0].ip
    assert (ip.src, ip.dst, ip.ttl, ip.tos, ip.dont_fragment) == (LOCAL, V3_ROUTERS, 1, 0xC0, True)
    assert [o.kind for o in ip.options] == [OPT_ROUTER_ALERT]


def test_joins_in_the_same_instant_share_one_report() -> None:
    wire = Wire()
    ep = member(wire)
    ep.join(GROUP2, LOCAL, 0, None, wire.now)
    sent = igmp_sent(wire, 0.1)
    assert len(sent) == 1
    assert sent[0].records == {rec(CHANGE_TO_EXCLUDE_MODE, GROUP), rec(CHANGE_TO_EXCLUDE_MODE, GROUP2)}


def test_leave_reports_to_in_twice() -> None:
    wire = Wire()
    ep = member(wire)
    settle(wire)
    ep.leave(GROUP, LOCAL, 0, None, wire.now)
    sent = settle(wire)
    assert [s.records for s in sent] == [{rec(CHANGE_TO_INCLUDE_MODE, GROUP)}] * 2
    assert not wire.stack.accepts_multicast(GROUP, wire.stack.primary)


def test_source_join_allow_and_drop_block() -> None:
    """§5.1 table: INCLUDE {} -> INCLUDE {S} is ALLOW({S}) (no mode change record, as
    Linux since 5.x), and back is BLOCK({S})."""
    wire = Wire()
    ep = member(wire, group=SSM, source=REMOTE)
    assert [s.records for s in settle(wire)] == [{rec(ALLOW_NEW_SOURCES, SSM, REMOTE)}] * 2
    ep.leave(SSM, LOCAL, 0, REMOTE, wire.now)
    assert [s.records for s in settle(wire)] == [{rec(BLOCK_OLD_SOURCES, SSM, REMOTE)}] * 2


def test_change_during_retransmission_is_merged() -> None:
    """§5.1: a source added while ALLOW({S1}) is being retransmitted: the next report
    carries S1's last copy and S2's first; then S2's last."""
    wire = Wire()
    ep = member(wire, group=SSM, source=REMOTE)
    first = igmp_sent(wire, 0.1)
    assert [s.records for s in first] == [{rec(ALLOW_NEW_SOURCES, SSM, REMOTE)}]
    ep.join(SSM, LOCAL, 0, REMOTE2, wire.now)
    assert [s.records for s in settle(wire)] == [
        {rec(ALLOW_NEW_SOURCES, SSM, REMOTE, REMOTE2)},
        {rec(ALLOW_NEW_SOURCES, SSM, REMOTE2)},
    ]


def test_mode_change_report_carries_the_current_sources() -> None:
    """§5.1: an any-source join on top of an INCLUDE {S} membership of another socket
    makes the interface EXCLUDE {} (the include list is subtracted): TO_EX({})."""
    wire = Wire()
    member(wire, 7, SSM, REMOTE)
    settle(wire)
    member(wire, 8, SSM)
    assert [s.records for s in settle(wire)] == [{rec(CHANGE_TO_EXCLUDE_MODE, SSM)}] * 2


def test_second_member_changes_nothing_and_last_leave_reports() -> None:
    """RFC 1112 §7.2 (membership counting), §3.2: a second socket on the group changes
    no interface state, so nothing is sent; the leave of the last one is reported."""
    wire = Wire()
    a = member(wire, 7)
    settle(wire)
    b = member(wire, 8)
    a.leave(GROUP, LOCAL, 0, None, wire.now)
    assert settle(wire) == []
    b.leave(GROUP, LOCAL, 0, None, wire.now)
    assert [s.records for s in settle(wire)] == [{rec(CHANGE_TO_INCLUDE_MODE, GROUP)}] * 2


def test_close_drops_the_memberships() -> None:
    wire = Wire()
    ep = member(wire)
    ep.join(GROUP2, LOCAL, 0, None, wire.now)
    settle(wire)
    ep.close()
    sent = settle(wire)
    assert [s.records for s in sent] == [
        {rec(CHANGE_TO_INCLUDE_MODE, GROUP), rec(CHANGE_TO_INCLUDE_MODE, GROUP2)}
    ] * 2
    assert wire.stack.igmp.memberships(ep.owner) == []


def test_all_hosts_is_never_reported() -> None:
    """RFC 3376 §5 / RFC 2236 §6: 224.0.0.1 is never reported, joined or queried."""
    wire = Wire()
    member(wire, group=ALL_HOSTS)
    v3_query(wire)
    v3_query(wire, ALL_HOSTS)
    assert settle(wire, 12.0) == []


@pytest.mark.parametrize(
    ("old", "new", "want"),
    [
        # RFC 3376 §5.1's table (A = old sources, B = new).
        ((Mode.INCLUDE, {1, 2}), (Mode.INCLUDE, {2, 3}), {ALLOW_NEW_SOURCES: {3}, BLOCK_OLD_SOURCES: {1}}),
        ((Mode.EXCLUDE, {1, 2}), (Mode.EXCLUDE, {2, 3}), {ALLOW_NEW_SOURCES: {1}, BLOCK_OLD_SOURCES: {3}}),
        ((Mode.INCLUDE, {1}), (Mode.EXCLUDE, {2}), {CHANGE_TO_EXCLUDE_MODE: {2}}),
        ((Mode.EXCLUDE, {1}), (Mode.INCLUDE, {2}), {CHANGE_TO_INCLUDE_MODE: {2}}),
        ((Mode.INCLUDE, {1}), (Mode.INCLUDE, {1, 2}), {ALLOW_NEW_SOURCES: {2}}),
        ((Mode.EXCLUDE, set()), (Mode.EXCLUDE, {4}), {BLOCK_OLD_SOURCES: {4}}),
    ],
)
def test_state_change_record_table(
    old: tuple[Mode, set[int]], new: tuple[Mode, set[int]], want: dict[int, set[int]]
) -> None:
    def addrs(ids: set[int]) -> frozenset[Ipv4Addr]:
        return frozenset(bytes((10, 0, 0, i)) for i in ids)

    got = IgmpLayer._change_records(old[0], addrs(old[1]), new[0], addrs(new[1]))
    assert dict(got) == {k: addrs(s) for k, s in want.items()}
    assert len(got) == len(want)


@pytest.mark.parametrize(
    ("filters", "want"),
    [
        # RFC 3376 §3.2: EXCLUDE if any is, with the intersection of the exclude lists
        # minus every include list; else INCLUDE with the union.
        ([(Mode.INCLUDE, {1}), (Mode.INCLUDE, {2})], (Mode.INCLUDE, {1, 2})),
        ([(Mode.EXCLUDE, {1, 2}), (Mode.EXCLUDE, {2, 3})], (Mode.EXCLUDE, {2})),
        ([(Mode.EXCLUDE, {1, 2}), (Mode.INCLUDE, {2})], (Mode.EXCLUDE, {1})),
        ([(Mode.EXCLUDE, set()), (Mode.INCLUDE, {5})], (Mode.EXCLUDE, set())),
        ([], (Mode.INCLUDE, set())),
    ],
)
def test_merged_interface_state(filters: list[tuple[Mode, set[int]]], want: tuple[Mode, set[int]]) -> None:
    def addrs(ids: set[int]) -> frozenset[Ipv4Addr]:
        return frozenset(bytes((10, 0, 0, i)) for i in ids)

    merged = IgmpLayer._merge([_Filter(m, set(addrs(s))) for m, s in filters])
    assert merged == (want[0], addrs(want[1]))


# --- random membership changes keep the state consistent -------------------------------------
SOURCES = [REMOTE, REMOTE2, NEIGHBOUR]
Op = tuple[str, int, int]  # (what, socket, source index)


def _recompute(model: dict[int, tuple[Mode, set[Ipv4Addr]]]) -> tuple[Mode, frozenset[Ipv4Addr]]:
    excludes = [s for m, s in model.values() if m is Mode.EXCLUDE]
    includes = set().union(*(s for m, s in model.values() if m is Mode.INCLUDE))
    if excludes:
        return Mode.EXCLUDE, frozenset(set.intersection(*excludes) - includes)
    return Mode.INCLUDE, frozenset(includes)


def _apply_record(view: tuple[Mode, set[Ipv4Addr]], r: GroupRecord) -> tuple[Mode, set[Ipv4Addr]]:
    """A router's idea of the host's state for the group, moved by one record."""
    mode, srcs = view
    sources = set(r.sources)
    if r.record_type == CHANGE_TO_EXCLUDE_MODE:
        return Mode.EXCLUDE, sources
    if r.record_type == CHANGE_TO_INCLUDE_MODE:
        return Mode.INCLUDE, sources
    if r.record_type == ALLOW_NEW_SOURCES:
        return (mode, srcs | sources) if mode is Mode.INCLUDE else (mode, srcs - sources)
    if r.record_type == BLOCK_OLD_SOURCES:
        return (mode, srcs - sources) if mode is Mode.INCLUDE else (mode, srcs | sources)
    raise AssertionError(r)


ops = st.lists(
    st.tuples(
        st.sampled_from(["join", "leave", "add_src", "drop_src", "wait"]),
        st.integers(0, 2),
        st.integers(0, 2),
    ),
    max_size=25,
)


def _membership_call(ep: UdpEndpoint, what: str, src: Ipv4Addr, now: float) -> None:
    if what in ("join", "add_src"):
        ep.join(SSM, LOCAL, 0, src if what == "add_src" else None, now)
    else:
        ep.leave(SSM, LOCAL, 0, src if what == "drop_src" else None, now)


@settings(max_examples=150)
@given(ops)
def test_random_membership_changes(sequence: list[Op]) -> None:
    """Random joins, leaves and source changes by three sockets, some at the same
    instant, some spread out: after each, the merged state equals a recomputation
    from the sockets' filters (§3.2); the calls fail exactly when Linux's would; and
    a router applying every State-Change Report the host sent ends with the host's
    state once the retransmissions are over (§5.1: no change is lost when merged)."""
    wire = Wire()
    socks = [wire.udp(ANY, 7, reuseaddr=True) for _ in range(3)]
    model: dict[int, tuple[Mode, set[Ipv4Addr]]] = {}
    view: tuple[Mode, set[Ipv4Addr]] = (Mode.INCLUDE, set())
    for what, i, j in sequence:
        ep, src = socks[i], SOURCES[j]
        mine = model.get(i)
        expect: int | None = None
        if what == "join":
            expect = errno.EADDRINUSE if mine else None  # Linux __ip_mc_join_group: any membership
        elif what == "leave":
            expect = None if mine else errno.EADDRNOTAVAIL
        elif what == "add_src":
            expect = (
                errno.EINVAL
                if mine and mine[0] is Mode.EXCLUDE
                else (errno.EADDRNOTAVAIL if mine and src in mine[1] else None)
            )
        elif what == "drop_src":
            expect = None if mine and mine[0] is Mode.INCLUDE and src in mine[1] else errno.EADDRNOTAVAIL
        else:
            wire.at(wire.now + 0.3)
        if what != "wait":
            try:
                _membership_call(ep, what, src, wire.now)
            except OSError as e:
                assert e.errno == expect, (what, i, j, e)
            else:
                assert expect is None, (what, i, j, expect)
                if what == "join":
                    model[i] = (Mode.EXCLUDE, set())
                elif what == "leave":
                    del model[i]
                elif what == "add_src":
                    model[i] = (Mode.INCLUDE, {*(mine[1] if mine else ()), src})
                else:
                    assert mine is not None
                    rest = mine[1] - {src}
                    if rest:
                        model[i] = (Mode.INCLUDE, rest)
                    else:
                        del model[i]
        iface_state = wire.stack.igmp._ifaces.get(wire.stack.primary.index)
        state = iface_state.groups.get(SSM) if iface_state is not None else None
        got = (state.mode, state.sources) if state is not None else (Mode.INCLUDE, frozenset())
        assert got == _recompute(model)
        for sent in igmp_sent(wire):
            for r in sent.msg.records:  # type: ignore[union-attr]
                view = _apply_record(view, r)
    for sent in settle(wire):
        for r in sent.msg.records:  # type: ignore[union-attr]
            view = _apply_record(view, r)
    assert (view[0], frozenset(view[1])) == _recompute(model)


# --- query responses (§5.2) -----------------------------------------------------------------
def test_general_query_answered_within_max_resp_with_every_group() -> None:
    wire = Wire()
    ep = member(wire)
    ep.join(GROUP2, LOCAL, 0, None, wire.now)
    member(wire, 8, SSM, REMOTE)
    settle(wire)
    asked = wire.now
    v3_query(wire, max_resp=5)
    sent = settle(wire, 1.0)
    assert len(sent) == 1
    assert sent[0].time - asked <= 0.5 + FIRST
    assert sent[0].ip.dst == V3_ROUTERS
    assert sent[0].records == {
        rec(MODE_IS_EXCLUDE, GROUP),
        rec(MODE_IS_EXCLUDE, GROUP2),
        rec(MODE_IS_INCLUDE, SSM, REMOTE),
    }


@pytest.mark.parametrize("seed", range(8))
def test_query_response_delay_is_random_within_max_resp(seed: int) -> None:
    wire = Wire(seed=seed)
    member(wire)
    settle(wire)
    asked = wire.now
    v3_query(wire, max_resp=20)
    (sent,) = settle(wire, 3.0)
    assert FIRST <= sent.time - asked <= 2.0 + FIRST


def test_group_specific_query_answers_that_group_only() -> None:
    wire = Wire()
    ep = member(wire)
    ep.join(GROUP2, LOCAL, 0, None, wire.now)
    settle(wire)
    v3_query(wire, GROUP2, max_resp=5)
    assert [s.records for s in settle(wire, 1.0)] == [{rec(MODE_IS_EXCLUDE, GROUP2)}]
    v3_query(wire, ipv4_addr("239.9.9.9"), max_resp=5)
    assert settle(wire, 1.0) == []


def _gs_query(wire: Wire, group: Ipv4Addr, sources: list[Ipv4Addr]) -> None:
    """A Group-and-Source-Specific Query from an on-link router (not a source)."""
    message = build_igmp_v3_query(group, max_resp_code=5, sources=sources)
    inject_igmp(wire, message, group, ipv4_addr("192.168.0.254"))


def test_group_and_source_query_include_mode() -> None:
    """§5.2 rule 3, INCLUDE (A): IS_IN(A*B), nothing when empty; the query is taken
    although its source is not an included one (Linux ip_check_mc_rcv)."""
    wire = Wire()
    ep = member(wire, group=SSM, source=REMOTE)
    ep.join(SSM, LOCAL, 0, REMOTE2, wire.now)
    settle(wire)
    _gs_query(wire, SSM, [REMOTE2, NEIGHBOUR])
    assert [s.records for s in settle(wire, 1.0)] == [{rec(MODE_IS_INCLUDE, SSM, REMOTE2)}]
    _gs_query(wire, SSM, [NEIGHBOUR])
    assert settle(wire, 1.0) == []


def test_group_and_source_query_exclude_mode() -> None:
    """§5.2 rule 3, EXCLUDE (A): IS_IN(B-A) (Linux sends IS_EX(A) instead)."""
    wire = Wire()
    member(wire)
    settle(wire)
    _gs_query(wire, GROUP, [REMOTE, REMOTE2])
    assert [s.records for s in settle(wire, 1.0)] == [{rec(MODE_IS_INCLUDE, GROUP, REMOTE, REMOTE2)}]


def test_group_and_source_queries_merge_until_answered() -> None:
    """§5.2 rules 4-5: a second source query while one is pending adds its sources; a
    group-specific one while pending makes the answer the whole state."""
    wire = Wire()
    ep = member(wire, group=SSM, source=REMOTE)
    ep.join(SSM, LOCAL, 0, REMOTE2, wire.now)
    settle(wire)
    _gs_query(wire, SSM, [REMOTE])
    _gs_query(wire, SSM, [REMOTE2])
    assert [s.records for s in settle(wire, 1.0)] == [{rec(MODE_IS_INCLUDE, SSM, REMOTE, REMOTE2)}]
    _gs_query(wire, SSM, [REMOTE])
    v3_query(wire, SSM, max_resp=5)
    assert [s.records for s in settle(wire, 1.0)] == [{rec(MODE_IS_INCLUDE, SSM, REMOTE, REMOTE2)}]


def test_no_membership_no_answer() -> None:
    wire = Wire()
    v3_query(wire, max_resp=5)
    assert settle(wire, 1.0) == []


def test_v3_reports_of_others_do_not_suppress() -> None:
    """RFC 3376 §5.2: v3 hosts never suppress."""
    wire = Wire()
    member(wire)
    settle(wire)
    v3_query(wire, max_resp=10)
    other = build_igmp_v3_report([GroupRecord(MODE_IS_EXCLUDE, GROUP, ())])
    inject_igmp(wire, other, V3_ROUTERS)
    assert [s.records for s in settle(wire, 1.5)] == [{rec(MODE_IS_EXCLUDE, GROUP)}]


def test_bad_checksum_query_ignored() -> None:
    wire = Wire()
    member(wire)
    settle(wire)
    inject_igmp(wire, build_igmp_v3_query(max_resp_code=5, checksum_value=0x1234))
    assert settle(wire, 1.0) == []


# --- IGMPv2 / IGMPv1 compatibility (§7) ---------------------------------------------------
def _v12(sent: list[Sent]) -> list[tuple[int, Ipv4Addr, Ipv4Addr]]:
    return [(s.msg.type, s.msg.group, s.ip.dst) for s in sent]  # type: ignore[union-attr]


def test_v2_query_gets_v2_report_to_the_group() -> None:
    wire = Wire()
    member(wire)
    settle(wire)
    asked = wire.now
    v12_query(wire, max_resp=5)
    sent = settle(wire, 1.0)
    assert _v12(sent) == [(V2_REPORT, GROUP, GROUP)]
    assert sent[0].time - asked <= 0.5 + FIRST
    assert sent[0].ip.ttl == 1


def test_v2_query_stops_pending_v3_retransmissions() -> None:
    """§7.2.1 (Linux igmp_heard_query): after a v2 query only v2 messages go out."""
    wire = Wire()
    member(wire)
    assert len(igmp_sent(wire, 0.1)) == 1
    v12_query(wire, max_resp=5)
    assert _v12(settle(wire)) == [(V2_REPORT, GROUP, GROUP)]


def test_v2_mode_join_and_leave() -> None:
    """RFC 2236 §3: unsolicited v2 reports on join (repeated within 10 s), a Leave to
    224.0.0.2 by the last reporter."""
    wire = Wire()
    v12_query(wire, max_resp=5)
    ep = member(wire)
    sent = settle(wire, 12.0)
    assert _v12(sent) == [(V2_REPORT, GROUP, GROUP)] * 2
    assert sent[0].time - wire.now + 12.0 <= FIRST + 1e-9
    ep.leave(GROUP, LOCAL, 0, None, wire.now)
    assert _v12(settle(wire)) == [(V2_LEAVE, GROUP, ALL_ROUTERS)]


def test_v2_report_suppression() -> None:
    """RFC 2236 §3: another member's report cancels ours, and it then sends no Leave."""
    wire = Wire()
    ep = member(wire)
    settle(wire)
    v12_query(wire, max_resp=100)
    inject_igmp(wire, build_igmp(V2_REPORT, GROUP), GROUP, NEIGHBOUR)
    assert settle(wire, 11.0) == []
    ep.leave(GROUP, LOCAL, 0, None, wire.now)
    assert settle(wire) == []


def test_v1_mode_reports_v1_and_leaves_silently() -> None:
    wire = Wire()
    v12_query(wire, max_resp=0)
    ep = member(wire)
    assert _v12(igmp_sent(wire, wire.now + 0.1)) == [(V1_REPORT, GROUP, GROUP)]
    settle(wire, 11.0)
    ep.leave(GROUP, LOCAL, 0, None, wire.now)
    assert settle(wire) == []


def test_v1_query_answered_within_10_s() -> None:
    wire = Wire()
    member(wire)
    settle(wire)
    asked = wire.now
    v12_query(wire, max_resp=0)
    sent = settle(wire, 11.0)
    assert _v12(sent) == [(V1_REPORT, GROUP, GROUP)]
    assert sent[0].time - asked <= 10.0 + FIRST


def test_v2_mode_times_out_back_to_v3() -> None:
    """§8.12: Older Version Querier Present Timeout = RV x Query Interval + Query
    Response Interval = 260 s; then joins are v3 reports again."""
    wire = Wire()
    v12_query(wire, max_resp=5)
    wire.at(259.0)
    member(wire)
    assert _v12(igmp_sent(wire, wire.now + 0.1)) == [(V2_REPORT, GROUP, GROUP)]
    settle(wire, 15.0)
    member(wire, 8, GROUP2)
    assert [s.records for s in igmp_sent(wire, wire.now + 0.1)] == [{rec(CHANGE_TO_EXCLUDE_MODE, GROUP2)}]


def test_v3_query_in_v2_mode_is_answered_with_v2() -> None:
    """§7.2.1 (only IGMPv2 in v2 mode), RFC 2236 §2.5, Linux igmp_heard_query: a v3
    query heard in v2 mode is a v2 query; it also ends the join's unsolicited repeats."""
    wire = Wire()
    v12_query(wire, max_resp=5)
    member(wire)
    assert _v12(igmp_sent(wire, wire.now + 0.1)) == [(V2_REPORT, GROUP, GROUP)]
    asked = wire.now
    v3_query(wire, max_resp=5)
    sent = settle(wire, 12.0)
    assert _v12(sent) == [(V2_REPORT, GROUP, GROUP)]
    assert sent[0].time - asked <= 0.5 + FIRST


def test_v3_query_in_v1_mode_waits_up_to_10_s() -> None:
    wire = Wire(seed=3)
    v12_query(wire, max_resp=0)
    member(wire)
    settle(wire, 12.0)
    asked = wire.now
    v3_query(wire, max_resp=1)  # v1 mode: a v1 query, answered within 10 s, not 0.1 s
    sent = settle(wire, 11.0)
    assert _v12(sent) == [(V1_REPORT, GROUP, GROUP)]
    assert sent[0].time - asked <= 10.0 + FIRST


# --- socket level: errnos, delivery, loopback ----------------------------------------------
class _Driver:
    def __init__(self, wire: Wire) -> None:
        self.wire = wire

    def now(self) -> float:
        return self.wire.now

    def wait_until(self, condition: Callable[[], bool], timeout: float | None) -> bool:
        return condition()


@pytest.fixture
def api() -> Iterator[tuple[Wire, Runtime]]:
    wire = Wire()
    yield wire, Runtime(wire.stack, _Driver(wire))


def mreq(group: str, iface: str = "192.168.0.1") -> bytes:
    return rsock.inet_aton(group) + rsock.inet_aton(iface)


def mreq_source(group: str, source: str, iface: str = "192.168.0.1") -> bytes:
    return mreq(group, iface) + rsock.inet_aton(source)


def _udp(rt: Runtime, port: int = 7) -> rsock.socket:
    s = rsock.socket(rsock.AF_INET, rsock.SOCK_DGRAM, runtime=rt)
    s.setsockopt(rsock.SOL_SOCKET, rsock.SO_REUSEADDR, 1)
    s.bind(("", port))
    s.setblocking(False)
    return s


@pytest.mark.parametrize(
    ("calls", "err"),
    [
        ([(rsock.IP_ADD_MEMBERSHIP, mreq("239.1.2.3"))] * 2, errno.EADDRINUSE),
        ([(rsock.IP_DROP_MEMBERSHIP, mreq("239.1.2.3"))], errno.EADDRNOTAVAIL),
        ([(rsock.IP_ADD_MEMBERSHIP, mreq("192.0.2.7"))], errno.EINVAL),
        ([(rsock.IP_ADD_MEMBERSHIP, mreq("239.1.2.3", "10.9.9.9"))], errno.ENODEV),
        ([(rsock.IP_ADD_MEMBERSHIP, b"\xef\x01\x02")], errno.EINVAL),
        (
            [
                (rsock.IP_ADD_SOURCE_MEMBERSHIP, mreq_source("232.1.1.1", "192.0.2.1")),
                (rsock.IP_ADD_SOURCE_MEMBERSHIP, mreq_source("232.1.1.1", "192.0.2.1")),
            ],
            errno.EADDRNOTAVAIL,
        ),
        (
            [
                (rsock.IP_ADD_MEMBERSHIP, mreq("232.1.1.1")),
                (rsock.IP_ADD_SOURCE_MEMBERSHIP, mreq_source("232.1.1.1", "192.0.2.1")),
            ],
            errno.EINVAL,
        ),
        ([(rsock.IP_DROP_SOURCE_MEMBERSHIP, mreq_source("232.1.1.1", "192.0.2.1"))], errno.EADDRNOTAVAIL),
    ],
)
def test_membership_errnos(api: tuple[Wire, Runtime], calls: list[tuple[int, bytes]], err: int) -> None:
    """Linux's errnos for membership calls (ip_mc_join_group, ip_mc_source, ...)."""
    _, rt = api
    s = _udp(rt)
    *ok, (name, value) = calls
    for n, v in ok:
        s.setsockopt(rsock.IPPROTO_IP, n, v)
    with pytest.raises(OSError) as e:
        s.setsockopt(rsock.IPPROTO_IP, name, value)
    assert e.value.errno == err


def test_membership_limit_enobufs(api: tuple[Wire, Runtime]) -> None:
    """Linux net.ipv4.igmp_max_memberships (20 per socket): the 21st join is ENOBUFS."""
    _, rt = api
    s = _udp(rt)
    for i in range(20):
        s.setsockopt(rsock.IPPROTO_IP, rsock.IP_ADD_MEMBERSHIP, mreq(f"239.0.0.{i + 1}"))
    with pytest.raises(OSError) as e:
        s.setsockopt(rsock.IPPROTO_IP, rsock.IP_ADD_MEMBERSHIP, mreq("239.0.0.99"))
    assert e.value.errno == errno.ENOBUFS


def _recv(s: rsock.socket) -> bytes | None:
    try:
        return s.recv(2000)
    except BlockingIOError:
        return None


def test_delivery_follows_interface_and_socket_filters(api: tuple[Wire, Runtime]) -> None:
    """RFC 1112 §7.2: not-joined groups are dropped at the interface; RFC 3376 §3.2
    / Linux ip_mc_sf_allow: a socket's own filter applies to what it receives, and a
    socket without a membership hears host groups only with IP_MULTICAST_ALL."""
    wire, rt = api
    include = _udp(rt)
    include.setsockopt(
        rsock.IPPROTO_IP, rsock.IP_ADD_SOURCE_MEMBERSHIP, mreq_source("232.1.1.1", "192.0.2.1")
    )
    bystander = _udp(rt)
    wire.inject(udp_ip(REMOTE2, SSM, 5000, 7, b"other source"))
    assert _recv(include) is None and _recv(bystander) is None  # the interface filter is INCLUDE {REMOTE}
    wire.inject(udp_ip(REMOTE, SSM, 5000, 7, b"right source"))
    assert _recv(include) == b"right source"
    assert _recv(bystander) == b"right source"  # IP_MULTICAST_ALL on by default
    bystander.setsockopt(rsock.IPPROTO_IP, rsock.IP_MULTICAST_ALL, 0)
    wire.inject(udp_ip(REMOTE, SSM, 5000, 7, b"again"))
    assert _recv(include) == b"again"
    assert _recv(bystander) is None
    wire.inject(udp_ip(REMOTE, GROUP, 5000, 7, b"not joined"))
    assert _recv(include) is None
    assert wire.stack.counters["ip_rx_not_for_us"] >= 1


def test_socket_exclude_filter_with_other_any_source_member(api: tuple[Wire, Runtime]) -> None:
    """RFC 3376 §3.2: the interface is EXCLUDE {} when one socket is any-source, so a
    datagram from any source arrives, but the INCLUDE {S} socket only takes S's."""
    wire, rt = api
    include = _udp(rt)
    include.setsockopt(
        rsock.IPPROTO_IP, rsock.IP_ADD_SOURCE_MEMBERSHIP, mreq_source("232.1.1.1", "192.0.2.1")
    )
    anysource = _udp(rt)
    anysource.setsockopt(rsock.IPPROTO_IP, rsock.IP_ADD_MEMBERSHIP, mreq("232.1.1.1"))
    wire.inject(udp_ip(REMOTE2, SSM, 5000, 7, b"from 2"))
    assert _recv(anysource) == b"from 2"
    assert _recv(include) is None


def test_loopback_on_and_off(api: tuple[Wire, Runtime]) -> None:
    """RFC 1112 §6.1: a copy to local members unless IP_MULTICAST_LOOP is off; the
    datagram goes on the wire either way, with TTL 1 (or IP_MULTICAST_TTL)."""
    wire, rt = api
    s = _udp(rt)
    s.setsockopt(rsock.IPPROTO_IP, rsock.IP_ADD_MEMBERSHIP, mreq("239.1.2.3"))
    s.setsockopt(rsock.IPPROTO_IP, rsock.IP_MULTICAST_IF, rsock.inet_aton("192.168.0.1"))
    settle(wire)
    s.sendto(b"looped", ("239.1.2.3", 7))
    wire.at(wire.now)
    out = Ipv4Packet(wire.expect())
    assert (out.dst, out.ttl) == (GROUP, 1)
    assert _recv(s) == b"looped"
    s.setsockopt(rsock.IPPROTO_IP, rsock.IP_MULTICAST_LOOP, 0)
    s.setsockopt(rsock.IPPROTO_IP, rsock.IP_MULTICAST_TTL, 9)
    s.sendto(b"not looped", ("239.1.2.3", 7))
    wire.at(wire.now)
    assert Ipv4Packet(wire.expect()).ttl == 9
    assert _recv(s) is None


def test_socket_options_read_back(api: tuple[Wire, Runtime]) -> None:
    _, rt = api
    s = _udp(rt)
    get = s.getsockopt
    assert (
        get(rsock.IPPROTO_IP, rsock.IP_MULTICAST_TTL),
        get(rsock.IPPROTO_IP, rsock.IP_MULTICAST_LOOP),
    ) == (1, 1)
    assert get(rsock.IPPROTO_IP, rsock.IP_MULTICAST_ALL) == 1
    s.setsockopt(rsock.IPPROTO_IP, rsock.IP_MULTICAST_TTL, 200)
    assert get(rsock.IPPROTO_IP, rsock.IP_MULTICAST_TTL) == 200
    with pytest.raises(OSError) as e:
        s.setsockopt(rsock.IPPROTO_IP, rsock.IP_MULTICAST_TTL, 256)
    assert e.value.errno == errno.EINVAL


def test_send_without_route_or_interface_is_enetunreach(api: tuple[Wire, Runtime]) -> None:
    wire, rt = api
    s = _udp(rt)
    with pytest.raises(OSError) as e:
        s.sendto(b"x", ("239.1.2.3", 7))
    assert e.value.errno == errno.ENETUNREACH
    wire.expect_nothing()


def test_close_leaves(api: tuple[Wire, Runtime]) -> None:
    wire, rt = api
    s = _udp(rt)
    s.setsockopt(rsock.IPPROTO_IP, rsock.IP_ADD_MEMBERSHIP, mreq("239.1.2.3"))
    settle(wire)
    s.close()
    assert [x.records for x in settle(wire)] == [{rec(CHANGE_TO_INCLUDE_MODE, GROUP)}] * 2
