"""Made-up but realistic runs, for the screenshot, the benchmark and the tests.

:func:`synthetic_run` builds a :class:`~conformance.resultset.ResultSet` of ``cases``
cases on each target, spread over the corpus's topics, with every verdict present
(refstack failing some cases Linux passes, Linux's known divergences as xfails, a
stale expectation as an xpass, skips, a script error) and packetdrill-like traces.
:func:`write_scripts` writes the matching ``.pkt`` files, so the report can show them.
The same arguments always give the same run.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from conformance.results import CaseResult, FieldDiff, Mismatch, TraceEntry, Verdict
from conformance.resultset import ResultSet

__all__ = ["TOPICS", "case_name", "script_text", "synthetic_coverage", "synthetic_run", "write_scripts"]

TOPICS = (
    "rfc9293/handshake",
    "rfc9293/segment_arrival/listen",
    "rfc9293/segment_arrival/syn_sent",
    "rfc9293/segment_arrival/established",
    "rfc9293/data",
    "rfc9293/close",
    "rfc5961",
    "rfc6298_rto",
    "rfc7323",
    "rfc2018_sack",
    "rfc791_fragments",
    "rfc768_udp",
)

_BEHAVIOURS = (
    "rst_in_window",
    "syn_in_window",
    "ack_unsent_data",
    "fin_wait_2_timeout",
    "synack_retransmit_backoff",
    "zero_window_probe",
    "ts_echo_reply",
    "sack_permitted",
    "mss_clamp",
    "dup_ack_threshold",
    "challenge_ack",
    "reassembly_timeout",
)

_SCRIPT = """\
// RFC 9293 §3.10.7.4 (RFC 5961 §3.2): {what}: the DUT answers
// with the segment the RFC names and the connection stays up.
// req: MUST-{must} SHLD-{shld}
0     socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0    setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
+0    bind(3, ..., ...) = 0
+0    listen(3, 1) = 0
+0    < S 0:0(0) win 32792 <mss 1000>
+0    > S. 0:0(0) ack 1 <mss 1460>
+.01  < . 1:1(0) ack 1 win 32792
+0    accept(3, ..., ...) = 4
+0    < R 1001:1001(0) win 0
+0    > . 1:1(0) ack 1 win 65160
+0.3  > none
"""


def case_name(i: int, root: str = "rfc_cases") -> str:
    """The i-th synthetic case's path, under ``root``."""
    topic = TOPICS[i % len(TOPICS)]
    behaviour = _BEHAVIOURS[(i // len(TOPICS)) % len(_BEHAVIOURS)]
    return f"{root}/{topic}/{behaviour}_{i:04d}.pkt"


def script_text(i: int) -> str:
    what = _BEHAVIOURS[(i // len(TOPICS)) % len(_BEHAVIOURS)].replace("_", " ")
    return _SCRIPT.format(what=what, must=1 + i % 69, shld=1 + i % 31)


def write_scripts(directory: Path, cases: int) -> None:
    """Write the ``.pkt`` file of every synthetic case under ``directory``."""
    for i in range(cases):
        path = directory / case_name(i)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(script_text(i), encoding="utf-8")


def _packet(rng: random.Random) -> bytes:
    return bytes([0x45, 0, 0, 40]) + bytes(rng.randrange(256) for _ in range(36))


def _trace(rng: random.Random, fail_line: int | None) -> list[TraceEntry]:
    steps = [
        (0.0, "call", "socket(..., SOCK_STREAM, IPPROTO_TCP) = 3", 4, False),
        (0.0, "call", "bind(3, ..., ...) = 0", 6, False),
        (0.0, "call", "listen(3, 1) = 0", 7, False),
        (0.0, "in", "192.0.2.1:40000 > 192.168.0.1:8080: S 0:0(0) win 32792 <mss 1000>", 8, True),
        (0.0001, "out", "192.168.0.1:8080 > 192.0.2.1:40000: S. 0:0(0) ack 1 win 64240 <mss 1460>", 9, True),
        (0.01, "in", "192.0.2.1:40000 > 192.168.0.1:8080: . 1:1(0) ack 1 win 32792", 10, True),
        (0.01, "call", "accept(3, ..., ...) = 4", 11, False),
        (0.01, "in", "192.0.2.1:40000 > 192.168.0.1:8080: R 1001:1001(0) win 0", 12, True),
    ]
    trace = [TraceEntry(t, k, text, line, _packet(rng) if pkt else None) for t, k, text, line, pkt in steps]
    if fail_line is not None:
        trace.append(
            TraceEntry(
                0.0102,
                "out",
                "192.168.0.1:8080 > 192.0.2.1:40000: . 1:1(0) ack 1 win 64240",
                fail_line,
                _packet(rng),
            )
        )
    else:
        trace.append(
            TraceEntry(
                0.0102,
                "out",
                "192.168.0.1:8080 > 192.0.2.1:40000: . 1:1(0) ack 1 win 65160",
                13,
                _packet(rng),
            )
        )
        trace.append(TraceEntry(0.3102, "note", "no packet before the deadline, as expected", 14))
    return trace


# (refstack, linux) verdicts and how often, out of 100 cases.
_MIX: tuple[tuple[int, Verdict, Verdict], ...] = (
    (80, Verdict.PASS, Verdict.PASS),
    (5, Verdict.FAIL, Verdict.PASS),
    (4, Verdict.PASS, Verdict.XFAIL),
    (2, Verdict.XFAIL, Verdict.XFAIL),
    (2, Verdict.SKIP, Verdict.PASS),
    (2, Verdict.PASS, Verdict.SKIP),
    (2, Verdict.FAIL, Verdict.FAIL),
    (1, Verdict.XPASS, Verdict.PASS),
    (1, Verdict.ERROR, Verdict.ERROR),
    (1, Verdict.PASS, Verdict.FAIL),
)

_REASONS = {
    Verdict.SKIP: "needs IGMPv3 source filters, which this target does not support",
    Verdict.XFAIL: "D3: Linux ACKs an out-of-window SYN in SYN-RECEIVED instead of sending RST "
    "(expected at line 13)",
    Verdict.XPASS: "listed in expectations/refstack.toml (ON-1234 window update), but passed",
    Verdict.ERROR: "line 9: unknown option 'wscale10' in <mss 1460,wscale10>",
    Verdict.FAIL: "line 13: bad outbound TCP window: expected 65160, got 64240",
}


def _result(case: str, target: str, verdict: Verdict, rng: random.Random) -> CaseResult:
    mismatch = None
    fail_line = None
    if verdict in (Verdict.FAIL, Verdict.XFAIL):
        fail_line = 13
        mismatch = Mismatch(
            13,
            7,
            "bad outbound TCP window",
            "192.168.0.1:8080 > 192.0.2.1:40000: . 1:1(0) ack 1 win 65160",
            "192.168.0.1:8080 > 192.0.2.1:40000: . 1:1(0) ack 1 win 64240",
            [FieldDiff("tcp.window", "65160", "64240")],
        )
    elif verdict is Verdict.ERROR:
        mismatch = Mismatch(9, 30, "unknown option 'wscale10'")
    trace = [] if verdict in (Verdict.SKIP, Verdict.ERROR) else _trace(rng, fail_line)
    return CaseResult(
        case,
        target,
        verdict,
        _REASONS.get(verdict, ""),
        round(rng.uniform(0.002, 0.4), 4),
        trace[-1].time if trace else 0.0,
        mismatch,
        trace,
    )


def synthetic_run(
    cases: int = 60,
    targets: tuple[str, ...] = ("refstack", "linux"),
    *,
    seed: int = 7,
    root: str = "rfc_cases",
) -> ResultSet:
    """A run of ``cases`` synthetic cases on each of ``targets`` (see the module docstring)."""
    rng = random.Random(seed)
    pattern = [(a, b) for weight, a, b in _MIX for _ in range(weight)]
    results: list[CaseResult] = []
    for i in range(cases):
        a, b = pattern[(i * 37) % len(pattern)] if i >= len(_MIX) else (_MIX[i][1], _MIX[i][2])
        for n, target in enumerate(targets):
            verdict = a if n == 0 else b
            results.append(_result(case_name(i, root), target, verdict, rng))
    environment = {
        "kernel": "6.18.0-1-amd64",
        "system": "Linux",
        "machine": "x86_64",
        "python": "3.11.7",
        "python_implementation": "CPython",
        "packages": {"scapy": "2.6.1", "dpkt": "1.9.8", "tcpip-parity": "0.1.0"},
        "date": "2026-11-25T02:00:00+00:00",
        "sysctls": {"net.ipv4.tcp_congestion_control": "reno", "net.ipv4.tcp_syn_linear_timeouts": "0"},
        "profile": "linux-6.18",
        "ef_options": {"EF_NO_FAIL": "1", "EF_TCP_SNDBUF_MODE": "1"},
    }
    started = datetime(2026, 11, 25, 2, 0, 0, tzinfo=UTC)
    return ResultSet(results, environment, started, round(sum(r.duration for r in results), 1))


def synthetic_coverage(cases: int, musts: int = 69, shoulds: int = 31) -> dict[str, Any]:
    """The coverage document of the synthetic cases (each names ``MUST-n SHLD-m``)."""
    by_req: dict[str, list[str]] = {}
    for i in range(cases):
        key = case_name(i, root="").lstrip("/")
        by_req.setdefault(f"MUST-{1 + i % musts}", []).append(key)
        by_req.setdefault(f"SHLD-{1 + i % shoulds}", []).append(key)
    requirements = []
    for level, count in (("MUST", musts), ("SHLD", shoulds)):
        for n in range(1, count + 1):
            rid = f"{level}-{n}"
            found = by_req.get(rid, [])
            requirements.append(
                {
                    "id": rid,
                    "level": level,
                    "section": f"3.{1 + n % 10}",
                    "text": f"synthetic requirement {rid}",
                    "cases": found,
                    "uncovered_reason": None if found else "no synthetic case names it",
                }
            )
    summary = {
        level: {
            "total": count,
            "covered": sum(1 for r in requirements if r["level"] == level and r["cases"]),
        }
        for level, count in (("MUST", musts), ("SHLD", shoulds))
    }
    return {"format": "tcpip-parity/coverage", "version": 1, "requirements": requirements, "summary": summary}
