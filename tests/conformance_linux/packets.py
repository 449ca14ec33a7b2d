"""Packets for the Linux target's tests, built and parsed with scapy (never refstack)."""

from __future__ import annotations

from typing import Any

from scapy.layers.inet import IP, TCP

LOCAL = "192.168.0.1"
REMOTE = "192.0.2.1"
SYN_OPTIONS: list[tuple[str, Any]] = [
    ("MSS", 1460),
    ("SAckOK", b""),
    ("NOP", None),
    ("NOP", None),
    ("NOP", None),
    ("WScale", 7),
]


def tcp(
    flags: str,
    seq: int,
    ack: int = 0,
    *,
    sport: int = 40000,
    dport: int = 8080,
    window: int = 65535,
    options: list[tuple[str, Any]] | None = None,
    payload: bytes = b"",
    src: str = REMOTE,
    dst: str = LOCAL,
) -> bytes:
    """An IPv4/TCP datagram from the remote peer, checksums filled in."""
    segment = TCP(
        sport=sport, dport=dport, flags=flags, seq=seq, ack=ack, window=window, options=options or []
    )
    return bytes(IP(src=src, dst=dst) / segment / payload)


def syn(sport: int = 40000, seq: int = 0, dport: int = 8080) -> bytes:
    """``S 0:0(0) win 65535 <mss 1460,sackOK,nop,nop,nop,wscale 7>``."""
    return tcp("S", seq, sport=sport, dport=dport, options=SYN_OPTIONS)


def parse(packet: bytes) -> Any:
    """The scapy IP layer of a captured datagram."""
    return IP(packet)


def flags(segment: Any) -> str:
    return str(segment[TCP].flags)


def option_names(segment: Any) -> list[str]:
    return [name for name, _ in segment[TCP].options]


def option(segment: Any, name: str) -> Any:
    return dict(segment[TCP].options)[name]


def payload_len(segment: Any) -> int:
    ip = segment[IP]
    return int(ip.len) - 4 * int(ip.ihl) - 4 * int(ip[TCP].dataofs)


def checksums_ok(packet: bytes) -> bool:
    """Both the IP and the TCP checksum are right (recomputed by scapy)."""
    ip = IP(packet)
    fresh = IP(packet)
    del fresh.chksum
    del fresh[TCP].chksum
    rebuilt = IP(bytes(fresh))
    return bool(ip.chksum == rebuilt.chksum and ip[TCP].chksum == rebuilt[TCP].chksum)
