"""One-way bulk TCP between two refstacks over a MemoryLink, in virtual time.

Measures real CPU time (``time.process_time``) to move ``--megabytes`` of data from
stack A to stack B (MSS 1460 on a 1500-byte IP link, 1 Gbit/s, 1 ms one-way delay,
no loss), and checks the received bytes by SHA-256.  Prints ``mb_per_s`` (MB =
10**6 bytes of payload per CPU second) and ``sha256_match``.

Where the time goes (cProfile of a 20 MB run, this revision): per ~1448-byte
segment the sender builds the TCP and IPv4 headers and checksums (``build_tcp``,
``build_ipv4``: about a third), the receiver parses and verifies them
(``Ipv4Packet``, ``TcpSegment``, ``checksum_ok``: about a quarter), and the state
machine plus the timer heap (``segment_arrives``, ``_output``, ``Timer.arm``) take
most of the rest; bytearray copies of the send/receive buffers are minor.  The
issue's target is 100 MB/s; see the closing note of issue 3 for the current gap.

Usage: ``python bench/bulk_memorylink.py [--json] [--megabytes N] [--profile]``
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import json
import pstats
import sys
import time

from refstack.clock import VirtualClock
from refstack.link import MemoryLink
from refstack.simulation import Simulation
from refstack.stack import Stack
from refstack.wire.addresses import ipv4_addr


def run(megabytes: float) -> dict[str, object]:
    size = int(megabytes * 1_000_000)
    payload = (bytes(range(256)) * (size // 256 + 1))[:size]
    view = memoryview(payload)
    a = Stack(seed=1, name="a")
    a.add_interface("eth", "198.51.100.1", 24)
    b = Stack(seed=2, name="b")
    b.add_interface("eth", "198.51.100.2", 24)
    clock = VirtualClock()
    sim = Simulation(clock)
    sim.add(a, "a")
    sim.add(b, "b")
    sim.connect("a", "b", MemoryLink(delay=0.001, rate_bps=1e9))
    listener = b.tcp.endpoint()
    listener.bind(bytes(4), 5001)
    listener.listen(8)
    for ep in (listener,):
        ep.rcvbuf = 4 * 1024 * 1024
    client = a.tcp.endpoint()
    client.sndbuf = 4 * 1024 * 1024
    client.connect(ipv4_addr("198.51.100.2"), 5001, clock.now())
    if not sim.run_until(lambda: bool(listener.accept_queue), 10):
        raise SystemExit("handshake failed")
    server = listener.accept()
    digest = hashlib.sha256()
    state = {"sent": 0, "received": 0}

    def pump() -> bool:
        while state["sent"] < size:
            try:
                state["sent"] += client.send(view[state["sent"] : state["sent"] + (1 << 20)], clock.now())
            except BlockingIOError:
                break
        while True:
            try:
                chunk = server.recv(1 << 20)
            except BlockingIOError:
                break
            if not chunk:
                break
            digest.update(chunk)
            state["received"] += len(chunk)
        return state["received"] >= size

    start = time.process_time()
    done = sim.run_until(pump, 3600)
    cpu = time.process_time() - start
    return {
        "megabytes": megabytes,
        "cpu_seconds": round(cpu, 3),
        "virtual_seconds": round(clock.now(), 3),
        "mb_per_s": round(size / 1e6 / cpu, 2) if cpu else None,
        "sha256_match": done and digest.hexdigest() == hashlib.sha256(payload).hexdigest(),
        "retransmits": a.counters["tcp_rto_retransmit"] + a.counters["tcp_fast_retransmit"],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--megabytes", type=float, default=20.0)
    ap.add_argument("--profile", action="store_true", help="print the top of a cProfile")
    args = ap.parse_args(argv)
    if args.profile:
        prof = cProfile.Profile()
        result = prof.runcall(run, args.megabytes)
        pstats.Stats(prof).sort_stats("tottime").print_stats(15)
    else:
        result = run(args.megabytes)
    print(json.dumps(result) if args.json else result)
    return 0 if result["sha256_match"] else 1


if __name__ == "__main__":
    sys.exit(main())
