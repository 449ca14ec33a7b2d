"""One pcap per case per target: the packets of a run, readable by tshark, Wireshark and tcpdump.

:func:`write_pcap` writes every trace entry that carries packet bytes -- the IPv4
datagrams injected into the target ("in") and sniffed from it ("out") -- to a classic
(microsecond) pcap file in trace order.  The link type is ``LINKTYPE_RAW`` (101):
each record is a bare IP datagram with no link-layer header.

Timestamps are the trace times (seconds since the case started; virtual on refstack)
added to a fixed epoch, :data:`PCAP_EPOCH` (2024-01-01 00:00:00 UTC), so that tools
show a plausible date and the same run always writes the same bytes.

Classic pcap has no direction field: the direction of a packet is its addresses
(packets "in" come from the remote peer, packets "out" from the DUT).

:func:`pcap_name` gives the file name to use for a case on a target.
"""

from __future__ import annotations

import hashlib
import os
import re

import dpkt

from conformance.results import CaseResult

__all__ = ["LINKTYPE_RAW", "PCAP_EPOCH", "SNAPLEN", "pcap_name", "write_pcap"]

LINKTYPE_RAW = 101
"""tcpdump.org link type: raw IPv4 or IPv6, no link-layer header."""

PCAP_EPOCH = 1_704_067_200
"""2024-01-01T00:00:00Z: the wall-clock time of trace time 0 in every pcap."""

SNAPLEN = 262_144
"""libpcap's maximum snapshot length: no IPv4 datagram is ever cut."""

_USEC = 1_000_000


def write_pcap(result: CaseResult, path: str | os.PathLike[str], *, epoch: int = PCAP_EPOCH) -> int:
    """Write the packets of ``result.trace`` to a pcap at ``path``; return how many.

    Entries without packet bytes (calls, shell commands, notes) are left out.  A
    trace with no packets still writes a valid pcap with no records.  Times are
    rounded to the microsecond.
    """
    count = 0
    with open(path, "wb") as f:
        writer = dpkt.pcap.Writer(f, snaplen=SNAPLEN, linktype=LINKTYPE_RAW)
        for entry in result.trace:
            if not entry.packet:
                continue
            # Quantise to whole microseconds on integers first: the float handed to
            # dpkt is then within a fraction of a microsecond of an exact value, so
            # its own rounding can neither drift nor carry into the next second.
            total_us = epoch * _USEC + round(entry.time * _USEC)
            sec, usec = divmod(total_us, _USEC)
            writer.writepkt_time(bytes(entry.packet), sec + usec / _USEC)
            count += 1
    return count


_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")
_MAX_STEM = 160  # leaves room for the hash and the target within NAME_MAX (255 bytes)


def pcap_name(case: str, target: str) -> str:
    """A safe file name for the pcap of ``case`` on ``target``, ending ``.<target>.pcap``.

    Path separators become ``__`` and any character outside ``[A-Za-z0-9._+-]`` an
    underscore, so the name never leaves the directory it is joined to (no ``/``, no
    leading dot).  Whenever that changes the case string, a short hash of the original
    is added, so two different cases never share a file name::

        >>> pcap_name("rfc9293/handshake/syn_sent.pkt", "linux")
        'rfc9293__handshake__syn_sent.pkt-427ee037b3.linux.pcap'
        >>> pcap_name("smoke.pkt", "refstack")
        'smoke.pkt.refstack.pcap'
    """
    stem = case.replace("\\", "/").strip("/")
    stem = "__".join(part for part in stem.split("/") if part)
    stem = _UNSAFE.sub("_", stem)
    stem = "_" + stem[1:] if stem.startswith(".") else stem
    stem = stem or "case"
    if stem != case or len(stem) > _MAX_STEM:
        digest = hashlib.sha256(case.encode("utf-8", "surrogatepass")).hexdigest()[:10]
        stem = f"{stem[:_MAX_STEM]}-{digest}"
    safe_target = _UNSAFE.sub("_", target).lstrip(".") or "target"
    return f"{stem}.{safe_target}.pcap"
