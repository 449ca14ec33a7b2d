"""SACK: receiver blocks (RFC 2018 §4 worked examples, RFC 2883 D-SACK) and the RFC 6675 scoreboard."""

from __future__ import annotations

import pytest

from refstack.tcp.reassembly import ReassemblyQueue
from refstack.tcp.sack import MAX_BLOCKS, MAX_BLOCKS_WITH_TIMESTAMPS, Scoreboard, sack_blocks

Range = tuple[int, int]


class Receiver:
    """RCV.NXT, an out-of-order queue and the SACK history: enough to replay the RFC tables."""

    def __init__(self, rcv_nxt: int, max_blocks: int = MAX_BLOCKS) -> None:
        self.rcv_nxt = rcv_nxt
        self.queue = ReassemblyQueue(1 << 20)
        self.previous: list[Range] = []
        self.max_blocks = max_blocks

    def receive(self, seq: int, length: int) -> tuple[int, list[Range]]:
        end = seq + length
        dsack: Range | None = None
        if end <= self.rcv_nxt:
            dsack = (seq, end)  # wholly old: a duplicate (RFC 2883 §4)
        elif seq <= self.rcv_nxt:
            self.rcv_nxt = end
            self.rcv_nxt += len(self.queue.pop_ready(self.rcv_nxt))
        elif self.queue.insert(seq, b"x" * length) is None:
            dsack = (seq, end)  # a duplicate of queued out-of-order data
        blocks = sack_blocks(
            self.queue.ranges(), (seq, end), self.previous, max_blocks=self.max_blocks, dsack=dsack
        )
        self.previous = blocks
        return self.rcv_nxt, blocks


# --- RFC 2018 §4: eight 500-byte segments from 5000 ----------------------------------
def test_rfc2018_case1_last_four_dropped() -> None:
    r = Receiver(5000)
    for seq in (5000, 5500, 6000, 6500):
        ack, blocks = r.receive(seq, 500)
    assert (ack, blocks) == (7000, [])


def test_rfc2018_case2_first_dropped() -> None:
    r = Receiver(5000)
    got = [r.receive(seq, 500) for seq in range(5500, 9000, 500)]
    assert got == [
        (5000, [(5500, 6000)]),
        (5000, [(5500, 6500)]),
        (5000, [(5500, 7000)]),
        (5000, [(5500, 7500)]),
        (5000, [(5500, 8000)]),
        (5000, [(5500, 8500)]),
        (5000, [(5500, 9000)]),
    ]


def test_rfc2018_case3_every_other_dropped_then_filled() -> None:
    r = Receiver(5000)
    assert r.receive(5000, 500) == (5500, [])
    assert r.receive(6000, 500) == (5500, [(6000, 6500)])
    assert r.receive(7000, 500) == (5500, [(7000, 7500), (6000, 6500)])
    assert r.receive(8000, 500) == (5500, [(8000, 8500), (7000, 7500), (6000, 6500)])
    # "Suppose the 4th packet is received out of order":
    assert r.receive(6500, 500) == (5500, [(6000, 7500), (8000, 8500)])
    # "Suppose the 2nd segment is received":
    assert r.receive(5500, 500) == (7500, [(8000, 8500)])


def test_three_blocks_with_timestamps() -> None:  # RFC 2018 §3: the oldest block falls off
    r = Receiver(0, max_blocks=MAX_BLOCKS_WITH_TIMESTAMPS)
    for seq in (100, 300, 500, 700):
        _, blocks = r.receive(seq, 100)
    assert blocks == [(700, 800), (500, 600), (300, 400)]
    r4 = Receiver(0, max_blocks=MAX_BLOCKS)
    for seq in (100, 300, 500, 700, 900):
        _, blocks = r4.receive(seq, 100)
    assert blocks == [(900, 1000), (700, 800), (500, 600), (300, 400)]


# --- RFC 2883 §4: D-SACK --------------------------------------------------------------
def test_dsack_of_a_duplicate_below_the_ack() -> None:  # RFC 2883, example 1 (ACKs lost)
    r = Receiver(3000)
    r.receive(3000, 500)
    r.receive(3500, 500)
    assert r.receive(3000, 500) == (4000, [(3000, 3500)])


def test_dsack_with_an_out_of_order_block() -> None:  # RFC 2883, example 2
    r = Receiver(3000)
    r.receive(3000, 500)
    r.receive(3500, 500)
    assert r.receive(4500, 500) == (4000, [(4500, 5000)])
    assert r.receive(3000, 500) == (4000, [(3000, 3500), (4500, 5000)])
    # The duplicate is reported once: the next ACK carries only the real block.
    assert r.receive(5000, 500) == (4000, [(4500, 5500)])


def test_dsack_of_an_out_of_order_duplicate_repeats_its_block() -> None:
    # RFC 2883 §4: the second block specifies the queued block containing the duplicate.
    r = Receiver(500)
    r.receive(500, 500)
    assert r.receive(2000, 500) == (1000, [(2000, 2500)])
    assert r.receive(3000, 500) == (1000, [(3000, 3500), (2000, 2500)])
    assert r.receive(3000, 500) == (1000, [(3000, 3500), (3000, 3500), (2000, 2500)])
    r.receive(3500, 500)
    assert r.receive(2000, 500) == (1000, [(2000, 2500), (2000, 2500), (3000, 4000)])


def test_dsack_counts_towards_the_limit() -> None:
    ooo = [(100, 200), (300, 400), (500, 600)]
    blocks = sack_blocks(ooo, (500, 600), [(300, 400), (100, 200)], max_blocks=3, dsack=(10, 20))
    assert blocks == [(10, 20), (500, 600), (300, 400)]


def test_sack_blocks_edge_cases() -> None:
    assert sack_blocks([], None, [], max_blocks=4) == []
    # A previous block that grew is reported as the larger range, once.
    assert sack_blocks([(100, 400)], None, [(100, 200), (300, 400)], max_blocks=4) == [(100, 400)]
    with pytest.raises(ValueError, match="max_blocks"):
        sack_blocks([], None, [], max_blocks=0)


# --- RFC 6675 scoreboard (SMSS 1000, DupThresh 3, ten segments 0..10000 outstanding) ---
def board_with_three_holes() -> Scoreboard:
    sb = Scoreboard(1000)
    assert sb.update(0, [(1000, 2000)]) == 1000
    assert sb.update(0, [(3000, 4000), (1000, 2000)]) == 1000
    assert sb.update(0, [(5000, 6000)]) == 1000
    assert sb.update(0, [(6000, 8000)]) == 2000
    return sb


def test_update_merges_and_counts_new_bytes() -> None:
    sb = board_with_three_holes()
    assert sb.blocks == [(1000, 2000), (3000, 4000), (5000, 8000)]
    assert (sb.sacked_bytes, sb.highest_sacked) == (5000, 8000)
    assert sb.update(0, [(1500, 3500)]) == 1000  # fills 2000..3000, joins two ranges
    assert sb.blocks == [(1000, 4000), (5000, 8000)]
    assert sb.update(0, [(1000, 4000)]) == 0


def test_update_drops_below_snd_una_and_ignores_bad_blocks() -> None:
    sb = board_with_three_holes()
    assert sb.update(3500, []) == 0
    assert sb.blocks == [(3500, 4000), (5000, 8000)]
    assert sb.update(3500, [(100, 600)]) == 0  # a D-SACK below SND.UNA
    assert sb.update(3500, [(9000, 8500)]) == 0  # right <= left
    assert sb.update(3500, [(9000, 11_000)], snd_nxt=10_000) == 0  # beyond SND.NXT
    assert sb.update(3500, [(3000, 4500)]) == 500  # clipped at SND.UNA
    assert sb.blocks == [(3500, 4500), (5000, 8000)]
    assert sb.update(9000, []) == 0 and sb.blocks == [] and sb.highest_sacked is None


def test_is_sacked() -> None:
    sb = board_with_three_holes()
    assert [sb.is_sacked(s) for s in (0, 999, 1000, 1999, 2000, 5000, 7999, 8000)] == [
        False, False, True, True, False, True, True, False,
    ]  # fmt: skip


def test_is_lost_by_count_and_by_bytes() -> None:  # RFC 6675 §4 IsLost
    sb = Scoreboard(1000)
    sb.update(0, [(1000, 2000), (3000, 4000)])
    assert not sb.is_lost(0)  # 2 ranges, 2000 bytes: not more than 2*SMSS
    sb.update(0, [(5000, 6000)])
    assert sb.is_lost(0)  # 3 discontiguous ranges
    assert not sb.is_lost(2000)  # above it: 2 ranges, 2000 bytes
    sb.update(0, [(6000, 6001)])
    assert sb.is_lost(2000)  # 2001 bytes > 2*SMSS
    assert not sb.is_lost(4000)  # 1 range of 1001 bytes
    assert not sb.is_lost(1500)  # SACKed itself


def test_pipe() -> None:  # RFC 6675 §4 SetPipe
    sb = board_with_three_holes()
    # Holes 0-1000, 2000-3000, 4000-5000 are lost; 8000-10000 is not.
    assert sb.pipe(0, 10_000, high_rxt=0) == 2000
    assert sb.pipe(0, 10_000, high_rxt=3000) == 4000  # two holes retransmitted
    # A hole retransmitted without being lost counts twice.
    sb2 = Scoreboard(1000)
    sb2.update(0, [(1000, 2000)])
    assert sb2.pipe(0, 10_000, high_rxt=1000) == 1000 + 1000 + 8000
    assert Scoreboard(1000).pipe(0, 5000, high_rxt=0) == 5000


def test_next_seg_rule1_walks_the_lost_holes() -> None:
    sb = board_with_three_holes()
    assert (sb.next_seg(0, 10_000, 0, None, True), sb.last_rule) == ((0, 1000), 1)
    assert sb.next_seg(0, 10_000, 1000, None, True) == (2000, 3000)
    assert sb.next_seg(0, 10_000, 2500, None, True) == (2500, 3000)  # after HighRxt
    assert sb.next_seg(0, 10_000, 3000, None, True) == (4000, 5000)


def test_next_seg_rule1_one_smss_at_most() -> None:
    sb = Scoreboard(1000)
    sb.update(0, [(3000, 4000), (5000, 6000), (7000, 8000)])
    assert sb.next_seg(0, 9000, 0, None, False) == (0, 1000)
    sb.update(0, [(500, 2800)])
    assert sb.next_seg(0, 9000, 0, None, False) == (0, 500)  # stops at the SACKed range


def test_next_seg_rule2_new_data() -> None:
    sb = board_with_three_holes()
    assert (sb.next_seg(0, 10_000, 5000, None, True), sb.last_rule) == ((10_000, 11_000), 2)


def test_next_seg_rule3_not_yet_lost() -> None:
    sb = Scoreboard(1000)
    sb.update(0, [(1000, 2000)])
    assert sb.next_seg(0, 10_000, 0, None, True) == (10_000, 11_000)  # rule 2 first
    assert (sb.next_seg(0, 10_000, 0, None, False), sb.last_rule) == ((0, 1000), 3)
    assert (sb.next_seg(0, 10_000, 1000, None, False), sb.last_rule) == ((9000, 10_000), 4)


def test_next_seg_rule4_rescue_once() -> None:
    sb = board_with_three_holes()
    # Everything below the highest SACK retransmitted, no new data: rescue the tail.
    assert (sb.next_seg(0, 10_000, 5000, None, False), sb.last_rule) == ((9000, 10_000), 4)
    # RescueRxt = RecoveryPoint: no second rescue in this recovery.
    assert sb.next_seg(0, 10_000, 5000, 10_000, False) is None and sb.last_rule is None
    # A short tail hole: the rescue is only what is unSACKed.
    sb.update(0, [(8000, 9700)])
    assert sb.next_seg(0, 10_000, 5000, None, False) == (9700, 10_000)
    # Nothing outstanding unSACKed: nothing at all.
    sb.update(0, [(0, 10_000)])
    assert sb.next_seg(0, 10_000, 0, None, False) is None


def test_next_seg_without_sacks() -> None:
    sb = Scoreboard(1000)
    assert sb.next_seg(0, 3000, 0, None, False) == (2000, 3000)  # only a rescue is possible
    assert sb.next_seg(0, 3000, 0, 3000, False) is None


def test_reset() -> None:  # RFC 2018 §8: after a timeout, forget the SACKed bits
    sb = board_with_three_holes()
    sb.next_seg(0, 10_000, 0, None, True)
    sb.reset()
    assert (sb.blocks, sb.sacked_bytes, sb.highest_sacked, sb.last_rule) == ([], 0, None, None)


def test_scoreboard_bad_arguments() -> None:
    with pytest.raises(ValueError, match="SMSS"):
        Scoreboard(0)
    with pytest.raises(ValueError, match="DupThresh"):
        Scoreboard(1000, dupthresh=0)
