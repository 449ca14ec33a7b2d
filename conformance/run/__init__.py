"""Running scripts: packetdrill's semantics against any :class:`~conformance.target.Target`."""
