"""Packet buffers (Onload EF_MAX_PACKETS, EF_MAX_RX_PACKETS): never a handover.

A received frame needs an RX packet buffer, and payload waiting on a socket keeps its
buffers; with none free the frame is dropped (``memory_pressure_drops``) whatever
EF_NO_FAIL says: "Packet buffers exhausted: not a handover - memory pressure drops"
(shared/onload/FILTERS_AND_HANDOVER.md).  TCP recovers by retransmission.  A script
cannot read the model's counters, so these are Python cases; they run on refstack
only (Linux has no packet-buffer pool).  A UDP send short of TX buffers waits for
them, or fails with ENOBUFS (EF_UDP_SEND_NONBLOCK_NO_PACKETS_MODE=1).
"""

from __future__ import annotations

import errno
import socket

from conformance.case_api import Case, Dut, DutError, TcpConnection, case
from conformance.targets.refstack import RefstackSession

ONLOAD_ONLY = {"linux": "Onload packet buffers (EF_MAX_RX_PACKETS): no Linux equivalent"}
PORT = 8080
RX_BUFFERS = 16
TX_BUFFERS = 4
MSS = 1460


def onload_counters(case: Case) -> dict[str, int]:
    session = case.session
    assert isinstance(session, RefstackSession)
    return dict(session.stack.onload.counters)


def drain(dut: Dut, fd: int) -> list[int]:
    got = []
    while True:
        try:
            got.append(dut.recv(fd, 100)[0])
        except DutError as e:
            assert e.errno == errno.EAGAIN
            return got


def unread_datagrams_hold_every_rx_buffer(case: Case, dut: Dut) -> None:
    fd = dut.bind_udp(PORT)
    dut.set_nonblocking(fd)
    flow = case.udp(dut_port=PORT)
    for i in range(RX_BUFFERS + 4):
        flow.send(bytes([i]))
    assert drain(dut, fd) == list(range(RX_BUFFERS))
    counters = onload_counters(case)
    assert counters["memory_pressure_drops"] == 4
    assert not any(name.startswith("udp_handover") for name in counters)  # never a handover
    flow.send(b"\xff")  # read: the buffers are free again
    assert drain(dut, fd) == [0xFF]


# req: ONLOAD-EF_MAX_RX_PACKETS ONLOAD-EF_NO_FAIL
@case(
    "ONLOAD-EF_MAX_RX_PACKETS ONLOAD-EF_NO_FAIL",
    ef={"EF_MAX_RX_PACKETS": str(RX_BUFFERS), "EF_NO_FAIL": "1"},
    skip=ONLOAD_ONLY,
)
def test_udp_datagrams_beyond_rx_buffers_dropped_with_no_fail_1(case: Case, dut: Dut) -> None:
    """EF_MAX_RX_PACKETS=16, EF_NO_FAIL=1: 16 unread datagrams hold every RX buffer,
    the next 4 are dropped for memory pressure (not handed over); once read, the
    buffers take datagrams again."""
    unread_datagrams_hold_every_rx_buffer(case, dut)


# req: ONLOAD-EF_MAX_RX_PACKETS ONLOAD-EF_NO_FAIL
@case(
    "ONLOAD-EF_MAX_RX_PACKETS ONLOAD-EF_NO_FAIL",
    ef={"EF_MAX_RX_PACKETS": str(RX_BUFFERS), "EF_NO_FAIL": "0"},
    skip=ONLOAD_ONLY,
)
def test_udp_datagrams_beyond_rx_buffers_dropped_with_no_fail_0(case: Case, dut: Dut) -> None:
    """The same with EF_NO_FAIL=0: no call fails either; buffers are not a resource a
    socket is refused for."""
    unread_datagrams_hold_every_rx_buffer(case, dut)


# req: ONLOAD-EF_MAX_RX_PACKETS RFC9293-3.8.1
@case("ONLOAD-EF_MAX_RX_PACKETS RFC9293-3.8.1", ef={"EF_MAX_RX_PACKETS": "4"}, skip=ONLOAD_ONLY)
def test_tcp_segments_beyond_rx_buffers_recovered_by_retransmission(
    case: Case, dut: Dut, conn: TcpConnection
) -> None:
    """EF_MAX_RX_PACKETS=4: the application does not read; four in-order segments of
    one MSS fill the four RX buffers and are acknowledged, the fifth and sixth are
    dropped for memory pressure (the ACK stays at the fourth). Once the application
    reads, the bench retransmits them (RFC 9293 §3.8.1) and all of it arrives, intact."""
    fd, _ = dut.establish(conn)
    payload = bytes(i * 13 % 256 for i in range(6 * MSS))
    start = conn.seq
    for i in range(6):
        conn.send("PA", payload[i * MSS : (i + 1) * MSS])
    acks = [p for p in conn.drain(0.5) if p.haslayer("TCP")]
    assert max(p["TCP"].ack for p in acks) == start + 4 * MSS
    assert onload_counters(case)["memory_pressure_drops"] == 2
    data = b""
    while len(data) < 4 * MSS:
        data += dut.recv(fd, 65536)
    conn.drain(0.05)
    conn.seq = start + 4 * MSS
    conn.send("PA", payload[4 * MSS : 5 * MSS])
    conn.send("PA", payload[5 * MSS :])
    conn.expect(flags="A", ack=start + 6 * MSS)
    while len(data) < len(payload):
        data += dut.recv(fd, 65536)
    assert data == payload


def send_beyond_tx_buffers(case: Case, dut: Dut, code: int) -> None:
    fd = dut.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dut.bind(fd, (case.local_ip, PORT))
    dut.set_nonblocking(fd)
    for i in range(TX_BUFFERS):  # no poll in between: each frame holds its TX buffer
        dut.sendto(fd, bytes([i]), (case.remote_ip, 9000))
    try:
        dut.sendto(fd, b"\xff", (case.remote_ip, 9000))
        raise AssertionError("the send beyond the TX buffers succeeded")
    except DutError as e:
        assert e.errno == code
    flow = case.udp(dut_port=PORT, bench_port=9000)
    for i in range(TX_BUFFERS):
        flow.expect(payload=bytes([i]))
    assert onload_counters(case)["udp_send_no_pkt_buf"] == 1


# req: ONLOAD-EF_MAX_TX_PACKETS ONLOAD-EF_UDP_SEND_NONBLOCK_NO_PACKETS_MODE
@case(
    "ONLOAD-EF_MAX_TX_PACKETS ONLOAD-EF_UDP_SEND_NONBLOCK_NO_PACKETS_MODE",
    ef={"EF_MAX_TX_PACKETS": str(TX_BUFFERS)},
    skip=ONLOAD_ONLY,
)
def test_nonblocking_udp_send_beyond_tx_buffers_eagain(case: Case, dut: Dut) -> None:
    """EF_MAX_TX_PACKETS=4, EF_UDP_SEND_NONBLOCK_NO_PACKETS_MODE=0 (default): four
    datagrams sent with no poll in between hold the TX buffers; the fifth non-blocking
    send gets EAGAIN, as Linux short of send memory (Onload's mode 0 "mimic[s] Linux
    kernel stack behaviour and block[s] for packet buffers"); the four leave."""
    send_beyond_tx_buffers(case, dut, errno.EAGAIN)


# req: ONLOAD-EF_MAX_TX_PACKETS ONLOAD-EF_UDP_SEND_NONBLOCK_NO_PACKETS_MODE
@case(
    "ONLOAD-EF_MAX_TX_PACKETS ONLOAD-EF_UDP_SEND_NONBLOCK_NO_PACKETS_MODE",
    ef={"EF_MAX_TX_PACKETS": str(TX_BUFFERS), "EF_UDP_SEND_NONBLOCK_NO_PACKETS_MODE": "1"},
    skip=ONLOAD_ONLY,
)
def test_nonblocking_udp_send_beyond_tx_buffers_enobufs(case: Case, dut: Dut) -> None:
    """The same with EF_UDP_SEND_NONBLOCK_NO_PACKETS_MODE=1: "return error ENOBUFS"."""
    send_beyond_tx_buffers(case, dut, errno.ENOBUFS)
