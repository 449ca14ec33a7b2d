"""NewReno congestion-window arithmetic (RFC 5681, RFC 6582; SACK entry per RFC 6675).

:class:`NewReno` holds cwnd and ssthresh, in bytes, and changes them on the events
the connection reports.  It does no counting of its own: the connection counts
duplicate ACKs, decides when to enter and leave recovery, measures FlightSize and
retransmits; each method here is one clause of the RFCs, named in its docstring.
Sequence numbers (``recover``) are unwrapped ints (see :mod:`refstack.tcp.seq`).

``recover`` is kept *exclusive*, like SND.NXT: RFC 6582 records "the highest
sequence number transmitted", which is ``recover - 1`` here.  So a full ACK is
``ack >= recover`` and the RFC 6582 §3.2 step 2 check ("does the ACK cover more
than recover?") is also ``ack >= recover`` (:meth:`NewReno.may_enter_fast_recovery`).

RFC 6582 §3.2 numbers its steps 1 (initialise recover), 2 (three duplicate
ACKs), 3 (newly acknowledged data: full and partial acknowledgments) and 4
(retransmit timeouts); RFC 5681 §3.2 numbers the fast retransmit/recovery steps
1-6.  Citations below use those numbers.
"""

from __future__ import annotations

INFINITE_SSTHRESH = 0x7FFFFFFF
"""The "arbitrarily high" initial ssthresh of RFC 5681 §3.1 (Linux's TCP_INFINITE_SSTHRESH value)."""


class NewReno:
    """cwnd/ssthresh of one connection (RFC 5681 §3, RFC 6582 §3.2).

    ``mss`` is SMSS.  The initial window is ``initial_window_segments * SMSS``:
    RFC 5681 §3.1 eq. 1 allows up to 4 segments, RFC 6928 allows 10, and Linux sets
    10 segments (TCP_INIT_CWND) whatever the MSS, which is what this counts (RFC 6928's
    14600-byte cap for large MSS is not applied).  ``initial_ssthresh=None`` is the
    "arbitrarily high" value of RFC 5681 §3.1, :data:`INFINITE_SSTHRESH`.  ``iss``
    initialises ``recover`` (RFC 6582 §3.2 step 1).

    Attributes: ``cwnd`` and ``ssthresh`` in bytes, ``in_recovery``, ``recover``
    (unwrapped, exclusive: SND.NXT when recovery or the last timeout began).
    """

    __slots__ = (
        "_ca_acked",
        "_sack_recovery",
        "cwnd",
        "full_ack_to_ssthresh",
        "in_recovery",
        "initial_window_segments",
        "mss",
        "recover",
        "ssthresh",
    )

    def __init__(
        self,
        mss: int,
        initial_window_segments: int = 10,
        initial_ssthresh: int | None = None,
        *,
        iss: int | None = None,
        full_ack_to_ssthresh: bool = False,
    ) -> None:
        if mss <= 0:
            raise ValueError(f"SMSS must be positive, got {mss}")
        if initial_window_segments <= 0:
            raise ValueError(f"initial window must be at least 1 segment, got {initial_window_segments}")
        self.mss = mss
        self.initial_window_segments = initial_window_segments
        self.cwnd = initial_window_segments * mss
        self.ssthresh = INFINITE_SSTHRESH if initial_ssthresh is None else initial_ssthresh
        self.in_recovery = False
        # RFC 6582 §3.2 step 1: recover starts at the ISS (ISS + 1 in the exclusive convention).
        self.recover = 0 if iss is None else iss + 1
        self._sack_recovery = False
        self._ca_acked = 0  # bytes acked towards the next congestion-avoidance increase
        # RFC 6582 §3.2 step 3 lets a full ACK set cwnd by option (1) (the default) or
        # option (2), cwnd = ssthresh, which is what Linux does (tcp_end_cwnd_reduction).
        self.full_ack_to_ssthresh = full_ack_to_ssthresh

    @property
    def initial_window(self) -> int:
        """IW in bytes (RFC 5681 §3.1)."""
        return self.initial_window_segments * self.mss

    @property
    def in_slow_start(self) -> bool:
        """RFC 5681 §3.1: slow start while cwnd < ssthresh (at equality, congestion avoidance, as Linux)."""
        return self.cwnd < self.ssthresh

    def may_enter_fast_recovery(self, ack: int) -> bool:
        """RFC 6582 §3.2 step 2: on the third duplicate ACK, enter fast retransmit only
        if the ACK covers more than recover (here ``ack >= recover``); otherwise the
        duplicates are for data sent before the last recovery or timeout."""
        return ack >= self.recover

    def is_full_ack(self, ack: int) -> bool:
        """RFC 6582 §3.2 step 3: a full acknowledgment covers all data up to and
        including recover (``ack >= recover``); below it, the ACK is partial."""
        return ack >= self.recover

    def can_send(self, flight_size: int) -> int:
        """Bytes the window allows beyond ``flight_size`` now: ``max(0, cwnd - FlightSize)``."""
        return max(0, self.cwnd - flight_size)

    def on_ack(self, acked_bytes: int, *, in_recovery_ok: bool = False) -> None:
        """An ACK acknowledged ``acked_bytes`` new bytes (RFC 5681 §3.1).

        Slow start: cwnd += min(N, SMSS) (eq. 2; RFC 3465 with L = 1 SMSS).
        Congestion avoidance: cwnd grows by about SMSS*SMSS/cwnd per ACK (eq. 3),
        implemented exactly by counting acked bytes: once cwnd bytes have been
        acknowledged, cwnd += SMSS and the count starts again with the remainder.

        During recovery cwnd is governed by the recovery clauses, so this does
        nothing unless ``in_recovery_ok`` is set.
        """
        if acked_bytes <= 0 or (self.in_recovery and not in_recovery_ok):
            return
        if self.in_slow_start:
            self.cwnd += min(acked_bytes, self.mss)
            return
        self._ca_acked += acked_bytes
        if self._ca_acked >= self.cwnd:
            self._ca_acked -= self.cwnd
            self.cwnd += self.mss

    def _halve(self, flight_size: int) -> int:
        # RFC 5681 §3.1 eq. 4: ssthresh = max(FlightSize / 2, 2*SMSS).
        return max(flight_size // 2, 2 * self.mss)

    def enter_fast_recovery(self, flight_size: int, snd_nxt: int) -> None:
        """The third duplicate ACK (RFC 5681 §3.2 steps 2-3 and eq. 4, RFC 6582 §3.2 step 2).

        ssthresh = max(FlightSize/2, 2*SMSS) (eq. 4), cwnd = ssthresh + 3*SMSS
        ("inflating" for the three segments that left the network); ``recover``
        records the highest sequence number sent, SND.NXT.  The connection
        retransmits the lost segment (step 3).
        """
        self.ssthresh = self._halve(flight_size)
        self.cwnd = self.ssthresh + 3 * self.mss
        self._start_recovery(snd_nxt, sack=False)

    def enter_sack_recovery(self, flight_size: int, snd_nxt: int) -> None:
        """SACK-based loss recovery begins (RFC 6675 §5 steps 4.1-4.2).

        RecoveryPoint (``recover``) = HighData (SND.NXT); ssthresh = cwnd =
        max(FlightSize/2, 2*SMSS) — no inflation: the pipe estimate replaces it.
        """
        self.ssthresh = self.cwnd = self._halve(flight_size)
        self._start_recovery(snd_nxt, sack=True)

    def _start_recovery(self, snd_nxt: int, *, sack: bool) -> None:
        self.recover = snd_nxt
        self.in_recovery = True
        self._sack_recovery = sack
        self._ca_acked = 0

    def on_dupack_in_recovery(self) -> None:
        """RFC 5681 §3.2 step 4: each further duplicate ACK
        inflates cwnd by SMSS.  Outside NewReno fast recovery it does nothing (in SACK
        recovery the pipe estimate accounts for the departed segment instead)."""
        if self.in_recovery and not self._sack_recovery:
            self.cwnd += self.mss

    def on_partial_ack(self, acked_bytes: int) -> None:
        """An ACK of new data below ``recover`` (RFC 6582 §3.2 step 3, "partial acknowledgments").

        Deflate cwnd by the amount acknowledged; if that is at least SMSS, add back
        SMSS.  The connection retransmits the first unacknowledged segment.  cwnd is
        kept at least 1 SMSS (the RFC does not bound it; a window below one segment
        is the loss window of RFC 5681 §3.1).
        """
        self.cwnd -= acked_bytes
        if acked_bytes >= self.mss:
            self.cwnd += self.mss
        self.cwnd = max(self.cwnd, self.mss)

    def exit_recovery(self, flight_size: int) -> None:
        """A full ACK (covering ``recover``) ends recovery.

        NewReno: RFC 6582 §3.2 step 3, "full acknowledgments", option (1): cwnd = min(ssthresh,
        max(FlightSize, SMSS) + SMSS), which avoids a burst.  After
        :meth:`enter_sack_recovery`, RFC 6675 §5 (A) just ends the phase: cwnd is not
        inflated there, so it is left as it is.
        """
        if self.in_recovery and not self._sack_recovery:
            if self.full_ack_to_ssthresh:
                self.cwnd = self.ssthresh  # option (2)
            else:
                self.cwnd = min(self.ssthresh, max(flight_size, self.mss) + self.mss)
        self.in_recovery = False
        self._sack_recovery = False
        self._ca_acked = 0

    def on_timeout(self, flight_size: int, *, repeated: bool = False, snd_nxt: int | None = None) -> None:
        """The retransmission timer expired (RFC 5681 §3.1).

        ssthresh = max(FlightSize/2, 2*SMSS) (eq. 4) — unless ``repeated``: when the
        segment has already been retransmitted by the timer, ssthresh is held
        constant (RFC 5681 §3.1, the note after eq. 4).  cwnd = LW = 1 SMSS.  Any
        recovery ends; with ``snd_nxt`` given, ``recover`` records it (RFC 6582 §3.2 step 4).
        """
        if not repeated:
            self.ssthresh = self._halve(flight_size)
        self.cwnd = self.mss
        self.in_recovery = False
        self._sack_recovery = False
        self._ca_acked = 0
        if snd_nxt is not None:
            self.recover = snd_nxt

    def after_idle(self, idle: float, rto: float) -> None:
        """Restart after idle (RFC 5681 §4.1): if nothing was sent for longer than RTO,
        cwnd = RW = min(IW, cwnd) before sending again."""
        if idle > rto:
            self.cwnd = min(self.initial_window, self.cwnd)

    def set_mss(self, mss: int) -> None:
        """SMSS changed, e.g. on a path-MTU change (RFC 5681 §3.1: SMSS is the sender's
        current maximum segment size).

        cwnd and ssthresh stay in bytes, not rescaled; cwnd is raised to one new SMSS
        if it is below that, so that a full segment can still be sent.
        """
        if mss <= 0:
            raise ValueError(f"SMSS must be positive, got {mss}")
        self.mss = mss
        self.cwnd = max(self.cwnd, mss)

    def __repr__(self) -> str:
        ss = "inf" if self.ssthresh == INFINITE_SSTHRESH else str(self.ssthresh)
        return (
            f"<NewReno cwnd={self.cwnd} ssthresh={ss} mss={self.mss}"
            f" in_recovery={self.in_recovery} recover={self.recover}>"
        )
