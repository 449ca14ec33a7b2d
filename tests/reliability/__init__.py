"""Reliability and security tests (issue 9): RX fuzzing, blind attacks, harness hygiene."""
