"""IPv4 fragments in scripts (extension): ``(id N, frag OFF[:LEN], mf)`` on a packet line.

A line with ``frag`` is one fragment of the datagram its body describes
(``udp 5000>6000 (3000)`` is a 3008-byte UDP datagram): the executor builds the whole
datagram, checksum included, then sends the slice ``[OFF, OFF+LEN)`` of its IP
payload (to the end without ``:LEN``) with the fragment offset, MF and ID fields
set (RFC 791 §3.2).  MF is set when the slice ends before the datagram does, unless
``mf``/``nomf`` says otherwise (for malformed trains).  Outbound, the same
fields are checked on the fragment the DUT sent, and the transport header only
where it is, in the fragment at offset 0.  Built and parsed with scapy.
"""

from __future__ import annotations

import struct

from scapy.layers.inet import IP

from ..results import FieldDiff
from ..script import syntax as sx

__all__ = ["datagram_payload_length", "fragment", "match_fragment"]

_MF = 0x1
_DF = 0x2


def fragment(datagram: bytes, info: sx.IpInfo) -> bytes:
    """The fragment ``info`` selects of a whole IPv4 ``datagram`` (built by the caller)."""
    assert info.frag_offset is not None
    whole = IP(datagram)
    payload = bytes(whole.payload)
    start = info.frag_offset
    end = len(payload) if info.frag_length is None else start + info.frag_length
    piece = payload[start:end]
    more = end < len(payload) if info.mf is None else info.mf
    flags = (_MF if more else 0) | (_DF if info.df else 0)
    header = whole.copy()
    header.remove_payload()
    header.flags = flags
    header.frag = start // 8
    header.proto = whole.proto
    header.len = None
    header.chksum = None
    return bytes(header / piece)


def datagram_payload_length(body: sx.Body) -> int | None:
    """The IP payload length of the whole datagram a UDP or ICMP body describes."""
    if isinstance(body, sx.UdpBody):
        return 8 + body.length
    return None


def match_fragment(action: sx.PacketEvent, packet: bytes, ids: dict[int, int]) -> list[FieldDiff]:
    """Compare an outbound fragment line with the packet the DUT sent."""
    info = action.ip_info
    assert info is not None and info.frag_offset is not None
    ip = IP(packet)
    diffs: list[FieldDiff] = []
    offset = int(ip.frag) * 8
    payload = packet[ip.ihl * 4 : ip.len]
    more = bool(int(ip.flags) & _MF)
    if offset != info.frag_offset:
        diffs.append(FieldDiff("ip.frag_offset", str(info.frag_offset), str(offset)))
    total = datagram_payload_length(action.body)
    want_len = info.frag_length
    if want_len is None and total is not None:
        want_len = total - info.frag_offset
    if want_len is not None and len(payload) != want_len:
        diffs.append(FieldDiff("ip.payload_length", str(want_len), str(len(payload))))
    want_mf = info.mf
    if want_mf is None and total is not None and want_len is not None:
        want_mf = info.frag_offset + want_len < total
    if want_mf is not None and more != want_mf:
        diffs.append(FieldDiff("ip.mf", "1" if want_mf else "0", "1" if more else "0"))
    if offset == 0 and isinstance(action.body, sx.UdpBody):
        if ip.proto != 17:
            diffs.append(FieldDiff("ip.protocol", "udp", str(ip.proto)))
        elif len(payload) >= 8:
            sport, dport, length = struct.unpack_from("!HHH", payload)
            if length != 8 + action.body.length:
                diffs.append(FieldDiff("udp.length", str(8 + action.body.length), str(length)))
            ports = action.ports
            if ports is not None and (sport, dport) != (ports.src, ports.dst):
                diffs.append(FieldDiff("udp.ports", f"{ports.src}>{ports.dst}", f"{sport}>{dport}"))
    return diffs
