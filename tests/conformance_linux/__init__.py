"""Tests of the Linux kernel target (a TUN device in a private network namespace)."""
