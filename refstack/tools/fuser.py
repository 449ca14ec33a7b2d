"""``refstack fuser``: the processes that hold refstack stacks, like onload_fuser.

onload_fuser finds onloaded processes by scanning ``/proc/<pid>/fd`` for the Onload
device; a refstack stack is visible through its control socket instead
(:mod:`refstack.control`), so the processes are those serving one, each with its
command line and the names of the stacks it holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..control import LiveStack


@dataclass
class Holder:
    """A process and the stacks it holds."""

    pid: int
    cmdline: list[str]
    stacks: list[str] = field(default_factory=list)


def holders(stacks: Sequence[LiveStack]) -> list[Holder]:
    """One :class:`Holder` per process, lowest pid first, stacks in listing order."""
    by_pid: dict[int, Holder] = {}
    for live in stacks:
        holder = by_pid.setdefault(live.ref.pid, Holder(live.ref.pid, live.cmdline))
        holder.stacks.append(live.ref.name)
    return [by_pid[pid] for pid in sorted(by_pid)]


def render(found: Sequence[Holder], *, pids_only: bool = False) -> str:
    """``#pid      stacks           cmdline`` rows, or (``pids_only``) the pids on one
    line as onload_fuser prints them."""
    if pids_only:
        return " ".join(str(h.pid) for h in found)
    lines = ["#pid      stacks           cmdline"]
    for h in found:
        lines.append(f"{h.pid:<9d} {','.join(h.stacks):<16s} {' '.join(h.cmdline)}")
    return "\n".join(lines)
