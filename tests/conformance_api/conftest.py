"""Fixtures of Python conformance cases: every test taking ``dut``/``conn``/``case``
runs once per target (refstack, linux).  They live in :mod:`conformance.case_api`;
importing them here is all a directory of cases needs (rfc_cases/ will do the same)."""

from __future__ import annotations

from conformance.case_api import (  # noqa: F401 -- fixtures and the result hook, by name
    case_config,
    case_fixture,
    conn,
    dut,
    pytest_runtest_makereport,
    session,
    target,
    udp,
)
