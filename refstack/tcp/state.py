"""TCP connection states (RFC 9293 §3.3.2, Figure 5)."""

from __future__ import annotations

import enum


class TcpState(enum.IntEnum):
    """The eleven states of RFC 9293 §3.3.2.  Values are Linux's TCP_* numbers as
    TCP_INFO reports them (tcpi_state), so they can be compared with the kernel."""

    ESTABLISHED = 1
    SYN_SENT = 2
    SYN_RECEIVED = 3
    FIN_WAIT_1 = 4
    FIN_WAIT_2 = 5
    TIME_WAIT = 6
    CLOSED = 7
    CLOSE_WAIT = 8
    LAST_ACK = 9
    LISTEN = 10
    CLOSING = 11

    @property
    def synchronized(self) -> bool:
        """RFC 9293 §3.5: every state from ESTABLISHED on (not LISTEN, SYN-SENT, SYN-RECEIVED)."""
        return self not in (TcpState.CLOSED, TcpState.LISTEN, TcpState.SYN_SENT, TcpState.SYN_RECEIVED)

    @property
    def fin_received(self) -> bool:
        """States reached after the peer's FIN (RFC 9293 §3.10.7.4 seventh step)."""
        return self in (TcpState.CLOSE_WAIT, TcpState.CLOSING, TcpState.LAST_ACK, TcpState.TIME_WAIT)

    @property
    def fin_sent(self) -> bool:
        return self in (
            TcpState.FIN_WAIT_1,
            TcpState.FIN_WAIT_2,
            TcpState.CLOSING,
            TcpState.LAST_ACK,
            TcpState.TIME_WAIT,
        )
