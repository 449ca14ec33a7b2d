"""``refstack tcpdump``: a live stack's traffic as pcap, like onload_tcpdump.

The stack's control endpoint taps ``stack.taps`` (every frame the stack receives or
sends on the chosen interface) and streams the frames; this module writes them with
dpkt's pcap writer (``dpkt.pcap.Writer``), one record per frame stamped with the
wall-clock time the stack saw it, link type Ethernet (1) for an Ethernet interface
and ``LINKTYPE_RAW`` (101, bare IPv4) for an IP-only one.  The file is flushed after
every record, so a capture cut short is still readable.  Without ``-w`` each frame is
printed as one tcpdump-like line instead.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import dpkt

from ..control import LINKTYPE_ETHERNET, LINKTYPE_RAW, Message, StackRef, stream
from ..wire.addresses import ipv4_str
from ..wire.errors import WireError
from ..wire.ethernet import ETHERTYPE_ARP, ETHERTYPE_IPV4, EthernetFrame
from ..wire.ipv4 import PROTO_TCP, PROTO_UDP, Ipv4Packet
from ..wire.tcp import TcpSegment, flags_str
from ..wire.udp import UdpDatagram

SNAPLEN = 262144  # tcpdump's default snapshot length; frames are never cut


@dataclass
class Capture:
    """What a capture saw: the interface, its link type and how many frames."""

    stack: str
    interface: str
    linktype: int
    frames: int = 0
    dropped: int = 0  # frames the stack's tap could not queue (the client fell behind)
    interrupted: bool = False


def frames(ref: StackRef, *, count: int | None, interface: str | None) -> tuple[Message, Iterator[Message]]:
    """The stack's header line and an iterator over its frame lines (then the end line)."""
    lines = stream(ref, {"op": "tcpdump", "count": count, "interface": interface}, timeout=None)
    header = next(lines)
    return header, lines


def capture(
    ref: StackRef,
    *,
    count: int | None = None,
    interface: str | None = None,
    pcap: IO[bytes] | None = None,
    text: IO[str] | None = None,
) -> Capture:
    """Capture ``count`` frames (None: until interrupted) into ``pcap`` and/or as ``text``.

    A ``KeyboardInterrupt`` while frames stream ends the capture normally (``interrupted``).
    """
    header, lines = frames(ref, count=count, interface=interface)
    result = Capture(str(header.get("stack", ref.name)), str(header["interface"]), int(header["linktype"]))
    writer: Any = None
    if pcap is not None:
        writer = dpkt.pcap.Writer(pcap, snaplen=SNAPLEN, linktype=result.linktype)
    try:
        for line in lines:  # Ctrl-C ends the capture; what was written stays written
            if line.get("end"):
                result.dropped = int(line.get("dropped", 0))
                break
            frame = base64.b64decode(line["frame"])
            stamp = float(line["time"])
            if writer is not None:
                writer.writepkt(frame, ts=stamp)
                assert pcap is not None
                pcap.flush()
            if text is not None:
                text.write(
                    describe(frame, result.linktype, stamp, str(line["direction"]), result.interface) + "\n"
                )
                text.flush()
            result.frames += 1
    except KeyboardInterrupt:
        result.interrupted = True
    finally:
        lines.close()  # type: ignore[attr-defined]
    return result


def describe(frame: bytes, linktype: int, stamp: float, direction: str, interface: str) -> str:
    """One tcpdump-like line for a frame: time, direction, interface, then the packet."""
    clock = time.strftime("%H:%M:%S", time.localtime(stamp)) + f".{int(stamp % 1 * 1e6):06d}"
    return f"{clock} {interface} {'In ' if direction == 'rx' else 'Out'} {_packet(frame, linktype)}"


def _packet(frame: bytes, linktype: int) -> str:
    try:
        if linktype == LINKTYPE_ETHERNET:
            eth = EthernetFrame(frame)
            if eth.ethertype == ETHERTYPE_ARP:
                return f"ARP, length {len(eth.payload)}"
            if eth.ethertype != ETHERTYPE_IPV4:
                return f"ethertype 0x{eth.ethertype:04x}, length {len(frame)}"
            return _ip(bytes(eth.payload))
        if linktype == LINKTYPE_RAW:
            return _ip(frame)
    except WireError as e:
        return f"[malformed: {e}] length {len(frame)}"
    return f"length {len(frame)}"


def _ip(data: bytes) -> str:
    ip = Ipv4Packet(data)
    src, dst = ipv4_str(ip.src), ipv4_str(ip.dst)
    if ip.is_fragment:
        return f"IP {src} > {dst}: fragment, length {len(data)}"
    if ip.protocol == PROTO_TCP:
        seg = TcpSegment(ip.payload)
        return (
            f"IP {src}.{seg.src_port} > {dst}.{seg.dst_port}: Flags [{flags_str(seg.flags)}], seq {seg.seq},"
            f" ack {seg.ack}, win {seg.window}, length {len(seg.payload)}"
        )
    if ip.protocol == PROTO_UDP:
        d = UdpDatagram(ip.payload)
        return f"IP {src}.{d.src_port} > {dst}.{d.dst_port}: UDP, length {len(d.payload)}"
    return f"IP {src} > {dst}: proto {ip.protocol}, length {len(data)}"
