"""Flakiness probe (not a test): how long the kernel target takes to answer.

``python -m tests.conformance_linux.jitter [N] [--busy]`` opens one session, listens on
8080 and injects N SYNs (each from a new port, each answered SYN-ACK then reset) and
prints the latency figures as JSON.  ``--busy`` keeps a pure-Python thread spinning
meanwhile, the way an executor parsing packets competes for the GIL.
"""

from __future__ import annotations

import json
import socket
import statistics
import sys
import threading
import time

from conformance.target import CaseConfig
from conformance.targets.linux import LinuxTarget
from tests.conformance_linux import packets


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {
        "median_us": round(statistics.median(ordered) * 1e6, 1),
        "p99_us": round(p99 * 1e6, 1),
        "max_us": round(ordered[-1] * 1e6, 1),
        "min_us": round(ordered[0] * 1e6, 1),
    }


def measure_jitter(n: int = 20, busy: bool = False) -> dict[str, dict[str, float]]:
    """Inject a SYN ``n`` times; return the distribution (median, p99, max, min in µs) of

    - ``synack_capture``: SYN-ACK capture timestamp minus the time just before the inject,
    - ``synack_sniffed``: when ``sniff`` handed it over, minus the same time,
    - ``syscall_immediate``: a non-blocking ``getsockopt`` round trip,
    - ``blocking_detect``: how long ``syscall`` takes to return a blocking ``accept``
      as pending."""
    stop = threading.Event()

    def spin() -> None:
        x = 0
        while not stop.is_set():
            x = (x * 31 + 7) % 1000003

    spinner = threading.Thread(target=spin, daemon=True)
    if busy:
        spinner.start()
    capture: list[float] = []
    sniffed: list[float] = []
    immediate: list[float] = []
    detect: list[float] = []
    try:
        with LinuxTarget().open(CaseConfig("jitter")) as s:
            fd = s.syscall("socket", (socket.AF_INET, socket.SOCK_STREAM, 0)).result.ret  # type: ignore[union-attr]
            s.syscall("bind", (fd, (packets.LOCAL, 8080)))
            s.syscall("listen", (fd, 128))
            for i in range(n):
                port = 20000 + i
                syn, rst = packets.syn(sport=port), packets.tcp("R", 1, sport=port)
                t = s.now()
                s.inject(syn)
                got = s.sniff(t + 1.0)
                done = s.now()
                assert got is not None and packets.flags(packets.parse(got.packet)) == "SA"
                capture.append(got.time - t)
                sniffed.append(done - t)
                s.inject(rst)  # drop the request socket
                t = s.now()
                s.syscall("getsockopt", (fd, socket.SOL_SOCKET, socket.SO_ERROR, 4))
                immediate.append(s.now() - t)
                time.sleep(0.01)
            for _ in range(max(3, n // 4)):
                t = s.now()
                call = s.syscall("accept", (fd,))
                detect.append(s.now() - t)
                assert not call.done
                # end it: a connection for it to accept
                s.inject(packets.syn(sport=30000 + len(detect)))
                synack = packets.parse(s.sniff(s.now() + 1.0).packet)  # type: ignore[union-attr]
                ack = packets.tcp("A", 1, synack["TCP"].seq + 1, sport=30000 + len(detect))
                s.inject(ack)
                assert s.wait(call, s.now() + 1.0)
    finally:
        stop.set()
        if busy:
            spinner.join()
    return {
        "synack_capture": _summary(capture),
        "synack_sniffed": _summary(sniffed),
        "syscall_immediate": _summary(immediate),
        "blocking_detect": _summary(detect),
    }


if __name__ == "__main__":
    count = int(next((a for a in sys.argv[1:] if a.isdigit()), "20"))
    busy = "--busy" in sys.argv
    print(json.dumps({"n": count, "busy": busy, **measure_jitter(count, busy)}))
