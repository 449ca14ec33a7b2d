"""refstack.socket over UDP: two stacks on one wire, virtual time, Linux's errnos.

Each test builds stack A (10.0.0.1) and stack B (10.0.0.2) joined by a 125 ms
MemoryLink, with one Runtime per stack sharing a VirtualDriver.  Times are exact:
a datagram sent at t=0 arrives at t=0.125, a port unreachable comes back at 0.25.
"""

from __future__ import annotations

import errno
import re
import socket as pysocket
import struct

import pytest

from refstack import runtime as rt_mod
from refstack import socket as rs
from refstack.runtime import BlockedForeverError, VirtualDriver
from refstack.select import POLLERR, POLLIN, POLLOUT, POLLRDHUP, poll
from tests.api.harness import A_IP, B_IP, DELAY, Net, errno_of


# --- datagrams between the two stacks -------------------------------------------------------------
def test_sendto_then_blocking_recvfrom_returns_at_the_arrival_instant(net: Net) -> None:
    server = net.udp(net.b, ("", 5000))
    client = net.udp(net.a)
    assert client.sendto(b"hello", (B_IP, 5000)) == 5
    data, source = server.recvfrom(100)
    assert data == b"hello"
    assert net.now() == DELAY
    assert source == (A_IP, client.getsockname()[1])


def test_first_sendto_binds_an_ephemeral_port_in_ip_local_port_range(net: Net) -> None:
    client = net.udp(net.a)
    assert client.getsockname() == ("0.0.0.0", 0)
    client.sendto(b"x", (B_IP, 9))
    host, port = client.getsockname()
    assert host == "0.0.0.0"
    assert 32768 <= port <= 60999
    bound = net.udp(net.a, (A_IP, 0))
    assert bound.getsockname()[0] == A_IP
    assert 32768 <= bound.getsockname()[1] <= 60999


def test_connect_send_recv_both_ways_and_the_names(net: Net) -> None:
    a = net.udp(net.a)
    b = net.udp(net.b, ("", 5000))
    a.connect((B_IP, 5000))
    # connect() of an unbound socket binds it to the route's source address, as Linux.
    assert a.getsockname()[0] == A_IP
    assert a.getpeername() == (B_IP, 5000)
    a.send(b"ping")
    data, source = b.recvfrom(10)
    assert data == b"ping"
    b.connect(source)
    assert b.getpeername() == a.getsockname()
    b.send(b"pong")
    assert a.recv(10) == b"pong"
    assert net.now() == 2 * DELAY


def test_a_connected_socket_hears_only_its_peer(net: Net) -> None:
    b = net.udp(net.b, ("", 5000))
    peer = net.udp(net.a, (A_IP, 4000))
    stranger = net.udp(net.a, (A_IP, 4001))
    b.connect((A_IP, 4000))
    stranger.sendto(b"stranger", (B_IP, 5000))
    peer.sendto(b"peer", (B_IP, 5000))
    assert b.recv(100) == b"peer"
    b.setblocking(False)
    with pytest.raises(BlockingIOError):
        b.recv(100)


def test_bind_conflicts_give_eaddrinuse_unless_both_set_so_reuseaddr(net: Net) -> None:
    first = net.udp(net.b, ("", 5000))
    with pytest.raises(OSError) as excinfo:
        net.udp(net.b, (B_IP, 5000))
    assert errno_of(excinfo) == errno.EADDRINUSE
    assert str(excinfo.value) == "[Errno 98] Address already in use"
    first.close()
    one, two = net.udp(net.b), net.udp(net.b)
    for s in (one, two):
        s.setsockopt(rs.SOL_SOCKET, rs.SO_REUSEADDR, 1)
        assert s.getsockopt(rs.SOL_SOCKET, rs.SO_REUSEADDR) == 1
        s.bind(("", 5000))
    with pytest.raises(OSError) as excinfo:
        one.bind(("", 5001))
    assert errno_of(excinfo) == errno.EINVAL  # already bound


def test_bind_to_an_address_of_another_host_is_eaddrnotavail(net: Net) -> None:
    with pytest.raises(OSError) as excinfo:
        net.udp(net.a, (B_IP, 0))
    assert errno_of(excinfo) == errno.EADDRNOTAVAIL


def test_broadcast_needs_so_broadcast(net: Net) -> None:
    listener = net.udp(net.b, ("", 6000))
    sender = net.udp(net.a)
    with pytest.raises(PermissionError) as excinfo:
        sender.sendto(b"all", ("10.0.0.255", 6000))
    assert errno_of(excinfo) == errno.EACCES
    assert sender.getsockopt(rs.SOL_SOCKET, rs.SO_BROADCAST) == 0
    sender.setsockopt(rs.SOL_SOCKET, rs.SO_BROADCAST, 1)
    assert sender.getsockopt(rs.SOL_SOCKET, rs.SO_BROADCAST) == 1
    sender.sendto(b"all", ("10.0.0.255", 6000))
    assert listener.recvfrom(10) == (b"all", (A_IP, sender.getsockname()[1]))


def test_send_without_a_destination_is_edestaddrreq(net: Net) -> None:
    s = net.udp(net.a)
    with pytest.raises(OSError) as excinfo:
        s.send(b"x")
    assert errno_of(excinfo) == errno.EDESTADDRREQ


def test_emsgsize_beyond_the_udp_maximum_and_with_ip_pmtudisc_do(net: Net) -> None:
    s = net.udp(net.a)
    with pytest.raises(OSError) as excinfo:
        s.sendto(bytes(65508), (B_IP, 9))
    assert errno_of(excinfo) == errno.EMSGSIZE
    assert s.getsockopt(rs.IPPROTO_IP, rs.IP_MTU_DISCOVER) == rs.IP_PMTUDISC_WANT
    s.sendto(bytes(1473), (B_IP, 9))  # WANT: fragmented locally
    s.setsockopt(rs.IPPROTO_IP, rs.IP_MTU_DISCOVER, rs.IP_PMTUDISC_DO)
    assert s.getsockopt(rs.IPPROTO_IP, rs.IP_MTU_DISCOVER) == rs.IP_PMTUDISC_DO
    s.sendto(bytes(1472), (B_IP, 9))  # 1472 + 8 + 20 = 1500 fits the MTU
    with pytest.raises(OSError) as excinfo:
        s.sendto(bytes(1473), (B_IP, 9))
    assert errno_of(excinfo) == errno.EMSGSIZE
    with pytest.raises(OSError) as excinfo:
        s.setsockopt(rs.IPPROTO_IP, rs.IP_MTU_DISCOVER, 6)
    assert errno_of(excinfo) == errno.EINVAL


def test_port_unreachable_becomes_econnrefused_on_the_connected_socket(net: Net) -> None:
    s = net.udp(net.a)
    s.connect((B_IP, 9999))
    s.send(b"anyone?")
    with pytest.raises(ConnectionRefusedError) as excinfo:
        s.recv(10)  # the ICMP error wakes the blocked reader
    assert errno_of(excinfo) == errno.ECONNREFUSED
    assert str(excinfo.value) == "[Errno 111] Connection refused"
    assert net.now() == 2 * DELAY
    s.settimeout(0.5)
    with pytest.raises(TimeoutError):
        s.recv(10)  # reported once: the error is cleared


def test_port_unreachable_is_pending_as_so_error_and_pollerr(net: Net) -> None:
    s = net.udp(net.a)
    s.connect((B_IP, 9999))
    s.send(b"anyone?")
    p = poll()
    p.register(s, POLLOUT)
    assert p.poll(0) == [(s.fileno(), POLLOUT)]
    net.sim.run_for(1.0)
    assert p.poll(0) == [(s.fileno(), POLLOUT | POLLERR)]  # POLLERR although not asked for
    assert s.getsockopt(rs.SOL_SOCKET, rs.SO_ERROR) == errno.ECONNREFUSED
    assert s.getsockopt(rs.SOL_SOCKET, rs.SO_ERROR) == 0  # read and cleared
    assert p.poll(0) == [(s.fileno(), POLLOUT)]


# --- blocking, timeouts and non-blocking --------------------------------------------------------
def test_blocking_recv_times_out_after_exactly_the_socket_timeout(net: Net) -> None:
    s = net.udp(net.b, ("", 5000))
    net.sim.run_for(0.5)
    s.settimeout(0.75)
    assert s.gettimeout() == 0.75
    assert s.getblocking()
    with pytest.raises(TimeoutError) as excinfo:
        s.recv(10)
    assert excinfo.value.args == ("timed out",)
    assert rs.timeout is TimeoutError
    assert net.now() == 1.25


def test_a_datagram_before_the_timeout_ends_the_wait_at_its_arrival(net: Net) -> None:
    server = net.udp(net.b, ("", 5000))
    net.udp(net.a).sendto(b"soon", (B_IP, 5000))
    server.settimeout(10.0)
    assert server.recv(10) == b"soon"
    assert net.now() == DELAY


def test_non_blocking_recv_raises_eagain_without_moving_time(net: Net) -> None:
    s = net.udp(net.b, ("", 5000))
    s.setblocking(False)
    assert s.gettimeout() == 0.0
    assert not s.getblocking()
    with pytest.raises(BlockingIOError) as excinfo:
        s.recv(10)
    assert errno_of(excinfo) == errno.EAGAIN
    s.setblocking(True)
    assert s.gettimeout() is None
    with pytest.raises(BlockingIOError):
        s.recvfrom(10, rs.MSG_DONTWAIT)
    assert net.now() == 0.0
    nb = rs.socket(rs.AF_INET, rs.SOCK_DGRAM | rs.SOCK_NONBLOCK, runtime=net.a)
    assert nb.type == rs.SOCK_DGRAM
    assert nb.gettimeout() == 0.0


def test_a_wait_nothing_can_end_fails_instead_of_hanging(net: Net) -> None:
    s = net.udp(net.b, ("", 5000))
    with pytest.raises(BlockedForeverError, match=re.escape("recv on <refstack.socket.socket fd=3")):
        s.recv(10)


def test_settimeout_validates_like_python(net: Net) -> None:
    s = net.udp(net.a)
    with pytest.raises(ValueError, match="Timeout value out of range"):
        s.settimeout(-1)
    with pytest.raises(TypeError):
        s.settimeout("soon")  # type: ignore[arg-type]


# --- datagram boundaries -----------------------------------------------------------------------
def test_a_short_read_truncates_the_datagram_and_the_rest_is_lost(net: Net) -> None:
    server = net.udp(net.b, ("", 5000))
    client = net.udp(net.a)
    for payload in (b"0123456789", b"abcdefghij", b"ABCDEFGHIJ", b"klmnopqrst"):
        client.sendto(payload, (B_IP, 5000))
    assert server.recv(4) == b"0123"
    assert server.recv(4, rs.MSG_PEEK) == b"abcd"  # peeking keeps the datagram
    data, anc, flags, source = server.recvmsg(4)
    assert (data, anc, flags, source) == (b"abcd", [], rs.MSG_TRUNC, (A_IP, client.getsockname()[1]))
    buf = bytearray(8)
    assert server.recv_into(buf, 3) == 3
    assert buf == b"ABC" + bytes(5)
    assert server.recvfrom_into(buf) == (8, (A_IP, client.getsockname()[1]))
    assert buf == b"klmnopqr"
    with pytest.raises(BlockingIOError):
        server.recv(100, rs.MSG_DONTWAIT)


def test_empty_datagrams_and_recv_of_zero_bytes(net: Net) -> None:
    server = net.udp(net.b, ("", 5000))
    client = net.udp(net.a)
    assert server.recv(0) == b""  # CPython answers at once
    client.sendto(b"", (B_IP, 5000))
    assert server.recvfrom(10) == (b"", (A_IP, client.getsockname()[1]))
    with pytest.raises(ValueError, match="negative buffersize"):
        server.recv(-1)
    with pytest.raises(ValueError, match="buffer too small"):
        server.recv_into(bytearray(2), 3)


def test_sendmsg_joins_buffers_and_refuses_ancillary_data(net: Net) -> None:
    server = net.udp(net.b, ("", 5000))
    client = net.udp(net.a)
    assert client.sendmsg([b"ab", memoryview(b"cd"), bytearray(b"ef")], [], 0, (B_IP, 5000)) == 6
    assert server.recv(10) == b"abcdef"
    with pytest.raises(OSError) as excinfo:
        client.sendmsg([b"x"], [(rs.SOL_SOCKET, 1, b"\0" * 4)], 0, (B_IP, 5000))
    assert errno_of(excinfo) == errno.EINVAL


def test_sendto_with_flags_and_sendall(net: Net) -> None:
    server = net.udp(net.b, ("", 5000))
    client = net.udp(net.a)
    assert client.sendto(b"one", rs.MSG_DONTWAIT, (B_IP, 5000)) == 3
    client.connect((B_IP, 5000))
    assert client.sendall(b"two") is None
    assert server.recv(10) == b"one"
    assert server.recv(10) == b"two"
    with pytest.raises(OSError) as excinfo:
        client.send(b"x", rs.MSG_OOB)
    assert errno_of(excinfo) == errno.EOPNOTSUPP


# --- shutdown ----------------------------------------------------------------------------------
def test_shutdown_of_a_udp_socket_follows_linux(net: Net) -> None:
    loose = net.udp(net.a)
    with pytest.raises(OSError) as excinfo:
        loose.shutdown(rs.SHUT_RD)
    assert errno_of(excinfo) == errno.ENOTCONN
    p = poll()
    p.register(loose, POLLIN | POLLOUT | POLLRDHUP)
    assert p.poll(0) == [(loose.fileno(), POLLIN | POLLOUT | POLLRDHUP)]  # marked shut all the same
    s = net.udp(net.a)
    s.connect((B_IP, 5000))
    with pytest.raises(OSError) as excinfo:
        s.shutdown(7)
    assert errno_of(excinfo) == errno.EINVAL
    s.shutdown(rs.SHUT_WR)
    with pytest.raises(BrokenPipeError):
        s.send(b"x")
    s.shutdown(rs.SHUT_RD)
    with pytest.raises(BlockingIOError):
        s.recv(10, rs.MSG_DONTWAIT)
    assert s.recv(10) == b""  # a blocking reader is released with 0 bytes
    assert net.now() == 0.0
    s.settimeout(0.5)
    with pytest.raises(TimeoutError):
        s.recv(10)  # CPython polls (readable), recv says EAGAIN, until the timeout
    assert net.now() == 0.5


# --- names, closing, descriptors -----------------------------------------------------------------
def test_getpeername_of_an_unconnected_socket_is_enotconn(net: Net) -> None:
    s = net.udp(net.a)
    with pytest.raises(OSError) as excinfo:
        s.getpeername()
    assert errno_of(excinfo) == errno.ENOTCONN
    assert repr(s) == "<refstack.socket.socket fd=3, family=2, type=2, proto=0, laddr=('0.0.0.0', 0)>"


def test_close_is_idempotent_and_every_call_after_it_is_ebadf(net: Net) -> None:
    s = net.udp(net.a, ("", 5000))
    s.close()
    s.close()
    assert s.fileno() == -1
    assert repr(s) == "<refstack.socket.socket [closed] fd=-1, family=2, type=2, proto=0>"
    calls = [
        lambda: s.recv(1),
        lambda: s.sendto(b"x", (B_IP, 9)),
        lambda: s.bind(("", 0)),
        s.getsockname,
        lambda: s.setsockopt(rs.SOL_SOCKET, rs.SO_REUSEADDR, 1),
        lambda: s.settimeout(1.0),
        lambda: s.shutdown(rs.SHUT_RDWR),
    ]
    for call in calls:
        with pytest.raises(OSError) as excinfo:
            call()
        assert errno_of(excinfo) == errno.EBADF
    net.udp(net.a, ("", 5000))  # the port was released


def test_descriptors_are_the_lowest_free_number_per_runtime(net: Net) -> None:
    s3, s4, s5 = net.udp(net.a), net.udp(net.a), net.udp(net.a)
    assert [s.fileno() for s in (s3, s4, s5)] == [3, 4, 5]
    assert net.udp(net.b).fileno() == 3  # another runtime, another table
    s4.close()
    assert net.udp(net.a).fileno() == 4
    s3.close()
    s5.close()
    assert [net.udp(net.a).fileno() for _ in range(3)] == [3, 5, 6]
    with rs.socket(rs.AF_INET, rs.SOCK_DGRAM, runtime=net.a) as ctx:
        assert ctx.fileno() == 7
    assert ctx.fileno() == -1
    assert sorted(net.a.fds()) == [3, 4, 5, 6]


def test_detach_dup_and_fileno_constructor(net: Net) -> None:
    s = net.udp(net.b, ("", 5000))
    fd = s.detach()
    assert fd == 3 and s.fileno() == -1
    again = rs.socket(fileno=fd, runtime=net.b)
    assert again.getsockname() == ("0.0.0.0", 5000)
    copy = again.dup()
    assert copy.fileno() == 4
    again.close()
    net.udp(net.a).sendto(b"still open", (B_IP, 5000))
    assert copy.recv(100) == b"still open"  # the socket lives while a descriptor does
    copy.close()
    with pytest.raises(OSError) as excinfo:
        rs.socket(fileno=fd, runtime=net.b)
    assert errno_of(excinfo) == errno.EBADF


# --- creation and addresses ----------------------------------------------------------------------
def test_socket_creation_errors_are_linuxs(net: Net) -> None:
    cases = [
        ((10, rs.SOCK_DGRAM, 0), errno.EAFNOSUPPORT),  # AF_INET6: not modelled
        ((rs.AF_INET, rs.SOCK_DGRAM, rs.IPPROTO_TCP), errno.EPROTONOSUPPORT),
        ((rs.AF_INET, rs.SOCK_RAW, 0), errno.EPROTONOSUPPORT),
        ((rs.AF_INET, 99, 0), errno.EINVAL),
    ]
    for args, code in cases:
        with pytest.raises(OSError) as excinfo:
            rs.socket(*args, runtime=net.a)
        assert errno_of(excinfo) == code, args
    s = rs.socket(rs.AF_INET, rs.SOCK_DGRAM, rs.IPPROTO_UDP, runtime=net.a)
    assert (s.family, s.type, s.proto) == (rs.AF_INET, rs.SOCK_DGRAM, rs.IPPROTO_UDP)
    assert s.getsockopt(rs.SOL_SOCKET, rs.SO_TYPE) == rs.SOCK_DGRAM
    assert s.getsockopt(rs.SOL_SOCKET, rs.SO_PROTOCOL) == rs.IPPROTO_UDP
    assert s.getsockopt(rs.SOL_SOCKET, rs.SO_DOMAIN) == rs.AF_INET


def test_malformed_addresses_raise_what_cpython_raises(net: Net) -> None:
    s = net.udp(net.a)
    with pytest.raises(TypeError, match="must be tuple, not str"):
        s.bind("10.0.0.1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be a pair"):
        s.bind(("", 1, 2))  # type: ignore[arg-type]
    with pytest.raises(OverflowError, match="port must be 0-65535"):
        s.bind(("", 70000))
    with pytest.raises(TypeError):
        s.bind(("", "http"))  # type: ignore[arg-type]
    with pytest.raises(rs.gaierror) as excinfo:
        s.sendto(b"x", ("example.com", 53))
    assert excinfo.value.errno == pysocket.EAI_NONAME
    assert issubclass(rs.gaierror, OSError)


def test_without_a_tcp_core_a_stream_socket_is_eprotonosupport(
    net: Net, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(net.a.stack, "tcp", raising=False)
    with pytest.raises(OSError) as excinfo:
        rs.socket(rs.AF_INET, rs.SOCK_STREAM, runtime=net.a)
    assert errno_of(excinfo) == errno.EPROTONOSUPPORT
    assert "no TCP core" in str(excinfo.value.__notes__)


def test_the_default_runtime(net: Net) -> None:
    previous = rt_mod.set_current(None)
    try:
        with pytest.raises(RuntimeError, match="no current refstack runtime"):
            rs.socket(rs.AF_INET, rs.SOCK_DGRAM)
        with rt_mod.use(net.a):
            assert rt_mod.current() is net.a
            assert rs.socket(rs.AF_INET, rs.SOCK_DGRAM).runtime is net.a
            with rt_mod.use(net.b):
                assert rs.socket(rs.AF_INET, rs.SOCK_DGRAM).runtime is net.b
            assert rt_mod.current() is net.a
        assert rt_mod.set_current(net.b) is None
        assert rt_mod.set_current(None) is net.b
    finally:
        rt_mod.set_current(previous)


def test_the_virtual_driver_contract(net: Net) -> None:
    driver = net.driver
    assert driver.wait_until(lambda: True, None) is True
    assert driver.wait_until(lambda: False, 0) is False
    assert net.now() == 0.0  # a zero timeout never moves time
    assert driver.wait_until(lambda: False, 0.5) is False
    assert net.now() == 0.5  # a timeout leaves the clock exactly that much later
    with pytest.raises(ValueError, match="timeout must be None or"):
        driver.wait_until(lambda: True, -1.0)
    short = VirtualDriver(net.sim, horizon=10.0)
    condition = rt_mod.Condition("the moon to turn blue", lambda: False)
    with pytest.raises(BlockedForeverError, match=r"the moon to turn blue.*nothing is left to happen"):
        short.wait_until(condition, None)
    assert net.now() == 10.5


# --- options -------------------------------------------------------------------------------------
def test_buffer_sizes_are_doubled_clamped_and_floored_as_linux(net: Net) -> None:
    s = net.udp(net.a)
    assert s.getsockopt(rs.SOL_SOCKET, rs.SO_RCVBUF) == 212992  # rmem_default
    s.setsockopt(rs.SOL_SOCKET, rs.SO_RCVBUF, 10000)
    assert s.getsockopt(rs.SOL_SOCKET, rs.SO_RCVBUF) == 20000
    s.setsockopt(rs.SOL_SOCKET, rs.SO_RCVBUF, 1 << 30)
    assert s.getsockopt(rs.SOL_SOCKET, rs.SO_RCVBUF) == 2 * 4194304  # 2 * rmem_max
    s.setsockopt(rs.SOL_SOCKET, rs.SO_RCVBUF, 1)
    assert s.getsockopt(rs.SOL_SOCKET, rs.SO_RCVBUF) == 2304  # SOCK_MIN_RCVBUF
    s.setsockopt(rs.SOL_SOCKET, rs.SO_SNDBUF, 1)
    assert s.getsockopt(rs.SOL_SOCKET, rs.SO_SNDBUF) == 4608  # SOCK_MIN_SNDBUF
    assert s.getsockopt(rs.SOL_SOCKET, rs.SO_RCVBUF, 8) == struct.pack("=i", 2304)
    assert s.getsockopt(rs.SOL_SOCKET, rs.SO_RCVBUF, 1) == b"\x00"


def test_ip_ttl_and_tos_reach_the_wire(net: Net) -> None:
    server = net.udp(net.b, ("", 5000))
    s = net.udp(net.a)
    assert s.getsockopt(rs.IPPROTO_IP, rs.IP_TTL) == 64
    s.setsockopt(rs.IPPROTO_IP, rs.IP_TTL, 7)
    s.setsockopt(rs.IPPROTO_IP, rs.IP_TOS, 0xB8)
    assert (s.getsockopt(rs.IPPROTO_IP, rs.IP_TTL), s.getsockopt(rs.IPPROTO_IP, rs.IP_TOS)) == (7, 0xB8)
    s.sendto(b"marked", (B_IP, 5000))
    assert server.recv(10) == b"marked"
    (packet,) = net.ip_packets()
    assert (packet.ttl, packet.tos) == (7, 0xB8)
    s.setsockopt(rs.IPPROTO_IP, rs.IP_TTL, -1)  # back to the default
    assert s.getsockopt(rs.IPPROTO_IP, rs.IP_TTL) == 64
    s.setsockopt(rs.IPPROTO_IP, rs.IP_TTL, b"\x05")  # one byte is enough at IPPROTO_IP
    assert s.getsockopt(rs.IPPROTO_IP, rs.IP_TTL) == 5
    for bad in (0, 256):
        with pytest.raises(OSError) as excinfo:
            s.setsockopt(rs.IPPROTO_IP, rs.IP_TTL, bad)
        assert errno_of(excinfo) == errno.EINVAL


def test_option_errors_are_linuxs(net: Net) -> None:
    s = net.udp(net.a)
    cases = [
        (lambda: s.getsockopt(rs.IPPROTO_TCP, rs.TCP_NODELAY), errno.EOPNOTSUPP),
        (lambda: s.setsockopt(rs.IPPROTO_TCP, rs.TCP_NODELAY, 1), errno.ENOPROTOOPT),
        (lambda: s.getsockopt(999, 1), errno.EOPNOTSUPP),
        (lambda: s.getsockopt(rs.SOL_SOCKET, 999), errno.ENOPROTOOPT),
        (lambda: s.setsockopt(rs.SOL_SOCKET, rs.SO_ERROR, 1), errno.ENOPROTOOPT),
        (lambda: s.setsockopt(rs.SOL_SOCKET, rs.SO_KEEPALIVE, b"\x01"), errno.EINVAL),
        (lambda: s.setsockopt(rs.SOL_SOCKET, rs.SO_LINGER, 1), errno.EINVAL),
        (s.listen, errno.EOPNOTSUPP),
        (s.accept, errno.EOPNOTSUPP),
    ]
    for call, code in cases:
        with pytest.raises(OSError) as excinfo:
            call()
        assert errno_of(excinfo) == code
    with pytest.raises(OSError, match="getsockopt buflen out of range"):
        s.getsockopt(rs.SOL_SOCKET, rs.SO_TYPE, 2000)


def test_so_linger_and_so_keepalive_are_stored_on_a_udp_socket(net: Net) -> None:
    s = net.udp(net.a)
    assert struct.unpack("ii", s.getsockopt(rs.SOL_SOCKET, rs.SO_LINGER, 8)) == (0, 0)
    s.setsockopt(rs.SOL_SOCKET, rs.SO_LINGER, struct.pack("ii", 1, 7))
    assert struct.unpack("ii", s.getsockopt(rs.SOL_SOCKET, rs.SO_LINGER, 8)) == (1, 7)
    assert s.getsockopt(rs.SOL_SOCKET, rs.SO_LINGER) == 1  # the int form is l_onoff
    s.setsockopt(rs.SOL_SOCKET, rs.SO_LINGER, struct.pack("ii", 0, 3))
    assert struct.unpack("ii", s.getsockopt(rs.SOL_SOCKET, rs.SO_LINGER, 8)) == (0, 3)
    s.setsockopt(rs.SOL_SOCKET, rs.SO_KEEPALIVE, 7)
    assert s.getsockopt(rs.SOL_SOCKET, rs.SO_KEEPALIVE) == 1


def test_constants_have_linux_values() -> None:
    """Python's socket module on Linux (where this project runs) has Linux's values."""
    shared = [n for n in dir(rs) if n.isupper() and not n.startswith("_") and hasattr(pysocket, n)]
    assert len(shared) >= 49
    for name in shared:
        assert getattr(rs, name) == getattr(pysocket, name), name
    assert (rs.IP_MTU_DISCOVER, rs.IP_PMTUDISC_DO, rs.MSG_DONTWAIT, rs.MSG_WAITALL) == (10, 2, 0x40, 0x100)
    assert rs.error is OSError
    assert rs.inet_aton("10.0.0.1") == b"\n\x00\x00\x01"
    assert rs.htons(1) == 256 and rs.ntohl(rs.htonl(7)) == 7
