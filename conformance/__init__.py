"""conformance: the packetdrill-compatible harness (the oracle).

- :mod:`conformance.target` -- the small interface every target implements
- :mod:`conformance.targets` -- the targets (Linux kernel in a namespace; refstack)
- :mod:`conformance.script` -- the ``.pkt`` language: lexer, parser, syntax tree

The oracle never shares code with the system under test: it builds and parses
packets with scapy, never with ``refstack.wire``.
"""
