"""A populated pair of stacks for the tool tests, built in virtual time.

Stack ``a`` (10.0.0.1) is the client, stack ``b`` (10.0.0.2) the server, joined by the
125 ms MemoryLink of :mod:`tests.api.harness`.  After :func:`make_scene`:

- b listens on 0.0.0.0:8080 and has accepted the connection from a's client socket;
  the client has sent 3000 bytes, which b has received and not read;
- b has a wildcard UDP socket on 5000, a UDP socket on 10.0.0.2:5001 connected to
  10.0.0.1:7000, and a UDP socket on 6000 that joined 239.1.2.3 on eth0.
"""

from __future__ import annotations

from dataclasses import dataclass

from refstack import socket as rs
from tests.api.harness import A_IP, B_IP, PORT, Net, make_net

GROUP = "239.1.2.3"


@dataclass
class Scene:
    net: Net
    listener: rs.socket
    client: rs.socket
    conn: rs.socket
    udp_wild: rs.socket
    udp_connected: rs.socket
    udp_member: rs.socket

    @property
    def client_port(self) -> int:
        return int(self.client.getsockname()[1])


def join(sock: rs.socket, group: str, interface: str) -> None:
    sock.setsockopt(rs.IPPROTO_IP, rs.IP_ADD_MEMBERSHIP, rs.inet_aton(group) + rs.inet_aton(interface))


def make_scene(net: Net | None = None) -> Scene:
    net = net if net is not None else make_net()
    listener, client, conn = net.connected()
    client.sendall(b"x" * 3000)
    udp_wild = net.udp(net.b, ("", 5000))
    udp_connected = net.udp(net.b, (B_IP, 5001))
    udp_connected.connect((A_IP, 7000))
    udp_member = net.udp(net.b, ("", 6000))
    join(udp_member, GROUP, B_IP)
    net.sim.run_for(0.5)  # the data arrives, the ACKs go back
    return Scene(net, listener, client, conn, udp_wild, udp_connected, udp_member)


__all__ = ["A_IP", "B_IP", "GROUP", "PORT", "Scene", "join", "make_scene"]
