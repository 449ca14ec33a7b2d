"""Wire codec benchmark: ns per parse+build of one TCP/IPv4 segment, ours vs scapy vs dpkt.

The segment: 192.168.0.1:8080 -> 192.0.2.1:40000, PSH|ACK, options MSS 1460,
NOP NOP Timestamps, NOP NOP SACK (one block), and 1000 bytes of payload (1068
bytes on the wire).  One iteration is, for each library:

- parse: decode the IPv4 and TCP headers from bytes and read every field a stack
  uses (addresses, TTL, ID, ports, seq, ack, flags, window, the decoded option
  list, the payload).  No library verifies checksums while parsing, so none is
  asked to here.
- build: emit the same segment from those fields, IPv4 and TCP checksums computed.

Before timing, the bench checks that the three builders emit identical bytes and
the three parsers read identical fields, so the figures compare equal work.
``vs_scapy`` and ``vs_dpkt`` are speed-ups (their ns / our ns; > 1 means we are
faster).  Usage: ``python bench/wire_codec.py [--json] [--seconds S]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import dpkt
from scapy.layers.inet import IP, TCP
from scapy.packet import Raw

from refstack.wire.addresses import ipv4_addr
from refstack.wire.ipv4 import Ipv4Packet, build_ipv4
from refstack.wire.tcp import ACK, PSH, TcpSegment, build_tcp
from refstack.wire.tcp_options import NOP, Mss, Sack, Timestamps

SRC, DST = "192.168.0.1", "192.0.2.1"
SRC_B, DST_B = ipv4_addr(SRC), ipv4_addr(DST)
PAYLOAD = bytes(range(256)) * 3 + bytes(232)
SEQ, ACK_NO, WINDOW, IDENT, TTL = 0x01020304, 0x0A0B0C0D, 502, 0x4242, 64
OPTS = (Mss(1460), NOP, NOP, Timestamps(1000, 2000), NOP, NOP, Sack(((5000, 6000),)))
SCAPY_OPTS = [
    ("MSS", 1460),
    ("NOP", None),
    ("NOP", None),
    ("Timestamp", (1000, 2000)),
    ("NOP", None),
    ("NOP", None),
    ("SAck", (5000, 6000)),
]
DPKT_OPTS = bytes.fromhex("020405b40101080a000003e8000007d00101050a0000138800001770")

Fields = tuple[Any, ...]


def ours_parse(frame: bytes) -> Fields:
    ip = Ipv4Packet(frame)
    t = TcpSegment(ip.payload)
    return (
        ip.src,
        ip.dst,
        ip.ttl,
        ip.ident,
        t.src_port,
        t.dst_port,
        t.seq,
        t.ack,
        t.flags,
        t.window,
        t.options,
        t.payload,
    )


def ours_build() -> bytes:
    seg = build_tcp(
        SRC_B,
        DST_B,
        8080,
        40000,
        seq=SEQ,
        ack=ACK_NO,
        flags=PSH | ACK,
        window=WINDOW,
        options=OPTS,
        payload=PAYLOAD,
    )
    return build_ipv4(SRC_B, DST_B, 6, seg, ttl=TTL, ident=IDENT)


def dpkt_parse(frame: bytes) -> Fields:
    ip = dpkt.ip.IP(frame)
    t = ip.data
    return (
        ip.src,
        ip.dst,
        ip.ttl,
        ip.id,
        t.sport,
        t.dport,
        t.seq,
        t.ack,
        t.flags,
        t.win,
        dpkt.tcp.parse_opts(t.opts),
        t.data,
    )


def dpkt_build() -> bytes:
    t = dpkt.tcp.TCP(
        sport=8080, dport=40000, seq=SEQ, ack=ACK_NO, flags=0x18, win=WINDOW, opts=DPKT_OPTS, data=PAYLOAD
    )
    t.off = (20 + len(DPKT_OPTS)) // 4
    ip = dpkt.ip.IP(src=SRC_B, dst=DST_B, p=6, id=IDENT, ttl=TTL, data=t)
    ip.len = 20 + len(t)
    return bytes(ip)


def scapy_parse(frame: bytes) -> Fields:
    ip = IP(frame)
    t = ip[TCP]
    return (
        ip.src,
        ip.dst,
        ip.ttl,
        ip.id,
        t.sport,
        t.dport,
        t.seq,
        t.ack,
        int(t.flags),
        t.window,
        t.options,
        bytes(t.payload),
    )


def scapy_build() -> bytes:
    pkt = (
        IP(src=SRC, dst=DST, id=IDENT, ttl=TTL)
        / TCP(sport=8080, dport=40000, seq=SEQ, ack=ACK_NO, flags="PA", window=WINDOW, options=SCAPY_OPTS)
        / Raw(PAYLOAD)
    )
    return bytes(pkt)


def scalars(fields: Fields) -> tuple[Fields, bytes]:
    """The fields every library returns in the same form (all but addresses and options)."""
    return fields[2:10], fields[11]


def check_equal_work() -> bytes:
    """All builders emit the same bytes; all parsers read the same scalar fields and payload."""
    frame = ours_build()
    if dpkt_build() != frame or scapy_build() != frame:
        raise SystemExit("builders disagree: the benchmark would not compare equal work")
    ours, dp, sc = ours_parse(frame), dpkt_parse(frame), scapy_parse(frame)
    if not (scalars(ours) == scalars(dp) == scalars(sc)):
        raise SystemExit(f"parsers disagree: {scalars(ours)} {scalars(dp)} {scalars(sc)}")
    if len(ours[10]) != len(dp[10]) or len(ours[10]) != len(sc[10]):
        raise SystemExit("parsers disagree on the option count")
    return frame


def ns_per_iteration(fn: Callable[[], object], seconds: float) -> float:
    """Median over repeats of the mean ns per call, each repeat ~seconds/7 long."""
    number = 1
    while True:  # calibrate
        start = time.perf_counter()
        for _ in range(number):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed > 0.02:
            break
        number *= 2
    number = max(1, int(number * (seconds / 7) / elapsed))
    samples = []
    for _ in range(7):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - start) / number * 1e9)
    return statistics.median(samples)


def measure(
    name: str, parse: Callable[[bytes], Fields], build: Callable[[], bytes], frame: bytes, seconds: float
) -> dict[str, float]:
    """ns per parse+build, per parse and per build, for one library."""

    def both() -> None:
        parse(frame)
        build()

    return {
        f"{name}_ns": round(ns_per_iteration(both, seconds), 1),
        f"{name}_parse_ns": round(ns_per_iteration(lambda: parse(frame), seconds / 2), 1),
        f"{name}_build_ns": round(ns_per_iteration(build, seconds / 2), 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--seconds", type=float, default=2.0, help="time per library (default 2)")
    args = ap.parse_args(argv)
    frame = check_equal_work()
    results: dict[str, Any] = {
        "segment_bytes": len(frame),
        "python": platform.python_version(),
        "scapy_version": __import__("scapy").VERSION,
        "dpkt_version": dpkt.__version__,
    }
    for name, parse, build in (
        ("ours", ours_parse, ours_build),
        ("dpkt", dpkt_parse, dpkt_build),
        ("scapy", scapy_parse, scapy_build),
    ):
        seconds = args.seconds if name != "scapy" else max(args.seconds / 2, 0.5)
        results.update(measure(name, parse, build, frame, seconds))
    results["vs_scapy"] = round(results["scapy_ns"] / results["ours_ns"], 2)
    results["vs_dpkt"] = round(results["dpkt_ns"] / results["ours_ns"], 2)
    results["targets_met"] = results["vs_scapy"] >= 20 and results["vs_dpkt"] >= 1.0
    if args.json:
        print(json.dumps(results))
    else:
        for key, value in results.items():
            print(f"{key:>16}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
