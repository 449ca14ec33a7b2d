"""Addresses as the wire carries them: IPv4 as 4 bytes, MAC as 6 bytes.

Views return raw bytes (cheap and exact); these helpers convert to and from the
dotted and colon forms people read.
"""

from __future__ import annotations

import socket

from .errors import WireError

Ipv4Addr = bytes
MacAddr = bytes

BROADCAST_MAC: MacAddr = b"\xff" * 6


def ipv4_addr(text: str) -> Ipv4Addr:
    """``"192.0.2.1"`` -> ``b"\\xc0\\x00\\x02\\x01"`` (RFC 791 §3.1 address format).

    Only the strict dotted-decimal form is accepted (no ``inet_aton`` short or hex forms).
    """
    parts = text.split(".")
    if len(parts) != 4 or not all(p.isdigit() and p.isascii() and len(p) <= 3 for p in parts):
        raise WireError("ipv4.address", None, f"{text!r} is not a dotted-quad IPv4 address")
    values = [int(p) for p in parts]
    if max(values) > 255:
        raise WireError("ipv4.address", None, f"{text!r} has a part above 255")
    return bytes(values)


def ipv4_str(addr: Ipv4Addr) -> str:
    """4 bytes -> dotted quad."""
    if len(addr) != 4:
        raise WireError("ipv4.address", None, f"needs 4 bytes, got {len(addr)}")
    return socket.inet_ntoa(addr)


def mac(text: str) -> MacAddr:
    """``"02:00:00:00:00:01"`` -> 6 bytes."""
    parts = text.split(":")
    if len(parts) != 6 or not all(len(p) == 2 for p in parts):
        raise WireError("ethernet.address", None, f"{text!r} is not a colon-separated MAC")
    try:
        return bytes(int(p, 16) for p in parts)
    except ValueError:
        raise WireError("ethernet.address", None, f"{text!r} is not a colon-separated MAC") from None


def mac_str(addr: MacAddr) -> str:
    """6 bytes -> ``"02:00:00:00:00:01"``."""
    if len(addr) != 6:
        raise WireError("ethernet.address", None, f"needs 6 bytes, got {len(addr)}")
    return ":".join(f"{b:02x}" for b in addr)


def is_multicast_ipv4(addr: Ipv4Addr) -> bool:
    """Class D, 224.0.0.0/4 (RFC 1112 §4)."""
    return 224 <= addr[0] <= 239


def multicast_mac(group: Ipv4Addr) -> MacAddr:
    """RFC 1112 §6.4: the low 23 bits of the group into 01-00-5E-00-00-00."""
    if not is_multicast_ipv4(group):
        raise WireError("ipv4.address", None, f"{ipv4_str(group)} is not a multicast group")
    return bytes((0x01, 0x00, 0x5E, group[1] & 0x7F, group[2], group[3]))
