"""Shared test configuration: hypothesis profiles and the opt-in ``long`` marker."""

from __future__ import annotations

import contextlib
import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("default", max_examples=200, deadline=None)
settings.register_profile(
    "long", max_examples=100_000, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def pytest_addoption(parser: pytest.Parser) -> None:
    with contextlib.suppress(ValueError):  # interop/conftest.py may have added it already
        parser.addoption("--long", action="store_true", help="run the opt-in long tests (fuzzing)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--long"):
        return
    skip = pytest.mark.skip(reason="long test: opt in with --long")
    for item in items:
        if "long" in item.keywords:
            item.add_marker(skip)
