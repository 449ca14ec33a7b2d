"""Targets: systems the harness can run a case against (see :mod:`conformance.target`)."""

from __future__ import annotations

from ..target import Target
from .linux import LinuxTarget
from .refstack import RefstackTarget

TARGET_NAMES = ("refstack", "linux")


def get_target(name: str) -> Target:
    """The target called ``name`` (ValueError for an unknown name)."""
    if name == "refstack":
        return RefstackTarget()
    if name == "linux":
        return LinuxTarget()
    raise ValueError(f"unknown target {name!r}; known: {', '.join(TARGET_NAMES)}")
