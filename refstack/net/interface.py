"""A network interface of the stack: its address, MTU, link type and TX queue.

Two link types, as DESIGN.md describes: Ethernet (frames carry an Ethernet II
header and next hops are resolved with ARP, RFC 826) and IP-only links such as a
TUN device, which carry bare IPv4 datagrams.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from ..wire.addresses import Ipv4Addr, MacAddr, ipv4_str

MAX_MTU = 65535
MIN_MTU = 68  # RFC 791 §3.2: every module must forward a 68-octet datagram


@dataclass(eq=False)
class Interface:
    """One interface.  ``mac`` None means an IP-only (TUN-style) link."""

    name: str
    index: int
    address: Ipv4Addr
    prefix_len: int
    mtu: int = 1500
    mac: MacAddr | None = None
    tx: deque[bytes] = field(default_factory=deque, repr=False)
    # Transmit offloads the link under the interface performs (refstack.nic.offload):
    # the transport checksum filled in by the device, TCP segmentation (TSO).
    tx_csum_offload: bool = False
    tso: bool = False

    def __post_init__(self) -> None:
        if not MIN_MTU <= self.mtu <= MAX_MTU:
            raise ValueError(f"interface {self.name}: mtu {self.mtu} is outside {MIN_MTU}..{MAX_MTU}")
        if not 0 <= self.prefix_len <= 32:
            raise ValueError(f"interface {self.name}: prefix length {self.prefix_len} is outside 0..32")
        if len(self.address) != 4:
            raise ValueError(f"interface {self.name}: address must be 4 bytes")

    @property
    def is_ethernet(self) -> bool:
        return self.mac is not None

    @property
    def netmask(self) -> int:
        return (0xFFFFFFFF << (32 - self.prefix_len)) & 0xFFFFFFFF

    @property
    def network(self) -> int:
        return int.from_bytes(self.address, "big") & self.netmask

    @property
    def broadcast(self) -> Ipv4Addr:
        """The directed broadcast address of the subnet (RFC 919, RFC 1122 §3.2.1.3)."""
        return (self.network | (~self.netmask & 0xFFFFFFFF)).to_bytes(4, "big")

    def on_link(self, addr: Ipv4Addr) -> bool:
        return int.from_bytes(addr, "big") & self.netmask == self.network

    def __str__(self) -> str:
        return f"{self.name} {ipv4_str(self.address)}/{self.prefix_len} mtu {self.mtu}"
