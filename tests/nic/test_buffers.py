"""refstack.nic.buffers and its wiring: packet buffers (EF_MAX_PACKETS, EF_MAX_RX_PACKETS,
EF_MAX_TX_PACKETS, EF_UDP_SEND_NONBLOCK_NO_PACKETS_MODE).

Running out is never a handover, whatever EF_NO_FAIL says: received frames are dropped
(``memory_pressure_drops``), TCP recovers by retransmission, UDP sends wait or fail."""

from __future__ import annotations

import errno

import pytest

from refstack import socket as rs
from refstack.config import Config
from refstack.nic.buffers import BufferPool
from refstack.stack import Stack
from refstack.tools.stackdump import render_netif
from refstack.wire.addresses import ipv4_addr
from refstack.wire.ipv4 import PROTO_UDP, build_ipv4
from refstack.wire.udp import build_udp

from .test_model import A_IP, B_IP, PORT, pair, udp

HERE, PEER = ipv4_addr(B_IP), ipv4_addr(A_IP)


def datagram(payload: bytes, port: int = PORT) -> bytes:
    return build_ipv4(PEER, HERE, PROTO_UDP, build_udp(PEER, HERE, 5000, port, payload))


def lone_stack(**options: object) -> Stack:
    stack = Stack(name="b", seed=2, config=Config().with_options(options))
    stack.add_interface("tun0", B_IP, 24)
    return stack


# --- the pool ------------------------------------------------------------------------------
def test_pool_limits_each_path_and_the_whole() -> None:
    pool = BufferPool(max_packets=10, max_rx=8, max_tx=8)
    pool.set_rx(8)
    assert not pool.rx_room() and pool.tx_room(2) and not pool.tx_room(3)  # 8 + 3 > 10
    pool.set_tx(2)
    assert (pool.allocated, pool.free, pool.rx_high_water, pool.tx_high_water) == (10, 0, 8, 2)
    pool.set_rx(0)
    assert pool.rx_room(8) and not pool.rx_room(9) and pool.tx_room(6) and not pool.tx_room(7)


def test_the_pool_takes_the_configured_limits() -> None:
    stack = lone_stack(EF_MAX_PACKETS=4096)
    pool = stack.onload.buffers
    assert (pool.max_packets, pool.max_rx, pool.max_tx) == (4096, 3072, 3072)  # 3/4 each (Onload)
    assert (Stack().onload.buffers.max_rx, Stack().onload.buffers.max_tx) == (24576, 24576)


# --- RX: queued datagrams keep their buffers --------------------------------------------------
@pytest.mark.parametrize("no_fail", [1, 0])
def test_udp_datagrams_queued_on_a_socket_hold_rx_buffers(no_fail: int) -> None:
    """EF_MAX_RX_PACKETS=16: 16 unread datagrams hold every RX buffer; the next four are
    dropped for memory pressure (a poll between frames: not the RX ring); reading two
    frees two. EF_NO_FAIL changes nothing: buffers are never a handover."""
    stack = lone_stack(EF_MAX_RX_PACKETS=16, EF_NO_FAIL=no_fail)
    core = stack.udp.endpoint()
    core.bind(HERE, PORT)
    core.rcvbuf = 1 << 30
    for i in range(20):
        stack.receive(datagram(bytes([i])), 0.0)
        stack.poll(0.0)
    assert [d for d, _ in core.rx] == [bytes([i]) for i in range(16)]
    assert dict(stack.onload.counters) == {"rx_accelerated": 16, "memory_pressure_drops": 4}
    assert stack.onload.rx_held() == 16 and stack.onload.buffers.rx_high_water == 16
    core.recvfrom()
    core.recvfrom()
    for i in range(20, 23):
        stack.receive(datagram(bytes([i])), 0.0)
    assert [d for d, _ in core.rx][-2:] == [b"\x14", b"\x15"]
    assert stack.onload.counters["memory_pressure_drops"] == 5


def test_frames_nobody_keeps_free_their_buffer_at_once() -> None:
    """A datagram to no socket is handled (ICMP port unreachable) and its buffer freed:
    any number of them pass a pool of 4 RX buffers."""
    stack = lone_stack(EF_MAX_RX_PACKETS=4)
    for _ in range(50):
        stack.receive(datagram(b"x", port=9), 0.0)
        stack.poll(0.0)
    assert stack.onload.counters["memory_pressure_drops"] == 0
    assert stack.counters["udp_rx_no_port"] == 50


def test_a_handed_over_socket_uses_the_kernels_memory() -> None:
    stack = lone_stack(EF_MAX_RX_PACKETS=4, EF_UDP=0)
    core = stack.udp.endpoint()
    core.bind(HERE, PORT)
    core.rcvbuf = 1 << 30
    for _ in range(10):
        stack.receive(datagram(b"x"), 0.0)
    assert len(core.rx) == 10 and stack.onload.counters["memory_pressure_drops"] == 0


# --- RX: TCP recovers by retransmission --------------------------------------------------------
def test_tcp_burst_that_exhausts_rx_buffers_completes_intact() -> None:
    """EF_MAX_RX_PACKETS=8 on the receiver, which does not read while 300 kB arrive:
    its receive queue holds at most 8 MSS-sized buffers, the rest of each flight is
    dropped for memory pressure (but for a segment that fills the hole ahead of the
    out-of-order queue, which Onload's pressure reserve takes); once the application
    reads, retransmissions bring everything, in order and intact."""
    a, b, stack = pair(EF_MAX_RX_PACKETS=8)
    listener = rs.socket(rs.AF_INET, rs.SOCK_STREAM, runtime=b)
    listener.bind(("", PORT))
    listener.listen(1)
    client = rs.socket(rs.AF_INET, rs.SOCK_STREAM, runtime=a)
    client.setsockopt(rs.SOL_SOCKET, rs.SO_SNDBUF, 1 << 20)
    client.connect((B_IP, PORT))
    server, _ = listener.accept()
    payload = bytes(i * 7 % 251 for i in range(300_000))
    client.sendall(payload)  # into the send buffer
    b.driver.wait_until(lambda: stack.onload.counters["memory_pressure_drops"] > 0, 5.0)
    assert stack.onload.rx_held() <= 8
    got = bytearray()
    server.settimeout(120.0)
    while len(got) < len(payload):
        chunk = server.recv(65536)
        assert chunk
        got += chunk
    assert bytes(got) == payload
    assert stack.onload.counters["memory_pressure_drops"] > 0
    # beyond the 8, only segments that filled a hole, from the pressure reserve
    reserve = stack.onload.counters["memory_pressure_pool_used"]
    assert reserve > 0 and stack.onload.buffers.rx_high_water <= 8 + reserve
    assert client._file.core.total_retrans > 0  # type: ignore[attr-defined]


# --- TX ------------------------------------------------------------------------------------------
def test_frames_in_the_tx_ring_hold_tx_buffers_until_a_poll() -> None:
    stack = lone_stack(EF_MAX_TX_PACKETS=4)
    core = stack.udp.endpoint()
    for _ in range(4):
        core.sendto(b"x", (PEER, 9), 0.0)
    assert stack.onload.tx_held() == 4 and not stack.onload.buffers.tx_room()
    core.sendto(b"y", (PEER, 9), 0.0)  # the core itself: dropped at the TX ring (no socket call)
    assert stack.onload.counters["memory_pressure_tx_drops"] == 1
    assert len(stack.poll(0.0)) == 4 and stack.onload.tx_held() == 0


@pytest.mark.parametrize(("mode", "code"), [(0, errno.EAGAIN), (1, errno.ENOBUFS)])
def test_nonblocking_udp_send_short_of_tx_buffers(mode: int, code: int) -> None:
    """EF_MAX_TX_PACKETS=4: four datagrams fill the TX buffers until the next poll; the
    fifth non-blocking send fails: EAGAIN by default (as Linux short of send memory),
    ENOBUFS with EF_UDP_SEND_NONBLOCK_NO_PACKETS_MODE=1."""
    _, b, stack = pair(EF_MAX_TX_PACKETS=4, EF_UDP_SEND_NONBLOCK_NO_PACKETS_MODE=mode)
    s = udp(b)
    s.setblocking(False)
    for _ in range(4):
        s.sendto(b"x", (A_IP, 9))
    with pytest.raises(OSError) as caught:
        s.sendto(b"x", (A_IP, 9))
    assert caught.value.errno == code
    assert stack.onload.counters["udp_send_no_pkt_buf"] == 1


def test_blocking_udp_send_waits_for_tx_buffers_and_everything_leaves() -> None:
    a, b, stack = pair(EF_MAX_TX_PACKETS=4)
    server = udp(a, PORT)
    server.setblocking(False)
    s = udp(b)
    for i in range(10):
        s.sendto(bytes([i]), (A_IP, PORT))
    got = []
    server.settimeout(1.0)
    for _ in range(10):
        got.append(server.recv(10))
    assert got == [bytes([i]) for i in range(10)]
    assert stack.onload.buffers.tx_high_water <= 4
    assert stack.onload.counters["memory_pressure_tx_drops"] == 0


def test_a_fragmented_datagram_needs_a_buffer_per_fragment() -> None:
    _, b, _stack = pair(EF_MAX_TX_PACKETS=2, EF_UDP_SEND_NONBLOCK_NO_PACKETS_MODE=1)
    s = udp(b)
    with pytest.raises(OSError) as caught:
        s.sendto(bytes(3000), (A_IP, 9))  # three fragments at MTU 1500
    assert caught.value.errno == errno.ENOBUFS
    assert s.sendto(bytes(2900), (A_IP, 9)) == 2900  # two


# --- stackdump ------------------------------------------------------------------------------------
def test_stackdump_netif_shows_the_pool() -> None:
    stack = lone_stack(EF_MAX_PACKETS=2048, EF_TXQ_SIZE=512)
    core = stack.udp.endpoint()
    core.bind(HERE, PORT)
    for _ in range(3):
        stack.receive(datagram(b"x"), 0.0)
    for _ in range(600):
        core.sendto(b"y", (PEER, 9), 0.0)
    lines = render_netif(stack).splitlines()
    assert [line for line in lines if line.startswith("  pkt_bufs:")] == [
        "  pkt_bufs: max=2048 alloc=603 free=1445 async=0",
        "  pkt_bufs: rx=3 rx_ring=3 rx_queued=3 pressure_pool=0 max_rx=1536 high_water=3",
        "  pkt_bufs: tx=600 tx_ring=512 tx_oflow=88 max_tx=1536 high_water=600",
    ]


def test_tcp_segments_without_a_tx_buffer_are_sent_again() -> None:
    """EF_MAX_TX_PACKETS=4 on the sender: of each flight, the segments beyond the four
    TX buffers are dropped before the ring (memory_pressure_tx_drops); TCP sends them
    again, and the transfer completes intact."""
    a, b, stack = pair(EF_MAX_TX_PACKETS=4)
    listener = rs.socket(rs.AF_INET, rs.SOCK_STREAM, runtime=a)
    listener.bind(("", PORT))
    listener.listen(1)
    client = rs.socket(rs.AF_INET, rs.SOCK_STREAM, runtime=b)
    client.setsockopt(rs.SOL_SOCKET, rs.SO_SNDBUF, 1 << 20)
    client.connect((A_IP, PORT))
    server, _ = listener.accept()
    payload = bytes(i * 11 % 253 for i in range(100_000))
    client.sendall(payload)
    got = bytearray()
    server.settimeout(120.0)
    while len(got) < len(payload):
        got += server.recv(65536)
    assert bytes(got) == payload
    assert stack.onload.counters["memory_pressure_tx_drops"] > 0
    assert stack.onload.buffers.tx_high_water <= 4
