"""Packet buffers: Onload's per-stack pool of 2 KiB buffers (EF_MAX_PACKETS).

Every frame an Onload stack receives or sends lives in a packet buffer from one
pool of ``EF_MAX_PACKETS``; the receive path may hold at most
``EF_MAX_RX_PACKETS`` of them and the transmit path ``EF_MAX_TX_PACKETS``
(``shared/onload/EF_OPTIONS.md``; Onload keeps each below EF_MAX_PACKETS so that
one direction cannot starve the other, and :mod:`refstack.config` already applies
its rules: 3/4 of EF_MAX_PACKETS by default, cut to EF_MAX_PACKETS).

Who holds a buffer, in refstack's model (:class:`~refstack.nic.model.OnloadModel`
asks the stack; the pool only does the arithmetic):

- **RX**: a received frame takes one while the stack handles it, and keeps it
  while its payload waits on an accelerated socket: one per datagram queued on a
  UDP socket, ``ceil(bytes / MSS)`` for the bytes a TCP connection holds in its
  receive and out-of-order queues (Onload keeps the segments' own buffers; the
  MSS bound is what a sender that fills its segments costs).
- **TX**: a frame takes one while it waits in the TX ring or the overflow queue
  (``tx_oflow``), until a poll hands it to the driver.

Running out is not a handover (FILTERS_AND_HANDOVER.md: "Packet buffers
exhausted: not a handover - memory pressure drops"): a frame received with no
RX buffer free is dropped and counted as ``memory_pressure_drops`` (Onload's
stats_def.h name, counted by ``ci_udp_rx_deliver`` when it drops for memory
pressure), and TCP recovers by retransmission; a UDP send that cannot get its
TX buffers fails or waits (EF_UDP_SEND_NONBLOCK_NO_PACKETS_MODE).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PKT_BUF_SIZE", "BufferPool"]

PKT_BUF_SIZE = 2048  # Onload CI_CFG_PKT_BUF_SIZE


@dataclass
class BufferPool:
    """The pool's limits and how many buffers each path holds right now."""

    max_packets: int
    max_rx: int
    max_tx: int
    rx: int = 0  # held by the receive path (frames being handled, payload queued)
    tx: int = 0  # held by the transmit path (TX ring and overflow queue)
    rx_high_water: int = 0
    tx_high_water: int = 0

    @property
    def allocated(self) -> int:
        return self.rx + self.tx

    @property
    def free(self) -> int:
        return max(0, self.max_packets - self.allocated)

    def rx_room(self, n: int = 1) -> bool:
        """Whether the receive path may take ``n`` more buffers."""
        return self.rx + n <= self.max_rx and self.allocated + n <= self.max_packets

    def tx_room(self, n: int = 1) -> bool:
        """Whether the transmit path may take ``n`` more buffers."""
        return self.tx + n <= self.max_tx and self.allocated + n <= self.max_packets

    def set_rx(self, held: int) -> None:
        self.rx = held
        self.rx_high_water = max(self.rx_high_water, held)

    def set_tx(self, held: int) -> None:
        self.tx = held
        self.tx_high_water = max(self.tx_high_water, held)
