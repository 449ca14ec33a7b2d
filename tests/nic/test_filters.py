"""refstack.nic.filters: the finite, shared filter table."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from refstack.nic.filters import Filter, FilterKind, FilterTable, FilterTableFullError
from refstack.wire.addresses import ipv4_addr

A, B = ipv4_addr("192.168.0.1"), ipv4_addr("192.168.1.1")
PEER = ipv4_addr("192.0.2.1")
GROUP = ipv4_addr("239.1.2.3")


def wild(addr: bytes, port: int, proto: int = 6) -> Filter:
    return Filter(FilterKind.WILD, proto, (addr, port))


def full(port: int, peer_port: int) -> Filter:
    return Filter(FilterKind.FULL, 6, (A, port), (PEER, peer_port))


def test_insert_lookup_and_remove() -> None:
    table = FilterTable(8)
    table.insert(1, [wild(A, 80)])
    table.insert(2, [full(80, 5000)])
    assert table.lookup(6, (A, 80), (PEER, 5000)) == full(80, 5000)  # full match first
    assert table.lookup(6, (A, 80), (PEER, 5001)) == wild(A, 80)
    assert table.lookup(17, (A, 80), (PEER, 5001)) is None  # another protocol
    table.remove(1)
    assert table.lookup(6, (A, 80), (PEER, 5001)) is None
    assert len(table) == 1 and table.held_by(2) == {full(80, 5000)}


def test_a_shared_filter_stays_until_its_last_owner_goes() -> None:
    table = FilterTable(1)
    mcast = Filter(FilterKind.MULTICAST, 17, (GROUP, 5000))
    table.insert(1, [mcast])
    table.insert(2, [mcast])  # shared: no new entry, so it fits a full table
    assert len(table) == 1 and list(table) == [(mcast, frozenset({1, 2}))]
    table.remove(1)
    assert table.lookup(17, (GROUP, 5000), (PEER, 1)) == mcast
    table.remove(2)
    assert len(table) == 0


def test_insertion_is_all_or_nothing() -> None:
    table = FilterTable(2)
    table.insert(1, [wild(A, 80)])
    with pytest.raises(FilterTableFullError, match="2 filter"):
        table.insert(2, [wild(A, 81), wild(B, 81)])
    assert len(table) == 1 and table.held_by(2) == frozenset()
    table.insert(2, [wild(A, 81)])
    assert table.high_water == 2


@given(st.lists(st.tuples(st.integers(1, 5), st.integers(1, 4), st.booleans()), max_size=60))
def test_the_table_never_exceeds_its_capacity_and_counts_owners_exactly(
    ops: list[tuple[int, int, bool]],
) -> None:
    table = FilterTable(3)
    model: dict[int, set[Filter]] = {}
    for owner, port, add in ops:
        f = wild(A, port)
        if add:
            try:
                table.insert(owner, [f])
                model.setdefault(owner, set()).add(f)
            except FilterTableFullError:
                pass
        else:
            table.remove(owner, [f])
            model.get(owner, set()).discard(f)
        assert len(table) <= 3
        assert len(table) == len({f for fs in model.values() for f in fs})
        for o, fs in model.items():
            assert table.held_by(o) == fs
