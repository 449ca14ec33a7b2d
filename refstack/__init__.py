"""refstack: a readable, sans-I/O reference TCP/IP stack with the shape of Onload.

Packages:

- :mod:`refstack.wire` -- checked views and builders for every packet format the
  stack speaks (Ethernet, ARP, IPv4, ICMP, IGMP, UDP, TCP).
"""
