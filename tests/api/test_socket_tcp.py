"""refstack.socket over TCP: the TCP core behind the socket API, virtual time, Linux's errnos.

Stack A (10.0.0.1, clients) and stack B (10.0.0.2, servers) share a 125 ms MemoryLink, so
a blocking connect returns at t=0.25 (SYN there, SYN-ACK back) and the server's accept at
t=0.375 (the third ACK).  Expected poll masks and errnos were read from Linux 6.18 doing
the same calls over loopback.
"""

from __future__ import annotations

import contextlib
import errno
import random
import struct

import pytest

from refstack import socket as rs
from refstack.select import (
    EPOLLET,
    EPOLLIN,
    EPOLLOUT,
    EPOLLRDHUP,
    POLLERR,
    POLLHUP,
    POLLIN,
    POLLOUT,
    POLLRDHUP,
    POLLRDNORM,
    POLLWRNORM,
    epoll,
    poll,
    select,
)
from refstack.wire.tcp import RST
from tests.api.harness import A_IP, B_IP, DELAY, PORT, Net, errno_of

ALL = 0xFFFF


def mask(sock: rs.socket, events: int = ALL) -> int:
    p = poll()
    p.register(sock, events)
    ready = p.poll(0)
    return ready[0][1] if ready else 0


# --- connection set-up ---------------------------------------------------------------------------
def test_connect_accept_send_recv_close(net: Net) -> None:
    listener = net.server()
    client = net.tcp(net.a)
    client.connect((B_IP, PORT))
    assert net.now() == 2 * DELAY  # the SYN-ACK is back
    conn, address = listener.accept()
    assert net.now() == 3 * DELAY  # the third ACK reached the server
    assert address == client.getsockname()
    assert client.getsockname()[0] == A_IP and 32768 <= client.getsockname()[1] <= 60999
    assert client.getpeername() == (B_IP, PORT)
    assert conn.getsockname() == (B_IP, PORT)
    assert conn.getpeername() == address
    assert conn.gettimeout() is None and conn.type == rs.SOCK_STREAM
    assert client.send(b"hello") == 5
    assert conn.recv(100) == b"hello"
    conn.sendall(b"world")
    assert client.recv(100) == b"world"
    client.close()
    assert conn.recv(100) == b""  # the FIN
    conn.close()
    listener.close()
    assert sorted(net.b.fds()) == []


def test_non_blocking_connect_is_einprogress_then_writable(net: Net) -> None:
    net.server()
    client = net.tcp(net.a)
    client.setblocking(False)
    with pytest.raises(BlockingIOError) as excinfo:
        client.connect((B_IP, PORT))
    assert errno_of(excinfo) == errno.EINPROGRESS
    assert select([], [client], [], 0) == ([], [], [])
    assert mask(client) == 0  # SYN-SENT: nothing to report
    with pytest.raises(OSError) as excinfo:
        client.connect((B_IP, PORT))
    assert errno_of(excinfo) == errno.EALREADY
    assert select([], [client], [], None) == ([], [client], [])
    assert net.now() == 2 * DELAY
    assert client.getsockopt(rs.SOL_SOCKET, rs.SO_ERROR) == 0
    assert mask(client) == POLLOUT | POLLWRNORM  # established: Linux 0x104
    client.connect((B_IP, PORT))  # Linux: the first connect() after completion returns 0
    with pytest.raises(OSError) as excinfo:
        client.connect((B_IP, PORT))
    assert errno_of(excinfo) == errno.EISCONN
    assert client.connect_ex((B_IP, PORT)) == errno.EISCONN


def test_connect_to_a_closed_port_is_refused(net: Net) -> None:
    client = net.tcp(net.a)
    with pytest.raises(ConnectionRefusedError) as excinfo:
        client.connect((B_IP, 9))
    assert str(excinfo.value) == "[Errno 111] Connection refused"
    assert net.now() == 2 * DELAY  # the RST came back
    assert client.getsockopt(rs.SOL_SOCKET, rs.SO_ERROR) == 0  # consumed by connect, as Linux
    assert net.tcp(net.a).connect_ex((B_IP, 9)) == errno.ECONNREFUSED


def test_a_refused_non_blocking_connect_polls_as_linux_and_sets_so_error(net: Net) -> None:
    client = net.tcp(net.a)
    client.setblocking(False)
    assert client.connect_ex((B_IP, 9)) == errno.EINPROGRESS
    p = poll()
    p.register(client, POLLOUT)
    assert p.poll() == [(client.fileno(), POLLOUT | POLLERR | POLLHUP)]
    assert net.now() == 2 * DELAY
    # Linux 0x215d: IN, OUT, ERR, HUP, RDNORM, WRNORM, RDHUP
    assert mask(client) == POLLIN | POLLOUT | POLLERR | POLLHUP | POLLRDNORM | POLLWRNORM | POLLRDHUP
    assert client.getsockopt(rs.SOL_SOCKET, rs.SO_ERROR) == errno.ECONNREFUSED
    assert client.getsockopt(rs.SOL_SOCKET, rs.SO_ERROR) == 0


def test_listen_backlog_holds_backlog_plus_one_connections_as_linux(net: Net) -> None:
    """Linux's sk_acceptq_is_full() is ``ack_backlog > max_ack_backlog``: listen(1) queues
    two connections (seen on Linux 6.18: 2 with backlog 1, 1 with backlog 0) and drops
    the SYN of a third, which gets in on its retransmission once accept() made room."""
    listener = net.server(backlog=1)
    clients = [net.tcp(net.a) for _ in range(3)]
    for client in clients:
        client.setblocking(False)
        with pytest.raises(BlockingIOError):
            client.connect((B_IP, PORT))
        net.sim.run_for(0.5)  # each handshake done (or its SYN dropped) before the next
    established = [mask(c) == POLLOUT | POLLWRNORM for c in clients]
    assert established == [True, True, False], "listen(1) must queue 2 connections, as Linux"
    listener.setblocking(False)
    accepted = [listener.accept()[1], listener.accept()[1]]
    assert accepted == [clients[0].getsockname(), clients[1].getsockname()]
    with pytest.raises(BlockingIOError):
        listener.accept()
    listener.setblocking(True)
    _, address = listener.accept()  # the retransmitted SYN found room
    assert address == clients[2].getsockname()
    assert select([], [clients[2]], [], 0) == ([], [clients[2]], [])


def test_accept_and_listen_errors_and_timeouts(net: Net) -> None:
    idle = net.tcp(net.b)
    with pytest.raises(OSError) as excinfo:
        idle.accept()
    assert errno_of(excinfo) == errno.EINVAL  # not listening
    listener = net.server(port=PORT + 1)
    assert listener.getsockopt(rs.SOL_SOCKET, rs.SO_ACCEPTCONN) == 1
    listener.settimeout(0.5)
    with pytest.raises(TimeoutError):
        listener.accept()
    assert net.now() == 0.5
    listener.setblocking(False)
    with pytest.raises(BlockingIOError):
        listener.accept()
    _, client, _ = net.connected()
    with pytest.raises(OSError) as excinfo:
        client.listen()
    assert errno_of(excinfo) == errno.EINVAL  # connected sockets cannot listen
    with pytest.raises(OSError) as excinfo:
        net.tcp(net.b).bind(("", PORT))
    assert errno_of(excinfo) == errno.EADDRINUSE


def test_a_listening_socket_is_readable_when_accept_would_succeed(net: Net) -> None:
    listener = net.server()
    assert select([listener], [], [], 0) == ([], [], [])
    client = net.tcp(net.a)
    client.setblocking(False)
    client.connect_ex((B_IP, PORT))
    assert select([listener], [], [], None) == ([listener], [], [])
    assert net.now() == 3 * DELAY
    assert mask(listener) == POLLIN | POLLRDNORM  # Linux 0x41
    listener.setblocking(False)
    conn, _ = listener.accept()
    assert select([listener], [], [], 0) == ([], [], [])
    assert conn.getpeername() == client.getsockname()


# --- data ----------------------------------------------------------------------------------------
def test_unconnected_sockets_give_linuxs_errnos(net: Net) -> None:
    s = net.tcp(net.a)
    with pytest.raises(BrokenPipeError):
        s.send(b"x")  # Linux: EPIPE, not ENOTCONN, from sk_stream_wait_connect
    cases = [
        (lambda: s.recv(1), errno.ENOTCONN),
        (s.getpeername, errno.ENOTCONN),
        (lambda: s.shutdown(rs.SHUT_RDWR), errno.ENOTCONN),
    ]
    for call, code in cases:
        with pytest.raises(OSError) as excinfo:
            call()
        assert errno_of(excinfo) == code
    assert mask(net.tcp(net.a)) == POLLOUT | POLLWRNORM | POLLHUP  # a fresh socket: Linux 0x114


def test_recv_timeout_waitall_peek_and_recvfrom(net: Net) -> None:
    _, client, conn = net.connected()
    conn.settimeout(0.5)
    with pytest.raises(TimeoutError):
        conn.recv(10)
    assert net.now() == 3 * DELAY + 0.5
    conn.settimeout(None)
    client.send(b"abc")
    assert conn.recv(10, rs.MSG_PEEK) == b"abc"
    assert conn.recvfrom(2) == (b"ab", None)  # no address on a stream socket
    assert conn.recvmsg(10) == (b"c", [], 0, None)
    client.send(b"012")
    net.sim.run_for(1.0)
    client.send(b"345")
    assert conn.recv(6, rs.MSG_WAITALL) == b"012345"  # waits for the second segment
    buf = bytearray(4)
    client.send(b"wxyz")
    assert conn.recv_into(buf) == 4 and buf == b"wxyz"
    with pytest.raises(OSError) as excinfo:
        conn.recv(1, rs.MSG_OOB)
    assert errno_of(excinfo) == errno.EINVAL


def test_shutdown_wr_is_a_half_close(net: Net) -> None:
    _, client, conn = net.connected()
    ep = epoll(runtime=net.b)
    ep.register(conn, EPOLLIN | EPOLLRDHUP | EPOLLET)
    client.shutdown(rs.SHUT_WR)
    sent_at = net.now()
    with pytest.raises(BrokenPipeError):
        client.send(b"late")
    assert mask(client) == POLLOUT | POLLWRNORM  # Linux 0x104 after SHUT_WR
    assert ep.poll() == [(conn.fileno(), EPOLLIN | EPOLLRDHUP)]
    assert net.now() == sent_at + DELAY
    assert ep.poll(0) == []  # edge-triggered: once
    # Linux 0x2145 on the side that received the FIN
    assert mask(conn) == POLLIN | POLLRDNORM | POLLRDHUP | POLLOUT | POLLWRNORM
    assert conn.recv(10) == b""
    conn.sendall(b"still talking")
    assert client.recv(100) == b"still talking"
    conn.close()
    assert client.recv(100) == b""
    assert mask(client) & (POLLIN | POLLRDHUP | POLLHUP) == POLLIN | POLLRDHUP | POLLHUP


def test_so_linger_zero_close_sends_rst_and_the_peer_sees_econnreset(net: Net) -> None:
    _, client, conn = net.connected()
    conn.setsockopt(rs.SOL_SOCKET, rs.SO_LINGER, struct.pack("ii", 1, 0))
    assert struct.unpack("ii", conn.getsockopt(rs.SOL_SOCKET, rs.SO_LINGER, 8)) == (1, 0)
    conn.close()
    with pytest.raises(ConnectionResetError) as excinfo:
        client.recv(10)
    assert str(excinfo.value) == "[Errno 104] Connection reset by peer"
    assert net.now() == 4 * DELAY
    last = net.segments()[-1]
    assert last.flags & RST and last.src_port == PORT
    assert client.recv(10) == b""  # the error is reported once
    with pytest.raises(BrokenPipeError):
        client.send(b"x")


def test_after_a_reset_poll_shows_err_and_hup_and_send_is_econnreset(net: Net) -> None:
    _, client, conn = net.connected()
    conn.setsockopt(rs.SOL_SOCKET, rs.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()
    ep = epoll(runtime=net.a)
    ep.register(client, EPOLLIN | EPOLLRDHUP)
    ep.poll()
    # Linux 0x215d
    assert mask(client) == POLLIN | POLLOUT | POLLERR | POLLHUP | POLLRDNORM | POLLWRNORM | POLLRDHUP
    with pytest.raises(ConnectionResetError):
        client.send(b"x")
    with pytest.raises(OSError) as excinfo:
        client.getpeername()
    assert errno_of(excinfo) == errno.ENOTCONN


def test_sendall_of_one_megabyte_then_recv_until_eof_is_byte_exact(net: Net) -> None:
    data = random.Random(7).randbytes(1 << 20)
    listener = net.tcp(net.b)
    listener.setsockopt(rs.SOL_SOCKET, rs.SO_RCVBUF, 2 << 20)  # room for all of it: no reader runs
    listener.bind(("", PORT))
    listener.listen()
    client = net.tcp(net.a)
    client.connect((B_IP, PORT))
    conn, _ = listener.accept()
    assert conn.getsockopt(rs.SOL_SOCKET, rs.SO_RCVBUF) == 4 << 20  # inherited, doubled
    client.sendall(data)
    client.close()
    chunks = []
    while chunk := conn.recv(65536):
        chunks.append(chunk)
    assert b"".join(chunks) == data


def test_one_megabyte_through_a_non_blocking_select_loop(net: Net) -> None:
    data = random.Random(8).randbytes(1 << 20)
    _, client, conn = net.connected()
    client.setblocking(False)
    conn.setblocking(False)
    sent, got, eof = 0, bytearray(), False
    would_block = 0
    while not eof:
        wlist = [client] if sent < len(data) else []
        readable, writable, _ = select([conn], wlist, [], 10.0)
        assert readable or writable, "the loop stalled"
        if writable:
            try:
                sent += client.send(data[sent : sent + 65536])
            except BlockingIOError:
                would_block += 1
            if sent == len(data):
                client.shutdown(rs.SHUT_WR)
        if readable:
            while True:
                try:
                    chunk = conn.recv(65536)
                except BlockingIOError:
                    break
                if not chunk:
                    eof = True
                    break
                got += chunk
    assert bytes(got) == data
    assert would_block == 0  # select said writable only when a send could make progress


def test_send_in_timeout_mode_may_be_partial_and_blocking_send_queues_everything(net: Net) -> None:
    _, client, conn = net.connected()
    sndbuf = client.getsockopt(rs.SOL_SOCKET, rs.SO_SNDBUF)
    big = bytes(sndbuf + 30_000)  # more than the send buffer, less than it plus the peer's window
    client.setblocking(False)
    first = client.send(big)
    assert 0 < first < len(big)  # as much as the send buffer takes
    with pytest.raises(BlockingIOError):
        client.send(big)
    client.setblocking(True)
    assert client.send(big[first:]) == len(big) - first  # Linux's blocking tcp_sendmsg
    received = 0
    while received < len(big):
        received += len(conn.recv(65536))
    assert received == len(big)


def test_send_buffer_autotuned_at_establishment_unless_set(net: Net) -> None:
    """Linux's tcp_sndbuf_expand: 16 KiB (tcp_wmem[1]) until the connection is
    established, then room for two initial windows of segments at their in-memory
    size (2 x 10 x 2304 for MSS 1460: 46080, what Linux reports in a fresh namespace
    with Reno on this machine); SO_SNDBUF locks it."""
    s = net.tcp(net.a)
    assert s.getsockopt(rs.SOL_SOCKET, rs.SO_SNDBUF) == 16384
    _, client, _ = net.connected()
    assert client.getsockopt(rs.SOL_SOCKET, rs.SO_SNDBUF) == 46080
    locked = net.tcp(net.a)
    locked.setsockopt(rs.SOL_SOCKET, rs.SO_SNDBUF, 10_000)
    locked.connect((B_IP, PORT))
    assert locked.getsockopt(rs.SOL_SOCKET, rs.SO_SNDBUF) == 20_000


def _bulk_to_b(net: Net, client: rs.socket, conn: rs.socket, size: int) -> int:
    """``size`` bytes from a to b with b reading as it goes; the largest window b offered."""
    client.setblocking(False)
    conn.setblocking(False)
    data, sent, got, window = bytes(size), 0, 0, 0
    while got < size:
        if sent < size:
            with contextlib.suppress(BlockingIOError):
                sent += client.send(data[sent : sent + 65536])
        with contextlib.suppress(BlockingIOError):
            got += len(conn.recv(1 << 20))
        net.sim.step()
    for seg in net.segments():
        if seg.src_port == PORT and not seg.flags & 0x02:  # not the SYN-ACK: its window is unscaled
            window = max(window, seg.window << 10)  # b's window scale: 10
    return window


def test_receive_buffer_autotuned_by_what_the_application_reads(net: Net) -> None:
    """Linux's dynamic right-sizing: a reader that keeps up with a bulk sender gets a
    buffer sized to twice what it read per RTT (and more while the rate grows), so the
    window offered outgrows the 64 KB of tcp_rmem[1]'s half."""
    _, client, conn = net.connected()
    assert conn.getsockopt(rs.SOL_SOCKET, rs.SO_RCVBUF) == 131072
    window = _bulk_to_b(net, client, conn, 3_000_000)
    assert conn.getsockopt(rs.SOL_SOCKET, rs.SO_RCVBUF) > 131072
    assert window > 65535


def test_receive_buffer_not_autotuned_after_so_rcvbuf(net: Net) -> None:
    listener = net.server()
    listener.setsockopt(rs.SOL_SOCKET, rs.SO_RCVBUF, 65536)  # accepted sockets inherit it, locked
    client = net.tcp(net.a)
    client.connect((B_IP, PORT))
    conn, _ = listener.accept()
    window = _bulk_to_b(net, client, conn, 1_000_000)
    assert conn.getsockopt(rs.SOL_SOCKET, rs.SO_RCVBUF) == 131072
    assert window <= 65536


# --- options -------------------------------------------------------------------------------------
def test_tcp_options_set_get_and_validation(net: Net) -> None:
    s = net.tcp(net.a)
    assert s.getsockopt(rs.IPPROTO_TCP, rs.TCP_NODELAY) == 0
    s.setsockopt(rs.IPPROTO_TCP, rs.TCP_NODELAY, 5)
    assert s.getsockopt(rs.IPPROTO_TCP, rs.TCP_NODELAY) == 1
    assert s.getsockopt(rs.IPPROTO_TCP, rs.TCP_MAXSEG) == 536  # before connect, as Linux
    s.setsockopt(rs.IPPROTO_TCP, rs.TCP_MAXSEG, 1000)
    assert s.getsockopt(rs.IPPROTO_TCP, rs.TCP_MAXSEG) == 1000
    defaults = [s.getsockopt(rs.IPPROTO_TCP, o) for o in (rs.TCP_KEEPIDLE, rs.TCP_KEEPINTVL, rs.TCP_KEEPCNT)]
    assert defaults == [7200, 75, 9]
    s.setsockopt(rs.IPPROTO_TCP, rs.TCP_KEEPIDLE, 60)
    assert s.getsockopt(rs.IPPROTO_TCP, rs.TCP_KEEPIDLE) == 60
    assert s.getsockopt(rs.SOL_SOCKET, rs.SO_KEEPALIVE) == 0
    s.setsockopt(rs.SOL_SOCKET, rs.SO_KEEPALIVE, 1)
    assert s.getsockopt(rs.SOL_SOCKET, rs.SO_KEEPALIVE) == 1
    s.setsockopt(rs.IPPROTO_IP, rs.IP_TOS, 0xFF)
    assert s.getsockopt(rs.IPPROTO_IP, rs.IP_TOS) == 0xFC  # TCP keeps the ECN bits
    bad = [
        (rs.IPPROTO_TCP, rs.TCP_MAXSEG, 10, errno.EINVAL),
        (rs.IPPROTO_TCP, rs.TCP_KEEPIDLE, 0, errno.EINVAL),
        (rs.IPPROTO_TCP, rs.TCP_KEEPIDLE, 32768, errno.EINVAL),
        (rs.IPPROTO_TCP, rs.TCP_KEEPCNT, 128, errno.EINVAL),
        (rs.IPPROTO_TCP, rs.TCP_INFO, 1, errno.ENOPROTOOPT),
        (rs.IPPROTO_TCP, 999, 1, errno.ENOPROTOOPT),
    ]
    for level, name, value, code in bad:
        with pytest.raises(OSError) as excinfo:
            s.setsockopt(level, name, value)
        assert errno_of(excinfo) == code, name
    with pytest.raises(OSError) as excinfo:
        s.setsockopt(rs.IPPROTO_TCP, rs.TCP_NODELAY, b"\x01")  # a TCP option needs a whole int
    assert errno_of(excinfo) == errno.EINVAL


def test_tcp_nodelay_on_an_accepted_socket_and_tcp_info(net: Net) -> None:
    _, client, conn = net.connected()
    conn.setsockopt(rs.IPPROTO_TCP, rs.TCP_NODELAY, 1)
    assert conn.getsockopt(rs.IPPROTO_TCP, rs.TCP_NODELAY) == 1
    raw = client.getsockopt(rs.IPPROTO_TCP, rs.TCP_INFO, 104)
    assert isinstance(raw, bytes) and len(raw) == 104
    info = rs.tcp_info(client)
    assert raw[0] == info["tcpi_state"] == 1  # TCP_ESTABLISHED
    snd_mss = struct.unpack_from("=I", raw, 16)[0]  # tcpi_snd_mss: after 8 u8, rto, ato
    assert snd_mss == info["tcpi_snd_mss"] > 0
    assert client.getsockopt(rs.IPPROTO_TCP, rs.TCP_MAXSEG) == snd_mss
    assert struct.unpack_from("=I", raw, 8)[0] == info["tcpi_rto"]
    assert client.getsockopt(rs.IPPROTO_TCP, rs.TCP_INFO, 4)[:1] == b"\x01"


def test_epoll_on_tcp_sockets(net: Net) -> None:
    listener = net.server()
    ep = epoll(runtime=net.b)
    ep.register(listener, EPOLLIN)
    client = net.tcp(net.a)
    client.setblocking(False)
    client.connect_ex((B_IP, PORT))
    assert ep.poll() == [(listener.fileno(), EPOLLIN)]
    assert net.now() == 3 * DELAY
    conn, _ = listener.accept()
    ep.register(conn, EPOLLIN | EPOLLOUT | EPOLLET)
    assert ep.poll(0) == [(conn.fileno(), EPOLLOUT)]
    client.send(b"data")
    assert ep.poll() == [(conn.fileno(), EPOLLIN | EPOLLOUT)]
    assert conn.recv(10) == b"data"
    assert ep.poll(0) == []


def test_close_with_linger_waits_for_the_fin_to_be_acknowledged(net: Net) -> None:
    """SO_LINGER {1, 5}: close() returns once the FIN is acknowledged, one round
    trip later (Linux tcp_close -> sk_stream_wait_close)."""
    _, client, _ = net.connected()
    client.setsockopt(rs.SOL_SOCKET, rs.SO_LINGER, struct.pack("ii", 1, 5))
    start = net.now()
    client.close()
    assert net.now() - start == pytest.approx(2 * DELAY)


def test_close_with_linger_on_a_non_blocking_socket_does_not_wait(net: Net) -> None:
    _, client, _ = net.connected()
    client.setsockopt(rs.SOL_SOCKET, rs.SO_LINGER, struct.pack("ii", 1, 5))
    client.setblocking(False)
    start = net.now()
    client.close()
    assert net.now() == start
