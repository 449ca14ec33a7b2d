"""The VNIC's descriptor rings (Onload EF_RXQ_SIZE, EF_TXQ_SIZE).

Frames that arrive between two polls of the stack fill the RX ring; beyond
EF_RXQ_SIZE of them the NIC drops the rest (``rx_nodesc_drops``), and TCP recovers
by retransmission.  A burst needs many frames with no poll in between, which neither
a ``.pkt`` script nor the case API's ``inject`` can say (the refstack target polls
after each injected packet), so these cases hand the burst to the refstack session's
stack directly (``Stack.receive`` per frame, then one poll): they are Python cases
with the case API that run on refstack only.  The TX case needs no such access: a
burst of sends between two polls is what a run of ``sendto`` calls already is.
"""

from __future__ import annotations

import errno
import socket

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.packet import Raw

from conformance.case_api import Case, Dut, DutError, TcpConnection, case, case_name, spec_of
from conformance.target import CaseConfig
from conformance.targets.refstack import INTERFACE, RefstackSession

ONLOAD_ONLY = {"linux": "Onload VNIC ring (EF_RXQ_SIZE/EF_TXQ_SIZE): no Linux equivalent"}
PORT = 8080
RING = 512  # the smallest EF_RXQ_SIZE / EF_TXQ_SIZE Onload offers
BURST = 600


@pytest.fixture
def case_config(request: pytest.FixtureRequest) -> CaseConfig:
    """As conformance.case_api's, with the ring sizes these cases need."""
    return CaseConfig(
        name=case_name(request.node),
        sysctls=spec_of(getattr(request, "function", None)).sysctls,
        ef_options=(("EF_RXQ_SIZE", str(RING)), ("EF_TXQ_SIZE", str(RING))),
    )


def burst(case: Case, packets: list[bytes]) -> None:
    """Deliver ``packets`` to the DUT's NIC all at once: no poll of the stack between
    them (refstack only), then let the stack poll."""
    session = case.session
    assert isinstance(session, RefstackSession)
    now = case.now()
    for raw in packets:
        session.stack.receive(raw, now, INTERFACE)
    case.note("in", f"burst of {len(packets)} frames with no poll in between")
    case.sleep(0)


def rx_drops(case: Case) -> int:
    session = case.session
    assert isinstance(session, RefstackSession)
    return session.stack.onload.counters["rx_nodesc_drops"]


# req: ONLOAD-EF_RXQ_SIZE
@case("ONLOAD-EF_RXQ_SIZE", skip=ONLOAD_ONLY)
def test_udp_burst_beyond_rx_ring_tail_dropped(case: Case, dut: Dut) -> None:
    """EF_RXQ_SIZE=512: of 600 datagrams that arrive between two polls, the first 512
    take the ring's descriptors and are delivered in order; the last 88 are dropped
    by the NIC. After the poll the ring is free again: the next datagram arrives."""
    fd = dut.bind_udp(PORT)
    dut.set_nonblocking(fd)
    frames = [
        bytes(
            IP(src=case.remote_ip, dst=case.local_ip)
            / UDP(sport=40000, dport=PORT)
            / Raw(i.to_bytes(2, "big"))
        )
        for i in range(BURST)
    ]
    burst(case, frames)
    got = []
    while True:
        try:
            got.append(int.from_bytes(dut.recv(fd, 100), "big"))
        except DutError as e:
            assert e.errno == errno.EAGAIN
            break
    assert got == list(range(RING))
    assert rx_drops(case) == BURST - RING
    flow = case.udp(dut_port=PORT)
    flow.send(b"after")
    assert dut.recv(fd, 100) == b"after"


# req: ONLOAD-EF_RXQ_SIZE RFC9293-3.8.1
@case("ONLOAD-EF_RXQ_SIZE RFC9293-3.8.1", skip=ONLOAD_ONLY)
def test_tcp_burst_beyond_rx_ring_recovered_by_retransmission(
    case: Case, dut: Dut, conn: TcpConnection
) -> None:
    """EF_RXQ_SIZE=512: 600 in-order TCP segments of 10 bytes arrive between two
    polls; the NIC drops the last 88, the DUT acknowledges the 512 it got (5120
    bytes), and once the bench retransmits from there (RFC 9293 §3.8.1) all 6000
    bytes reach the application, in order."""
    fd, _ = dut.establish(conn)
    payload = (bytes(range(256)) * 24)[: 10 * BURST]
    start = conn.seq
    assert conn.ack is not None
    frames = [
        bytes(
            IP(src=case.remote_ip, dst=case.local_ip)
            / TCP(
                sport=conn.bench_port, dport=PORT, flags="A", seq=start + 10 * i, ack=conn.ack, window=65535
            )
            / Raw(payload[10 * i : 10 * i + 10])
        )
        for i in range(BURST)
    ]
    burst(case, frames)
    conn.expect(flags="A", ack=start + 10 * RING)
    assert rx_drops(case) == BURST - RING
    conn.drain(0.05)
    conn.seq = start + 10 * RING
    conn.send("PA", payload[10 * RING :])
    conn.expect(flags="A", ack=start + 10 * BURST)
    data = b""
    while len(data) < len(payload):
        data += dut.recv(fd, 65536)
    assert data == payload


# req: ONLOAD-EF_TXQ_SIZE RFC768-Interface
@case("ONLOAD-EF_TXQ_SIZE RFC768-Interface")
def test_udp_send_burst_beyond_tx_ring_all_leave(case: Case, dut: Dut) -> None:
    """EF_TXQ_SIZE=512: 600 datagrams sent with no poll in between do not fit the TX
    ring; the rest wait in the stack's overflow queue (tx_oflow) and leave at the next
    poll: all 600 reach the wire, in order. (Linux: the same burst leaves the host
    too, through the qdisc.)"""
    fd = dut.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dut.bind(fd, (case.local_ip, PORT))
    for i in range(BURST):
        dut.sendto(fd, i.to_bytes(2, "big"), (case.remote_ip, 9000))
    flow = case.udp(dut_port=PORT, bench_port=9000)
    for i in range(BURST):
        flow.expect(payload=i.to_bytes(2, "big"))
