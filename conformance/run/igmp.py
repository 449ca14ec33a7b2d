"""IGMP in scripts (extension): ``igmp KIND ...`` lines, built and compared.

Messages (RFC 1112 Appendix I, RFC 2236 §2, RFC 3376 §4): queries (type 0x11;
v1 = 8 bytes with Max Resp Code 0, v2 = 8 bytes, v3 = 12 bytes or more), the v1/v2
reports (0x12, 0x16), the v2 leave (0x17) and the v3 report (0x22) with its group
records.  scapy's IGMPv3 layers rewrite the IP header as a side effect and
misparse some queries, so the IGMP bytes are packed here with ``struct`` and the
IP header (TTL 1, Router Alert, RFC 3376 §4) is built with scapy.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from scapy.layers.inet import IP, IPOption_Router_Alert
from scapy.utils import checksum

from ..results import FieldDiff
from ..script import syntax as sx
from .options import RunOptions

__all__ = ["IgmpMessage", "build_igmp", "igmp_destination", "match_igmp", "parse_igmp"]

ALL_HOSTS = "224.0.0.1"
ALL_ROUTERS = "224.0.0.2"
IGMPV3_ROUTERS = "224.0.0.22"

_TYPES = {"v1_report": 0x12, "v2_report": 0x16, "leave": 0x17, "v3_report": 0x22}
_QUERY = 0x11


def _addr(text: str) -> bytes:
    return socket.inet_aton(text)


def igmp_destination(body: sx.IgmpBody) -> str:
    """Where the message goes when the line does not say (RFC 2236 §9, RFC 3376 §4.2.14)."""
    if body.kind.endswith("_query"):
        return body.group if body.group not in (None, "0.0.0.0") else ALL_HOSTS
    if body.kind == "leave":
        return ALL_ROUTERS
    if body.kind == "v3_report":
        return IGMPV3_ROUTERS
    assert body.group is not None
    return body.group


def _message(body: sx.IgmpBody) -> bytes:
    group = _addr(body.group or "0.0.0.0")
    if body.kind in ("v1_query", "v2_query"):
        code = 0 if body.kind == "v1_query" else (100 if body.max_resp is None else body.max_resp)
        raw = struct.pack("!BBH4s", _QUERY, code, 0, group)
    elif body.kind == "v3_query":
        code = 100 if body.max_resp is None else body.max_resp
        qrv = 2 if body.qrv is None else body.qrv
        qqic = 125 if body.qqic is None else body.qqic
        flags = (0x08 if body.suppress else 0) | (qrv & 0x07)
        sources = b"".join(_addr(s) for s in body.sources)
        raw = struct.pack("!BBH4sBBH", _QUERY, code, 0, group, flags, qqic, len(body.sources)) + sources
    elif body.kind == "v3_report":
        records = b""
        for r in body.records or ():
            records += struct.pack("!BBH4s", r.type_num, 0, len(r.sources), _addr(r.group))
            records += b"".join(_addr(s) for s in r.sources)
        raw = struct.pack("!BBHHH", 0x22, 0, 0, 0, len(body.records or ())) + records
    else:
        raw = struct.pack("!BBH4s", _TYPES[body.kind], 0, 0, group)
    return raw[:2] + struct.pack("!H", checksum(raw)) + raw[4:]


def build_igmp(body: sx.IgmpBody, info: sx.IpInfo | None, opts: RunOptions) -> bytes:
    """An inbound IGMP datagram, from the remote host unless ``src`` says otherwise."""
    src = info.src if info is not None and info.src else opts.remote_ip
    dst = info.dst if info is not None and info.dst else igmp_destination(body)
    ttl = info.ttl if info is not None and info.ttl is not None else 1
    ip = IP(src=src, dst=dst, ttl=ttl, proto=2, options=[IPOption_Router_Alert()])
    if info is not None and info.tos is not None:
        ip.tos = info.tos
    return bytes(ip / _message(body))


@dataclass(frozen=True)
class IgmpMessage:
    """An IGMP message as the oracle reads it."""

    kind: str
    group: str | None
    max_resp: int | None
    records: tuple[tuple[str, str, tuple[str, ...]], ...] = ()
    checksum_ok: bool = True


def parse_igmp(payload: bytes) -> IgmpMessage:
    """Read an IGMP message (raises ValueError when it is too short to be one)."""
    if len(payload) < 8:
        raise ValueError(f"{len(payload)} bytes is too short for IGMP (8 at least)")
    kind_num, code = payload[0], payload[1]
    ok = checksum(payload) == 0
    group = socket.inet_ntoa(payload[4:8])
    if kind_num == _QUERY:
        kind = "v3_query" if len(payload) >= 12 else "v2_query" if code else "v1_query"
        return IgmpMessage(kind, group, code, checksum_ok=ok)
    if kind_num == 0x22:
        names = {v: k for k, v in sx.IGMP_RECORD_TYPES.items()}
        (count,) = struct.unpack_from("!H", payload, 6)
        records = []
        at = 8
        for _ in range(count):
            rtype, aux, nsrc = struct.unpack_from("!BBH", payload, at)
            maddr = socket.inet_ntoa(payload[at + 4 : at + 8])
            srcs = tuple(socket.inet_ntoa(payload[at + 8 + 4 * i : at + 12 + 4 * i]) for i in range(nsrc))
            records.append((names.get(rtype, f"type_{rtype}"), maddr, srcs))
            at += 8 + 4 * nsrc + 4 * aux
        return IgmpMessage("v3_report", None, None, tuple(records), ok)
    names = {v: k for k, v in _TYPES.items()}
    return IgmpMessage(names.get(kind_num, f"type_0x{kind_num:02x}"), group, None, checksum_ok=ok)


def match_igmp(body: sx.IgmpBody, packet: bytes) -> list[FieldDiff]:
    """Compare an outbound ``igmp`` line with the datagram the DUT sent.

    Group records are compared as a set (RFC 3376 fixes no order), each with its
    source list as a set."""
    ip = IP(packet)
    if ip.proto != 2:
        return [FieldDiff("ip.protocol", "igmp", str(ip.proto))]
    try:
        got = parse_igmp(packet[ip.ihl * 4 : ip.len])
    except (ValueError, struct.error) as e:
        return [FieldDiff("igmp", body.kind, f"unreadable: {e}")]
    diffs: list[FieldDiff] = []
    if got.kind != body.kind:
        diffs.append(FieldDiff("igmp.type", body.kind, got.kind))
        return diffs
    if not got.checksum_ok:
        diffs.append(FieldDiff("igmp.checksum", "valid", "invalid"))
    if body.group is not None and got.group != body.group:
        diffs.append(FieldDiff("igmp.group", body.group, str(got.group)))
    if body.max_resp is not None and got.max_resp != body.max_resp:
        diffs.append(FieldDiff("igmp.max_resp", str(body.max_resp), str(got.max_resp)))
    if body.records is not None:
        want = sorted((r.kind, r.group, tuple(sorted(r.sources))) for r in body.records)
        have = sorted((k, g, tuple(sorted(s))) for k, g, s in got.records)
        if want != have:
            diffs.append(FieldDiff("igmp.records", _records(want), _records(have)))
    return diffs


def _records(records: list[tuple[str, str, tuple[str, ...]]]) -> str:
    return "[" + ", ".join(f"{k} {g} [{', '.join(s)}]" for k, g, s in records) + "]"
