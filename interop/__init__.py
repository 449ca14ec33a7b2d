"""Real-traffic interop tests: refstack on a TAP/TUN device against the Linux kernel."""
