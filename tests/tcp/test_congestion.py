"""NewReno window arithmetic (RFC 5681, RFC 6582, RFC 6675 §5 entry), exact numbers per clause."""

from __future__ import annotations

import pytest

from refstack.tcp.congestion import INFINITE_SSTHRESH, NewReno

MSS = 1000


def test_initial_values() -> None:  # RFC 5681 §3.1, RFC 6928
    cc = NewReno(MSS)
    assert (cc.cwnd, cc.ssthresh, cc.in_recovery, cc.recover) == (10_000, INFINITE_SSTHRESH, False, 0)
    assert NewReno(MSS, initial_window_segments=4, initial_ssthresh=8000).cwnd == 4000
    assert NewReno(MSS, iss=5000).recover == 5001  # RFC 6582 §3.2 step 1


def test_slow_start_grows_by_min_acked_smss() -> None:  # RFC 5681 §3.1 eq. 2
    cc = NewReno(MSS, initial_window_segments=2)
    cc.on_ack(1000)
    assert cc.cwnd == 3000
    cc.on_ack(500)  # a partial segment: +500
    assert cc.cwnd == 3500
    cc.on_ack(3000)  # a stretch ACK: at most SMSS (L = 1 SMSS)
    assert cc.cwnd == 4500
    cc.on_ack(0)
    assert cc.cwnd == 4500


def test_congestion_avoidance_byte_counting() -> None:  # RFC 5681 §3.1, eq. 3 done exactly
    cc = NewReno(MSS, initial_window_segments=4, initial_ssthresh=4000)
    assert not cc.in_slow_start  # cwnd == ssthresh: congestion avoidance
    for _ in range(3):
        cc.on_ack(1000)
    assert cc.cwnd == 4000  # 3000 of 4000 counted
    cc.on_ack(1000)
    assert cc.cwnd == 5000  # a whole window acked: +SMSS
    cc.on_ack(4500)
    assert cc.cwnd == 5000  # 4500 < 5000
    cc.on_ack(600)
    assert cc.cwnd == 6000  # 5100 >= 5000, 100 carried over
    cc.on_ack(5900)
    assert cc.cwnd == 7000


def test_slow_start_to_avoidance_transition() -> None:
    cc = NewReno(MSS, initial_window_segments=2, initial_ssthresh=3000)
    cc.on_ack(1000)
    assert cc.cwnd == 3000 and not cc.in_slow_start
    cc.on_ack(1000)
    assert cc.cwnd == 3000


def test_fast_recovery_entry() -> None:  # RFC 5681 §3.2 steps 2-3 eq. 4, RFC 6582 §3.2 step 2
    cc = NewReno(MSS)
    cc.enter_fast_recovery(flight_size=10_000, snd_nxt=50_000)
    assert (cc.ssthresh, cc.cwnd, cc.in_recovery, cc.recover) == (5000, 8000, True, 50_000)


def test_fast_recovery_entry_floor_two_segments() -> None:  # eq. 4: max(FlightSize/2, 2*SMSS)
    cc = NewReno(MSS)
    cc.enter_fast_recovery(flight_size=3000, snd_nxt=7)
    assert (cc.ssthresh, cc.cwnd) == (2000, 5000)
    cc2 = NewReno(MSS)
    cc2.enter_fast_recovery(flight_size=7001, snd_nxt=7)
    assert cc2.ssthresh == 3500  # odd FlightSize halves down


def test_dupacks_inflate() -> None:  # RFC 5681 §3.2 step 4
    cc = NewReno(MSS)
    cc.on_dupack_in_recovery()
    assert cc.cwnd == 10_000  # not in recovery: nothing
    cc.enter_fast_recovery(10_000, 50_000)
    cc.on_dupack_in_recovery()
    cc.on_dupack_in_recovery()
    assert cc.cwnd == 10_000


def test_acks_do_not_grow_cwnd_in_recovery() -> None:
    cc = NewReno(MSS)
    cc.enter_fast_recovery(10_000, 50_000)
    cc.on_ack(1000)
    assert cc.cwnd == 8000
    cc.on_ack(1000, in_recovery_ok=True)  # congestion avoidance: 1000 of 8000 counted
    cc.on_ack(7000, in_recovery_ok=True)
    assert cc.cwnd == 9000


def test_partial_ack() -> None:  # RFC 6582 §3.2 step 3, partial acknowledgments
    cc = NewReno(MSS)
    cc.enter_fast_recovery(10_000, 50_000)  # cwnd 8000
    cc.on_partial_ack(2000)  # deflate 2000, add back 1000
    assert cc.cwnd == 7000
    cc.on_partial_ack(500)  # less than SMSS: no add-back
    assert cc.cwnd == 6500
    cc.on_partial_ack(1000)  # exactly SMSS: add back
    assert cc.cwnd == 6500
    cc.on_partial_ack(20_000)  # never below one segment
    assert cc.cwnd == 1000
    assert cc.in_recovery


def test_full_ack_exit() -> None:  # RFC 6582 §3.2 step 3, full acknowledgments, option (1)
    cc = NewReno(MSS)
    cc.enter_fast_recovery(10_000, 50_000)
    assert not cc.is_full_ack(49_999) and cc.is_full_ack(50_000)
    cc.exit_recovery(flight_size=2500)  # min(5000, 2500 + 1000)
    assert (cc.cwnd, cc.in_recovery) == (3500, False)
    cc2 = NewReno(MSS)
    cc2.enter_fast_recovery(10_000, 50_000)
    cc2.exit_recovery(flight_size=9000)  # min(5000, 10000)
    assert cc2.cwnd == 5000
    cc3 = NewReno(MSS)
    cc3.enter_fast_recovery(10_000, 50_000)
    cc3.exit_recovery(flight_size=0)  # min(5000, max(0, 1000) + 1000)
    assert cc3.cwnd == 2000


def test_may_enter_fast_recovery_guard() -> None:  # RFC 6582 §3.2 step 2
    cc = NewReno(MSS, iss=999)
    assert cc.may_enter_fast_recovery(1000)
    cc.on_timeout(10_000, snd_nxt=30_000)
    assert cc.recover == 30_000
    assert not cc.may_enter_fast_recovery(25_000)  # duplicates of data sent before the timeout
    assert cc.may_enter_fast_recovery(30_000)


def test_sack_recovery_entry_and_exit() -> None:  # RFC 6675 §5 steps 4.1-4.2, (A)
    cc = NewReno(MSS)
    cc.enter_sack_recovery(flight_size=10_000, snd_nxt=60_000)
    assert (cc.ssthresh, cc.cwnd, cc.in_recovery, cc.recover) == (5000, 5000, True, 60_000)
    cc.on_dupack_in_recovery()  # no inflation in SACK recovery
    assert cc.cwnd == 5000
    cc.exit_recovery(flight_size=1000)  # cwnd left alone
    assert (cc.cwnd, cc.in_recovery) == (5000, False)
    cc2 = NewReno(MSS)
    cc2.enter_sack_recovery(flight_size=2000, snd_nxt=1)
    assert (cc2.ssthresh, cc2.cwnd) == (2000, 2000)


def test_timeout() -> None:  # RFC 5681 §3.1 eq. 4 and the loss window
    cc = NewReno(MSS)
    cc.enter_fast_recovery(10_000, 50_000)
    cc.on_timeout(flight_size=8000)
    assert (cc.ssthresh, cc.cwnd, cc.in_recovery, cc.recover) == (4000, 1000, False, 50_000)
    cc.on_timeout(flight_size=1000, repeated=True)  # same segment again: ssthresh held
    assert (cc.ssthresh, cc.cwnd) == (4000, 1000)
    cc.on_timeout(flight_size=1000)  # a new loss: floor of 2*SMSS
    assert cc.ssthresh == 2000
    # After the timeout: slow start up to ssthresh, then congestion avoidance.
    cc.on_ack(1000)
    assert cc.cwnd == 2000 and not cc.in_slow_start
    cc.on_ack(1000)
    cc.on_ack(1000)
    assert cc.cwnd == 3000


def test_restart_after_idle() -> None:  # RFC 5681 §4.1
    cc = NewReno(MSS, initial_window_segments=4)
    for _ in range(10):
        cc.on_ack(1000)
    assert cc.cwnd == 14_000
    cc.after_idle(idle=0.5, rto=1.0)
    assert cc.cwnd == 14_000
    cc.after_idle(idle=1.0, rto=1.0)  # must exceed RTO
    assert cc.cwnd == 14_000
    cc.after_idle(idle=1.5, rto=1.0)
    assert cc.cwnd == 4000
    cc.on_timeout(4000)
    cc.after_idle(idle=9.0, rto=1.0)  # min(IW, cwnd): a smaller cwnd stays
    assert cc.cwnd == 1000


def test_set_mss_keeps_bytes() -> None:
    cc = NewReno(1460)
    assert cc.cwnd == 14_600
    cc.set_mss(1200)
    assert (cc.cwnd, cc.mss, cc.initial_window) == (14_600, 1200, 12_000)
    cc.on_ack(5000)
    assert cc.cwnd == 15_800  # slow start now grows by the new SMSS
    cc.on_timeout(5000)
    cc.set_mss(1460)
    assert cc.cwnd == 1460  # at least one new segment


def test_can_send() -> None:
    cc = NewReno(MSS)
    assert cc.can_send(0) == 10_000
    assert cc.can_send(9_500) == 500
    assert cc.can_send(12_000) == 0


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="SMSS"):
        NewReno(0)
    with pytest.raises(ValueError, match="initial window"):
        NewReno(MSS, initial_window_segments=0)
    with pytest.raises(ValueError, match="SMSS"):
        NewReno(MSS).set_mss(-1)
