"""The ``net`` fixture: see :mod:`tests.api.harness`."""

from __future__ import annotations

import pytest

from tests.api.harness import Net, make_net


@pytest.fixture
def net() -> Net:
    return make_net()
