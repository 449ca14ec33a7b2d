"""What a run of one case on one target produced: verdict, first mismatch, trace.

These records are the harness's output: the JSON results, the pcaps and the HTML
report are all made from them.  Verdicts follow DESIGN.md: pass, fail (with the
first mismatch), error (the script is wrong), skip (with the reason), xfail (a known
divergence listed in the target's expectations file) and xpass (a listed divergence
that passed).
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any


class Verdict(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    SKIP = "skip"
    XFAIL = "xfail"
    XPASS = "xpass"


@dataclass
class FieldDiff:
    name: str
    expected: str
    actual: str


@dataclass
class Mismatch:
    """The first place where the target departed from the script."""

    line: int
    col: int
    message: str
    expected: str | None = None  # the scripted event, rendered
    actual: str | None = None  # what the target did, rendered
    fields: list[FieldDiff] = field(default_factory=list)


@dataclass
class TraceEntry:
    """One step of the run: ``kind`` is "in" (injected), "out" (sniffed), "call",
    "shell" or "note"; ``packet`` holds the IPv4 bytes of packets (for pcaps)."""

    time: float
    kind: str
    text: str
    line: int = 0
    packet: bytes | None = None


@dataclass
class CaseResult:
    case: str  # the script's path (or the Python case's node id)
    target: str
    verdict: Verdict
    reason: str = ""  # why it failed, errored or was skipped; the xfail expectation
    duration: float = 0.0  # wall-clock seconds
    script_time: float = 0.0  # the session time at the end (virtual on refstack)
    mismatch: Mismatch | None = None
    trace: list[TraceEntry] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; packet bytes become hex strings."""
        data = asdict(self)
        data["verdict"] = str(self.verdict)
        for entry in data["trace"]:
            if entry["packet"] is not None:
                entry["packet"] = entry["packet"].hex()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CaseResult:
        mismatch = data.get("mismatch")
        return cls(
            case=data["case"],
            target=data["target"],
            verdict=Verdict(data["verdict"]),
            reason=data.get("reason", ""),
            duration=data.get("duration", 0.0),
            script_time=data.get("script_time", 0.0),
            mismatch=None
            if mismatch is None
            else Mismatch(
                mismatch["line"],
                mismatch["col"],
                mismatch["message"],
                mismatch.get("expected"),
                mismatch.get("actual"),
                [FieldDiff(**f) for f in mismatch.get("fields", [])],
            ),
            trace=[
                TraceEntry(
                    t["time"],
                    t["kind"],
                    t["text"],
                    t.get("line", 0),
                    bytes.fromhex(t["packet"]) if t.get("packet") else None,
                )
                for t in data.get("trace", [])
            ],
        )
