"""RTO computation (RFC 6298) in both profiles, backoff, Karn's algorithm."""

from __future__ import annotations

import pytest

from refstack.tcp.rto import RtoEstimator, rtt_sample_allowed


def test_before_any_sample_rto_is_initial() -> None:  # §2.1
    est = RtoEstimator()
    assert (est.srtt, est.rttvar, est.rto, est.base_rto, est.backoffs) == (None, 0.0, 1.0, 1.0, 0)


def test_first_sample() -> None:  # §2.2: SRTT = R, RTTVAR = R/2, RTO = SRTT + max(G, 4*RTTVAR)
    est = RtoEstimator(minimum=0.0)
    est.on_rtt_sample(0.5)
    assert (est.srtt, est.rttvar, est.rto) == (0.5, 0.25, 1.5)


def test_subsequent_samples() -> None:  # §2.3, RTTVAR from the old SRTT
    est = RtoEstimator(minimum=0.0)
    est.on_rtt_sample(0.5)
    est.on_rtt_sample(1.0)
    # RTTVAR = 3/4 * 0.25 + 1/4 * |0.5 - 1.0| = 0.3125; SRTT = 7/8 * 0.5 + 1/8 * 1.0 = 0.5625
    assert (est.srtt, est.rttvar) == (0.5625, 0.3125)
    assert est.rto == 0.5625 + 4 * 0.3125 == 1.8125
    est.on_rtt_sample(0.5625)
    # RTTVAR = 3/4 * 0.3125 + 0 ; SRTT unchanged
    assert (est.srtt, est.rttvar, est.rto) == (0.5625, 0.234375, 0.5625 + 0.9375)


def test_granularity_term() -> None:  # §2.2: max(G, K*RTTVAR) when the variance vanishes
    est = RtoEstimator(minimum=0.0, granularity=0.25)
    est.on_rtt_sample(0.125)  # 4*RTTVAR = 0.25 = G
    assert est.rto == 0.375
    for _ in range(40):
        est.on_rtt_sample(0.125)  # RTTVAR decays towards 0, G takes over
    assert est.rttvar < 1e-5 and est.rto == 0.125 + 0.25


def test_minimum_clamp_rfc_style() -> None:  # §2.4: rounded up to 1 s
    est = RtoEstimator()
    est.on_rtt_sample(0.1)
    assert est.rto == 1.0 and est.base_rto == 1.0
    est2 = RtoEstimator(minimum=0.2)
    est2.on_rtt_sample(0.01)  # 0.01 + 0.02 = 0.03 -> 0.2
    assert est2.rto == 0.2


def test_maximum_clamp() -> None:  # §2.5
    est = RtoEstimator()
    est.on_rtt_sample(30.0)  # 30 + 60 = 90 -> 60
    assert est.rto == 60.0


def test_linux_style_adds_minimum_to_srtt() -> None:
    est = RtoEstimator(minimum=0.2, maximum=120.0, linux_style=True)
    est.on_rtt_sample(0.1)  # 0.1 + max(4*0.05, 0.2)
    assert est.rto == pytest.approx(0.3)
    est = RtoEstimator(minimum=0.2, maximum=120.0, linux_style=True)
    est.on_rtt_sample(0.01)  # 0.01 + max(0.02, 0.2)
    assert est.rto == pytest.approx(0.21)
    est = RtoEstimator(minimum=0.2, maximum=120.0, linux_style=True)
    est.on_rtt_sample(0.5)  # 0.5 + max(1.0, 0.2): variance dominates
    assert est.rto == 1.5
    est.on_rtt_sample(0.5)  # RTTVAR 0.1875 -> 4*RTTVAR 0.75
    assert est.rto == 1.25


def test_styles_differ_only_at_the_minimum() -> None:
    rfc = RtoEstimator(minimum=0.2)
    linux = RtoEstimator(minimum=0.2, linux_style=True)
    for r in (0.01, 0.012, 0.011):
        rfc.on_rtt_sample(r)
        linux.on_rtt_sample(r)
    assert rfc.srtt == linux.srtt and rfc.rttvar == linux.rttvar
    assert rfc.rto == 0.2
    assert linux.srtt is not None and linux.rto == pytest.approx(linux.srtt + 0.2)


def test_backoff_doubles_to_the_cap() -> None:  # §5.5
    est = RtoEstimator()
    seen = []
    for _ in range(8):
        seen.append(est.rto)
        est.backoff()
    assert seen == [1, 2, 4, 8, 16, 32, 60, 60]
    assert est.backoffs == 8 and est.base_rto == 1.0
    est.reset_backoff()
    assert (est.rto, est.backoffs) == (1.0, 0)


def test_backoff_linux_profile_cap() -> None:
    est = RtoEstimator(minimum=0.2, maximum=120.0, linux_style=True)
    est.on_rtt_sample(0.1)
    seq = []
    for _ in range(12):
        est.backoff()
        seq.append(round(est.rto, 6))
    assert seq == [0.6, 1.2, 2.4, 4.8, 9.6, 19.2, 38.4, 76.8, 120.0, 120.0, 120.0, 120.0]


def test_sample_collapses_backoff() -> None:  # §5, note after rule 5.7
    est = RtoEstimator(minimum=0.0)
    est.on_rtt_sample(0.5)
    est.backoff()
    est.backoff()
    assert (est.rto, est.backoffs) == (6.0, 2)
    est.on_rtt_sample(0.5)
    assert est.backoffs == 0 and est.rto == est.base_rto == 0.5 + 4 * 0.1875


def test_handshake_after_syn_loss_uses_three_seconds() -> None:  # §5.7
    est = RtoEstimator()
    est.backoff()
    est.on_handshake_complete(syn_was_retransmitted=True)
    assert (est.rto, est.backoffs) == (3.0, 0)
    est2 = RtoEstimator()
    est2.on_handshake_complete(syn_was_retransmitted=False)
    assert est2.rto == 1.0


def test_karn() -> None:  # §3, RFC 7323 §4
    assert rtt_sample_allowed(False)
    assert not rtt_sample_allowed(True)
    assert rtt_sample_allowed(True, timestamps=True)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="negative"):
        RtoEstimator().on_rtt_sample(-0.1)
    with pytest.raises(ValueError, match="minimum <= maximum"):
        RtoEstimator(minimum=2.0, maximum=1.0)
    with pytest.raises(ValueError, match="initial"):
        RtoEstimator(initial=0.0)
