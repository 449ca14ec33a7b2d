"""Targets: systems the harness can run a case against (see :mod:`conformance.target`)."""
