"""The corpus's Python cases get the case API's fixtures and result hook by name."""

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
