"""RFC 9293 §3.9.1.1 OPEN: local address and port, and a LISTEN beside an active open.

Python cases: the .pkt executor follows one flow, so it cannot hold an active open in
SYN-SENT while a second flow reaches a listener on the same port, nor check which
port an explicit bind() gave a connection whose ports it fills in itself.
"""

from __future__ import annotations

import errno
import socket

import pytest
from scapy.layers.inet import IP, TCP

from conformance.case_api import Case, Dut, DutError, TcpConnection, case

SOL_SOCKET, SO_REUSEADDR = socket.SOL_SOCKET, socket.SO_REUSEADDR


# req: MUST-43
@case("RFC 9293 §3.9.1.1")
def test_open_uses_the_local_address_and_port_given(case: Case, dut: Dut, conn: TcpConnection) -> None:
    """OPEN takes an optional local address (bind() before connect()): the SYN and
    every later segment of the connection leave from the bound address and port
    (192.168.0.1:5555), not an ephemeral one."""
    fd = dut.socket()
    dut.bind(fd, (case.local_ip, 5555))
    call = dut.start("connect", fd, (case.remote_ip, conn.bench_port))
    syn = conn.accept()
    assert dut.finish(call).ret == 0
    dut.send(fd, b"from 5555")
    data = conn.expect(payload=b"from 5555")
    for pkt in (syn, data):
        assert (pkt[IP].src, pkt[TCP].sport) == (case.local_ip, 5555), pkt.summary()


# req: MUST-43
@case("RFC 9293 §3.9.1.1")
def test_open_with_a_foreign_local_address_is_refused(case: Case, dut: Dut) -> None:
    """The local address given to OPEN must be one of the host's: binding 192.0.2.77
    (the peer's subnet, not an address of the DUT) fails with EADDRNOTAVAIL and
    nothing is sent."""
    fd = dut.socket()
    with pytest.raises(DutError) as refused:
        dut.bind(fd, ("192.0.2.77", 5555))
    assert refused.value.errno == errno.EADDRNOTAVAIL
    assert case.sniff_any(0.2) is None


# req: MUST-44 MUST-45
@case("RFC 9293 §3.9.1.1")
def test_unbound_open_gets_a_source_address_and_keeps_it(case: Case, dut: Dut, conn: TcpConnection) -> None:
    """An active OPEN without a local address: the IP layer picks the source address
    before the first SYN (192.168.0.1, the address of the route to the peer), and
    every later segment (the handshake's ACK, data, the FIN) uses the same address."""
    fd = dut.socket()
    call = dut.start("connect", fd, (case.remote_ip, conn.bench_port))
    syn = conn.accept()
    assert dut.finish(call).ret == 0
    assert syn[IP].src == case.local_ip
    dut.send(fd, b"same source")
    conn.expect(payload=b"same source")
    conn.send("A")
    dut.shutdown(fd, socket.SHUT_WR)
    conn.expect(flags="FA")
    sources = {(p[IP].src, p[TCP].sport) for p in conn.received}
    assert sources == {(case.local_ip, syn[TCP].sport)}, sources


# req: MUST-42
@case("RFC 9293 §3.9.1.1")
def test_listen_on_a_port_while_an_open_from_it_is_in_syn_sent(case: Case, dut: Dut) -> None:
    """A connection from local port 8080 is in SYN-SENT; a second socket can still
    LISTEN on port 8080 (SO_REUSEADDR on both, as Linux asks), accept a connection
    from another peer port, and the first connection then completes."""
    active_flow = case.tcp()
    passive_flow = case.tcp()
    active = dut.socket()
    dut.setsockopt(active, SOL_SOCKET, SO_REUSEADDR, 1)
    dut.bind(active, (case.local_ip, 8080))
    dut.set_nonblocking(active)
    assert dut.connect_nonblocking(active, (case.remote_ip, active_flow.bench_port)) == errno.EINPROGRESS
    syn = active_flow.expect(flags="S")
    assert syn[TCP].sport == 8080
    listener = dut.socket()
    dut.setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, 1)
    dut.bind(listener, (case.local_ip, 8080))
    dut.listen(listener)
    passive_flow.connect_to(8080)
    accepted, _ = dut.accept(listener)
    active_flow.send("SA", options=[("MSS", 1000)])
    active_flow.expect(flags="A", ack=active_flow.seq)
    assert dut.so_error(active) == 0
    dut.send(active, b"active")
    active_flow.expect(payload=b"active")
    dut.send(accepted, b"passive")
    passive_flow.expect(payload=b"passive")
