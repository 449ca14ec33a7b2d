"""RFC 9293 §3.9.2 (MUST-50): TCP ignores the IP options it does not understand.

Python cases: a .pkt line cannot put an IP option on an inbound packet.  The source
route, record route and timestamp options, which TCP is asked to process (MUST-51..53,
SHLD-24), are not checked: Linux drops source-routed packets by default
(accept_source_route = 0).
"""

from __future__ import annotations

from scapy.layers.inet import IPOption, IPOption_NOP, IPOption_Router_Alert

from conformance.case_api import Dut, TcpConnection, case

# Option type 0x9e: copied flag set, class 0, number 30 (RFC 4727 experimental), length 4.
_EXPERIMENTAL = IPOption(b"\x9e\x04\x00\x00")


# req: MUST-50
@case("RFC 9293 §3.9.2")
def test_data_with_an_unknown_ip_option_is_accepted(dut: Dut, conn: TcpConnection) -> None:
    """A data segment whose IP header carries an option of an unassigned type: TCP
    ignores it, acknowledges the data and delivers it."""
    fd, _ = dut.establish(conn)
    sent = conn.send("PA", b"with an IP option", ip={"options": [_EXPERIMENTAL]})
    assert sent.ihl == 6, sent.ihl
    conn.expect(flags="A", ack=conn.seq)
    assert dut.recv(fd) == b"with an IP option"


# req: MUST-50
@case("RFC 9293 §3.9.2")
def test_syn_with_router_alert_option_is_answered(dut: Dut, conn: TcpConnection) -> None:
    """A SYN whose IP header carries Router Alert and a NOP (options for routers, which
    mean nothing to TCP): the listener answers with a SYN-ACK as to any SYN, and the
    connection opens."""
    listen_fd = dut.listen_tcp(8080)
    conn.dut_port = 8080
    options = [IPOption_Router_Alert(), IPOption_NOP(), IPOption_NOP(), IPOption_NOP(), IPOption_NOP()]
    sent = conn.send("S", options=[("MSS", 1000)], ip={"options": options})
    assert sent.ihl == 7, sent.ihl
    conn.expect(flags="SA", ack=conn.seq)
    conn.send("A")
    fd, _ = dut.accept(listen_fd)
    dut.send(fd, b"open")
    conn.expect(payload=b"open")
