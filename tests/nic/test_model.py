"""refstack.nic.model: endpoints, filters, handover, EF_NO_FAIL and the VNIC rings,
driven through the socket API on two stacks joined by a MemoryLink."""

from __future__ import annotations

import errno

import pytest

from refstack import socket as rs
from refstack.clock import VirtualClock
from refstack.config import Config
from refstack.link import MemoryLink
from refstack.runtime import Runtime, VirtualDriver
from refstack.simulation import Simulation
from refstack.stack import Stack
from refstack.wire.addresses import ipv4_addr
from refstack.wire.ipv4 import PROTO_UDP, build_ipv4
from refstack.wire.udp import build_udp

A_IP, B_IP, PORT = "10.0.0.1", "10.0.0.2", 8080


def pair(**options: object) -> tuple[Runtime, Runtime, Stack]:
    """Runtime A (Onload defaults) and runtime B whose stack runs with ``options``."""
    sim = Simulation(VirtualClock())
    a = Stack(name="a", seed=1)
    b = Stack(name="b", seed=2, config=Config().with_options(options))
    a.add_interface("eth0", A_IP, 24)
    b.add_interface("eth0", B_IP, 24)
    sim.add(a, "a")
    sim.add(b, "b")
    sim.connect("a", "b", MemoryLink(delay=0.01))
    driver = VirtualDriver(sim)
    return Runtime(a, driver), Runtime(b, driver), b


def udp(rt: Runtime, port: int | None = None, addr: str = "") -> rs.socket:
    s = rs.socket(rs.AF_INET, rs.SOCK_DGRAM, runtime=rt)
    if port is not None:
        s.bind((addr, port))
    return s


def echo_works(a: Runtime, server: rs.socket, port: int) -> bool:
    client = udp(a)
    client.sendto(b"ping", (B_IP, port))
    server.settimeout(1.0)
    data, _ = server.recvfrom(100)
    return data == b"ping"


# --- endpoints (EF_MAX_ENDPOINTS) ------------------------------------------------------------


def test_fifth_socket_is_handed_over_and_still_works_with_no_fail() -> None:
    a, b, stack = pair(EF_MAX_ENDPOINTS=4)
    socks = [udp(b, PORT + i) for i in range(5)]
    model = stack.onload
    assert model.endpoints_used == 4
    assert model.counters["udp_handover_socket"] == 1
    assert [s._file.core.onload.accelerated for s in socks] == [True] * 4 + [False]  # type: ignore[attr-defined]
    assert "EF_MAX_ENDPOINTS" in socks[4]._file.core.onload.reason  # type: ignore[attr-defined]
    assert echo_works(a, socks[4], PORT + 4)  # the kernel path serves it
    socks[0].close()
    assert model.endpoints_used == 3  # freed: the next socket is accelerated again
    assert udp(b)._file.core.onload.accelerated  # type: ignore[attr-defined]


def test_fifth_socket_fails_with_enomem_without_no_fail() -> None:
    _, b, stack = pair(EF_MAX_ENDPOINTS=4, EF_NO_FAIL=0)
    for _ in range(4):
        rs.socket(rs.AF_INET, rs.SOCK_STREAM, runtime=b)
    with pytest.raises(OSError) as caught:
        rs.socket(rs.AF_INET, rs.SOCK_STREAM, runtime=b)
    assert caught.value.errno == errno.ENOMEM
    assert stack.onload.counters["tcp_socket_no_endpoint"] == 1


def test_accepted_connection_without_an_endpoint_is_accepted_by_the_kernel() -> None:
    a, b, stack = pair(EF_MAX_ENDPOINTS=4)
    listener = rs.socket(rs.AF_INET, rs.SOCK_STREAM, runtime=b)
    listener.bind(("", PORT))
    listener.listen(8)
    fillers = [udp(b) for _ in range(3)]  # endpoints: listener + 3 = 4
    client = rs.socket(rs.AF_INET, rs.SOCK_STREAM, runtime=a)
    client.connect((B_IP, PORT))
    conn, _ = listener.accept()
    client.sendall(b"hello")
    assert conn.recv(10) == b"hello"  # it works, through the kernel path
    assert stack.onload.counters["tcp_accept_os"] == 1
    assert len(fillers) == 3


# --- filters (EF_MAX_FILTERS) ------------------------------------------------------------------


def test_bind_beyond_the_filter_table_hands_over_with_no_fail() -> None:
    a, b, stack = pair(EF_MAX_FILTERS=2)
    first, second = udp(b, PORT), udp(b, PORT + 1)
    third = udp(b, PORT + 2)
    model = stack.onload
    assert len(model.filters) == 2
    assert model.counters["udp_bind_no_filter"] == 1 and model.counters["sw_filter_insert_table_full"] == 1
    assert not third._file.core.onload.accelerated  # type: ignore[attr-defined]
    assert echo_works(a, third, PORT + 2)
    assert first and second


def test_bind_beyond_the_filter_table_fails_with_ebusy_without_no_fail() -> None:
    _, b, stack = pair(EF_MAX_FILTERS=2, EF_NO_FAIL=0)
    udp(b, PORT)
    udp(b, PORT + 1)
    with pytest.raises(OSError) as caught:
        udp(b, PORT + 2)
    assert caught.value.errno == errno.EBUSY
    assert len(stack.onload.filters) == 2


def test_listen_and_connect_beyond_the_filter_table_without_no_fail() -> None:
    _, b, _stack = pair(EF_MAX_FILTERS=1, EF_NO_FAIL=0)
    server = rs.socket(rs.AF_INET, rs.SOCK_STREAM, runtime=b)
    server.bind(("", PORT))
    server.listen(1)
    other = rs.socket(rs.AF_INET, rs.SOCK_STREAM, runtime=b)
    other.bind(("", PORT + 1))
    with pytest.raises(OSError) as caught:
        other.listen(1)
    assert caught.value.errno == errno.EBUSY
    assert other.getsockopt(rs.SOL_SOCKET, 30) == 0  # SO_ACCEPTCONN: it stayed CLOSED
    client = rs.socket(rs.AF_INET, rs.SOCK_STREAM, runtime=b)
    with pytest.raises(OSError) as caught:
        client.connect((A_IP, PORT))
    assert caught.value.errno == errno.EBUSY


def test_accepted_connections_share_the_listener_filter_and_close_frees_everything() -> None:
    a, b, stack = pair()
    listener = rs.socket(rs.AF_INET, rs.SOCK_STREAM, runtime=b)
    listener.bind(("", PORT))
    listener.listen(8)
    assert len(stack.onload.filters) == 1  # one wild filter per accelerated address (eth0)
    clients = []
    for _ in range(3):
        c = rs.socket(rs.AF_INET, rs.SOCK_STREAM, runtime=a)
        c.connect((B_IP, PORT))
        clients.append(c)
        listener.accept()
    assert len(stack.onload.filters) == 1
    assert stack.onload.endpoints_used == 4
    out = rs.socket(rs.AF_INET, rs.SOCK_STREAM, runtime=b)
    with pytest.raises(ConnectionRefusedError):
        out.connect((A_IP, 9))  # it held a full-match filter until the RST deleted the TCB
    assert len(stack.onload.filters) == 1 and stack.onload.endpoints_used == 4
    for c in clients:
        c.close()
    listener.close()
    b.driver.wait_until(lambda: stack.onload.endpoints_used == 0, 600.0)
    assert len(stack.onload.filters) == 0


def test_loopback_bind_and_ef_udp_0_are_handed_over() -> None:
    _, b, stack = pair()
    s = udp(b, PORT, addr="127.0.0.1")
    assert not s._file.core.onload.accelerated  # type: ignore[attr-defined]
    assert stack.onload.counters["udp_handover_bind"] == 1
    _, b2, stack2 = pair(EF_UDP=0)
    assert not udp(b2)._file.core.onload.accelerated  # type: ignore[attr-defined]
    assert stack2.onload.counters["udp_handover_socket"] == 1


# --- frames ------------------------------------------------------------------------------------


def test_received_frames_are_classified_by_the_filters() -> None:
    a, b, stack = pair()
    server = udp(b, PORT)
    assert echo_works(a, server, PORT)
    client = udp(a)
    client.sendto(b"nobody", (B_IP, PORT + 1))
    b.driver.wait_until(lambda: stack.onload.counters["no_match_pass_to_kernel_udp"] == 1, 1.0)
    assert stack.onload.counters["rx_accelerated"] == 1


def test_a_burst_larger_than_the_rx_ring_is_dropped_and_counted() -> None:
    stack = Stack(name="b", seed=2, config=Config().with_options(EF_RXQ_SIZE=512))
    stack.add_interface("tun0", B_IP, 24)
    here, peer = ipv4_addr(B_IP), ipv4_addr(A_IP)
    core = stack.udp.endpoint()
    core.bind(here, PORT)
    core.rcvbuf = 1 << 30
    for _ in range(600):  # no poll in between: the ring fills at 512
        stack.receive(build_ipv4(peer, here, PROTO_UDP, build_udp(peer, here, 5000, PORT, b"x")), 0.0)
    assert len(core.rx) == 512 and stack.onload.counters["rx_nodesc_drops"] == 88
    stack.poll(0.0)  # the stack polled: the descriptors are free again
    stack.receive(build_ipv4(peer, here, PROTO_UDP, build_udp(peer, here, 5000, PORT, b"y")), 0.0)
    assert len(core.rx) == 513


def test_a_poll_hands_the_driver_at_most_txq_size_frames() -> None:
    stack = Stack(name="b", seed=2, config=Config().with_options(EF_TXQ_SIZE=512))
    stack.add_interface("tun0", B_IP, 24)
    core = stack.udp.endpoint()
    for _ in range(600):
        core.sendto(b"x", (ipv4_addr(A_IP), 9), 0.0)
    first = stack.poll(0.0)
    assert len(first) == 512 and stack.onload.counters["tx_oflow"] == 1
    assert stack.next_deadline() == 0.0  # the rest is due at once
    assert len(stack.poll(0.0)) == 88


def test_mcast_join_handover_always() -> None:
    _, b, stack = pair(EF_MCAST_JOIN_HANDOVER=2)
    s = udp(b, PORT)
    mreq = rs.inet_aton("239.1.2.3") + rs.inet_aton(B_IP)
    s.setsockopt(rs.IPPROTO_IP, 35, mreq)  # IP_ADD_MEMBERSHIP
    assert not s._file.core.onload.accelerated  # type: ignore[attr-defined]
    assert stack.onload.counters["udp_handover_setsockopt"] == 1
