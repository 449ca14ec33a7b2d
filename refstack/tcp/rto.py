"""The retransmission timer's value (RFC 6298 "Computing TCP's Retransmission Timer").

:class:`RtoEstimator` turns RTT samples into RTO and applies exponential backoff.
It only computes: the connection starts, stops and fires the timer (RFC 6298 §5)
and decides which ACKs yield a sample (Karn's algorithm, §3, see
:func:`rtt_sample_allowed`).  Times are float seconds.

Two profiles:

* RFC 6298 (default): ``RtoEstimator()`` — initial 1 s (§2.1), minimum 1 s (§2.4),
  maximum 60 s (§2.5).
* Linux: ``RtoEstimator(minimum=0.2, maximum=120.0, linux_style=True)`` — Linux's
  TCP_RTO_MIN is 200 ms and TCP_RTO_MAX 120 s, and Linux does not clamp RTO to the
  minimum but adds the minimum to SRTT: its ``rttvar`` is ``max(mdev, rto_min)``, so
  RTO = SRTT + max(K*RTTVAR, minimum).  Only that difference is modelled; Linux's
  per-flight ``mdev_max`` smoothing of RTTVAR is not.
"""

from __future__ import annotations

ALPHA = 1 / 8
"""RFC 6298 §2.3 gain for SRTT."""
BETA = 1 / 4
"""RFC 6298 §2.3 gain for RTTVAR."""
K = 4
"""RFC 6298 §2 multiplier of RTTVAR."""


def rtt_sample_allowed(segment_was_retransmitted: bool, *, timestamps: bool = False) -> bool:
    """Karn's algorithm (RFC 6298 §3): may the ACK of this segment yield an RTT sample?

    An ACK for a retransmitted segment is ambiguous (which transmission does it
    acknowledge?), so it MUST NOT be used to measure RTT — unless the timestamps
    option disambiguates it: the echoed TSecr names the transmission being
    acknowledged (RFC 7323 §4, RTTM).  Note that the backed-off RTO is kept until a
    sample arrives (§5.5, and the note following §5.7).
    """
    return timestamps or not segment_was_retransmitted


class RtoEstimator:
    """SRTT, RTTVAR and RTO for one connection (RFC 6298 §2, backoff §5.5).

    ``initial`` is the RTO before the first sample (§2.1), ``minimum`` and
    ``maximum`` its bounds (§2.4, §2.5), ``granularity`` the clock granularity G
    (§2), ``linux_style`` the Linux minimum described in the module docstring.
    """

    __slots__ = (
        "_base",
        "_rto",
        "backoffs",
        "granularity",
        "initial",
        "linux_style",
        "maximum",
        "minimum",
        "rttvar",
        "srtt",
    )

    def __init__(
        self,
        initial: float = 1.0,
        minimum: float = 1.0,
        maximum: float = 60.0,
        granularity: float = 0.001,
        linux_style: bool = False,
    ) -> None:
        if not 0 <= minimum <= maximum:
            raise ValueError(f"RTO bounds need 0 <= minimum <= maximum, got {minimum} and {maximum}")
        if not 0 < initial <= maximum:
            raise ValueError(f"initial RTO {initial} is outside 0 < initial <= {maximum}")
        if granularity < 0:
            raise ValueError(f"clock granularity {granularity} is negative")
        self.initial = initial
        self.minimum = minimum
        self.maximum = maximum
        self.granularity = granularity
        self.linux_style = linux_style
        self.srtt: float | None = None
        self.rttvar = 0.0
        self.backoffs = 0
        # §2.1: until a sample is taken, RTO is the initial value (1 s).
        self._base = initial
        self._rto = initial

    @property
    def rto(self) -> float:
        """The current RTO, exponential backoff included (what the timer is armed with)."""
        return self._rto

    @property
    def base_rto(self) -> float:
        """The RTO computed from SRTT and RTTVAR, without backoff."""
        return self._base

    def on_rtt_sample(self, rtt: float) -> None:
        """Fold one RTT measurement ``rtt`` (seconds) into SRTT, RTTVAR and RTO.

        A sample also clears the backoff: RFC 6298 §5, the note after rule 5.7 — once a
        new RTT measurement is obtained, the §2 computation is performed and may
        "collapse" RTO back down after the exponential backoff of rule 5.5.
        """
        if rtt < 0:
            raise ValueError(f"RTT sample {rtt} is negative")
        if self.srtt is None:
            # §2.2: the first measurement R: SRTT <- R, RTTVAR <- R/2.
            self.srtt = rtt
            self.rttvar = rtt / 2
        else:
            # §2.3: RTTVAR first, with the SRTT from before this sample.
            self.rttvar = (1 - BETA) * self.rttvar + BETA * abs(self.srtt - rtt)
            self.srtt = (1 - ALPHA) * self.srtt + ALPHA * rtt
        if self.linux_style:
            # Linux profile: rto_min is added to SRTT instead of clamping RTO.
            base = self.srtt + max(K * self.rttvar, self.minimum)
        else:
            # §2.2/§2.3: RTO <- SRTT + max(G, K*RTTVAR); §2.4: at least the minimum.
            base = max(self.srtt + max(self.granularity, K * self.rttvar), self.minimum)
        # §2.5: a maximum MAY be placed on RTO.
        self._base = min(base, self.maximum)
        self.reset_backoff()

    def backoff(self) -> None:
        """The retransmission timer expired: RTO <- RTO * 2, capped at the maximum (§5.5)."""
        self.backoffs += 1
        self._rto = min(self._rto * 2, self.maximum)

    def reset_backoff(self) -> None:
        """Return to the computed RTO (:attr:`base_rto`) and zero the backoff count."""
        self.backoffs = 0
        self._rto = self._base

    def on_handshake_complete(self, syn_was_retransmitted: bool) -> None:
        """RFC 6298 §5.7: if the SYN timer expired and RTO is below 3 s with no sample
        taken, RTO MUST be re-initialized to 3 s when data transmission begins."""
        self.reset_backoff()
        if syn_was_retransmitted and self.srtt is None and self._base < 3.0:
            self._base = self._rto = min(3.0, self.maximum)

    def __repr__(self) -> str:
        return (
            f"<RtoEstimator srtt={self.srtt} rttvar={self.rttvar} rto={self._rto}"
            f" base={self._base} backoffs={self.backoffs}>"
        )
