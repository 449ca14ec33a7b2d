"""The network layer: interfaces, routing, ARP, IPv4 input/output and ICMP."""
