"""The out-of-order queue (RFC 9293 §3.10.7.4): trimming, delivery, limits, random reassembly."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from refstack.tcp.reassembly import ReassemblyQueue


def test_insert_and_ranges() -> None:
    q = ReassemblyQueue(1000)
    assert q.insert(100, b"abcd") == (100, 104)
    assert q.insert(110, b"klm") == (110, 113)
    assert q.insert(104, b"efgh") == (104, 108)  # adjacent: one merged range
    assert q.ranges() == [(100, 108), (110, 113)]
    assert (q.bytes_queued, len(q)) == (11, 3)


def test_overlaps_store_only_new_octets() -> None:
    q = ReassemblyQueue(1000)
    q.insert(10, b"CDEF")  # 10..14
    q.insert(20, b"MNOP")  # 20..24
    assert q.insert(10, b"CDEF") is None  # exact duplicate
    assert q.insert(11, b"DE") is None  # inside
    # Covers both pieces and the gaps around them: three new pieces, one span.
    assert q.insert(8, b"ABCDEFGHIJKLMNOPQR") == (8, 26)
    assert q.bytes_queued == 18 and q.ranges() == [(8, 26)]
    assert q.pop_ready(8) == b"ABCDEFGHIJKLMNOPQR"
    assert q.bytes_queued == 0 and len(q) == 0


def test_first_data_wins_on_overlap() -> None:
    # Octets already queued are kept; a later segment only fills the gaps.
    q = ReassemblyQueue(1000)
    q.insert(2, b"xx")
    q.insert(0, b"abcdef")
    assert q.pop_ready(0) == b"abxxef"


def test_pop_ready_discards_below_and_trims_straddler() -> None:
    q = ReassemblyQueue(1000)
    q.insert(100, b"0123456789")  # 100..110
    q.insert(110, b"abc")  # 110..113
    q.insert(120, b"zz")
    assert q.pop_ready(90) == b""  # gap before 100: nothing yet
    assert q.pop_ready(105) == b"56789abc"  # straddles: from 105 on
    assert q.ranges() == [(120, 122)]
    assert q.pop_ready(125) == b""  # wholly below: discarded
    assert (q.bytes_queued, len(q), q.ranges()) == (0, 0, [])


def test_limit_refuses_whole_insertions() -> None:
    q = ReassemblyQueue(10)
    assert q.insert(0, b"123456") == (0, 6)
    assert q.insert(20, b"12345") is None and q.refused == 1  # 11 > 10: nothing stored
    assert q.ranges() == [(0, 6)]
    assert q.insert(3, b"3456789") == (6, 10)  # only 4 new octets: fits exactly
    assert q.bytes_queued == 10
    assert q.insert(0, b"12") is None and q.refused == 1  # a duplicate is not a refusal
    q.clear()
    assert (q.bytes_queued, len(q), q.refused) == (0, 0, 1)
    assert ReassemblyQueue(0).insert(0, b"a") is None
    assert ReassemblyQueue(5).insert(0, b"") is None
    with pytest.raises(ValueError, match="limit"):
        ReassemblyQueue(-1)


@st.composite
def shuffled_segments(draw: st.DrawFn) -> tuple[int, bytes, list[tuple[int, bytes]]]:
    """A stream, a random segmentation of it plus overlapping extras, in random order."""
    base = draw(st.integers(0, 1 << 40))
    stream = draw(st.binary(min_size=1, max_size=300))
    cuts = sorted(draw(st.sets(st.integers(1, len(stream) - 1), max_size=30))) if len(stream) > 1 else []
    bounds = [0, *cuts, len(stream)]
    segs = [(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]
    for _ in range(draw(st.integers(0, 15))):  # duplicates and overlaps
        a = draw(st.integers(0, len(stream) - 1))
        b = draw(st.integers(a + 1, len(stream)))
        segs.append((a, b))
    order = draw(st.permutations(segs))
    return base, stream, [(base + a, stream[a:b]) for a, b in order]


@given(shuffled_segments())
def test_random_segmentation_reassembles_exactly(case: tuple[int, bytes, list[tuple[int, bytes]]]) -> None:
    base, stream, segments = case
    q = ReassemblyQueue(len(stream))
    for seq, data in segments:
        q.insert(seq, data)
        ranges = q.ranges()
        assert sum(b - a for a, b in ranges) == q.bytes_queued <= len(stream)
        assert all(ranges[i][1] < ranges[i + 1][0] for i in range(len(ranges) - 1))
    assert q.ranges() == [(base, base + len(stream))]
    assert q.pop_ready(base) == stream
    assert q.bytes_queued == 0 and len(q) == 0


@given(shuffled_segments())
def test_receiver_loop_delivers_the_stream(case: tuple[int, bytes, list[tuple[int, bytes]]]) -> None:
    """Like a connection: in-order data is delivered at once, the rest queued, then drained."""
    base, stream, segments = case
    q = ReassemblyQueue(len(stream))
    rcv_nxt = base
    out = bytearray()
    for seq, data in segments:
        end = seq + len(data)
        if end <= rcv_nxt:
            continue  # old duplicate
        if seq <= rcv_nxt:
            out += data[rcv_nxt - seq :]
            rcv_nxt = end
            ready = q.pop_ready(rcv_nxt)
            out += ready
            rcv_nxt += len(ready)
        else:
            q.insert(seq, data)
        assert all(a > rcv_nxt for a, _ in q.ranges())
    assert bytes(out) == stream and q.bytes_queued == 0
