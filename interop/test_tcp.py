"""TCP between refstack (198.51.100.2, on the TAP device) and the Linux kernel (198.51.100.1,
in the test's namespace), both directions: echo, bulk with sha256, graceful close, RST on a
closed port, 200 concurrent connections.  RFC 9293 end to end, against a real peer."""

from __future__ import annotations

import errno
import socket
import time
from typing import Any

import pytest

from . import traffic
from .conftest import KERNEL_IP, REFSTACK_IP, Interop, bulk_bytes, report

TIMEOUT = 30.0


def report_rate(what: str, size: int, elapsed: float) -> None:
    mb = size / 1e6
    report(f"bulk {what} over TAP: {mb:.0f} MB in {elapsed:.2f} s = {mb / elapsed:.1f} MB/s (sha256 equal)")


# --- echo ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("interop", ["tap", "tun"], indirect=True)
def test_echo_kernel_client_refstack_server(interop: Interop) -> None:
    traffic.kernel_echo_client(interop, [b"hello", b"x" * 3000, bytes(range(256)) * 40])


@pytest.mark.parametrize("interop", ["tap", "tun"], indirect=True)
def test_echo_refstack_client_kernel_server(interop: Interop) -> None:
    lk = interop.kernel_socket()
    lk.settimeout(TIMEOUT)
    lk.bind((KERNEL_IP, 7))
    lk.listen(8)

    def server() -> None:
        conn, _ = lk.accept()
        with conn:
            conn.settimeout(TIMEOUT)
            while data := conn.recv(65536):
                conn.sendall(data)

    bg = interop.thread(server, "kernel-server")
    c = interop.socket()
    c.settimeout(TIMEOUT)
    c.connect((KERNEL_IP, 7))
    for m in [b"hello", b"y" * 3000, bytes(range(256)) * 40]:
        c.sendall(m)
        got = b""
        while len(got) < len(m):
            got += c.recv(65536)
        assert got == m
    c.close()
    bg.join(TIMEOUT)


# --- bulk ------------------------------------------------------------------------------------------
def test_bulk_kernel_to_refstack(interop: Interop) -> None:
    size = bulk_bytes(interop.config)
    report_rate("kernel -> refstack", size, traffic.kernel_to_refstack(interop, size))


def test_bulk_refstack_to_kernel(interop: Interop) -> None:
    size = bulk_bytes(interop.config)
    report_rate("refstack -> kernel", size, traffic.refstack_to_kernel(interop, size))


# --- graceful close (RFC 9293 §3.6) ----------------------------------------------------------------
def _no_rst(interop: Interop) -> None:
    time.sleep(0.2)  # let the last ACKs cross
    assert interop.capture.rsts == [], f"RSTs on the wire: {len(interop.capture.rsts)}"


@pytest.mark.parametrize("first", ["kernel", "refstack"])
def test_graceful_close_kernel_client(interop: Interop, first: str) -> None:
    """The kernel connects; ``first`` sends its data and FIN, the other reads to EOF,
    answers and closes; both see every byte and EOF, and no RST crosses."""
    srv = interop.socket()
    srv.settimeout(TIMEOUT)
    srv.bind((REFSTACK_IP, 8080))
    srv.listen(1)
    k = interop.kernel_socket()
    k.settimeout(TIMEOUT)
    bg = interop.thread(lambda: k.connect((REFSTACK_IP, 8080)), "kernel-connect")
    r, _ = srv.accept()
    r.settimeout(TIMEOUT)
    bg.join(TIMEOUT)
    _half_close_exchange(interop, k, r, first)


@pytest.mark.parametrize("first", ["kernel", "refstack"])
def test_graceful_close_refstack_client(interop: Interop, first: str) -> None:
    lk = interop.kernel_socket()
    lk.settimeout(TIMEOUT)
    lk.bind((KERNEL_IP, 8080))
    lk.listen(1)
    r = interop.socket()
    r.settimeout(TIMEOUT)
    r.connect((KERNEL_IP, 8080))
    k, _ = lk.accept()
    interop.kernel_sockets.append(k)
    k.settimeout(TIMEOUT)
    _half_close_exchange(interop, k, r, first)


def _half_close_exchange(interop: Interop, k: socket.socket, r: object, first: str) -> None:
    def closer(sock: object) -> None:
        sock.sendall(b"request")  # type: ignore[attr-defined]
        sock.shutdown(socket.SHUT_WR)  # type: ignore[attr-defined]
        got = b""
        while data := sock.recv(4096):  # type: ignore[attr-defined]
            got += data
        assert got == b"response"
        sock.close()  # type: ignore[attr-defined]

    def answerer(sock: object) -> None:
        got = b""
        while data := sock.recv(4096):  # type: ignore[attr-defined]
            got += data
        assert got == b"request"
        sock.sendall(b"response")  # type: ignore[attr-defined]
        sock.close()  # type: ignore[attr-defined]

    if first == "kernel":
        bg = interop.thread(lambda: closer(k), "kernel-closer")
        answerer(r)
    else:
        bg = interop.thread(lambda: answerer(k), "kernel-answerer")
        closer(r)
    bg.join(TIMEOUT)
    _no_rst(interop)


# --- RST on a closed port (RFC 9293 §3.10.7.1) ------------------------------------------------------
def test_rst_kernel_connects_to_closed_refstack_port(interop: Interop) -> None:
    k = interop.kernel_socket()
    k.settimeout(TIMEOUT)
    with pytest.raises(ConnectionRefusedError):
        k.connect((REFSTACK_IP, 9))
    assert [d for d, _ in interop.capture.rsts] == ["tx"]
    assert interop.counters()["tcp_tx_rst"] == 1


def test_rst_refstack_connects_to_closed_kernel_port(interop: Interop) -> None:
    r = interop.socket()
    r.settimeout(TIMEOUT)
    with pytest.raises(ConnectionRefusedError) as info:
        r.connect((KERNEL_IP, 9))
    assert info.value.errno == errno.ECONNREFUSED
    assert [d for d, _ in interop.capture.rsts] == ["rx"]


# --- many concurrent connections ------------------------------------------------------------------
CONNECTIONS = 200


def _recv_exactly(sock: Any, n: int) -> bytes:
    data = b""
    while len(data) < n:
        data += sock.recv(n - len(data))
    return data


def _echo_numbers_reversed(servers: list[Any], clients: list[Any]) -> None:
    """Each server end sends back the 4-byte number its client sent, reversed; client
    ``i`` must get ``i`` reversed (every connection carries its own bytes)."""
    for conn in servers:
        conn.sendall(_recv_exactly(conn, 4)[::-1])
    for i, c in enumerate(clients):
        assert _recv_exactly(c, 4) == i.to_bytes(4, "big")[::-1]


def test_concurrent_kernel_clients(interop: Interop) -> None:
    srv = interop.socket()
    srv.settimeout(TIMEOUT)
    srv.bind((REFSTACK_IP, 9000))
    srv.listen(CONNECTIONS + 56)
    clients = interop.ns.run(
        lambda: [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(CONNECTIONS)]
    )
    interop.kernel_sockets.extend(clients)

    def connect_all() -> None:
        for i, k in enumerate(clients):
            k.settimeout(TIMEOUT)
            k.connect((REFSTACK_IP, 9000))
            k.sendall(i.to_bytes(4, "big"))

    bg = interop.thread(connect_all, "kernel-clients")
    conns = []
    for _ in range(CONNECTIONS):
        conn, _ = srv.accept()
        conn.settimeout(TIMEOUT)
        conns.append(conn)
    bg.join(TIMEOUT)
    # All 200 are open at once; now each echoes its number, reversed.
    _echo_numbers_reversed(conns, clients)
    for conn in conns:
        conn.close()


def test_concurrent_refstack_clients(interop: Interop) -> None:
    lk = interop.kernel_socket()
    lk.settimeout(TIMEOUT)
    lk.bind((KERNEL_IP, 9000))
    lk.listen(CONNECTIONS + 56)
    accepted: list[socket.socket] = []

    def accept_all() -> None:
        for _ in range(CONNECTIONS):
            conn, _ = lk.accept()
            conn.settimeout(TIMEOUT)
            accepted.append(conn)
            interop.kernel_sockets.append(conn)

    bg = interop.thread(accept_all, "kernel-acceptor")
    clients = []
    for i in range(CONNECTIONS):
        c = interop.socket()
        c.settimeout(TIMEOUT)
        c.connect((KERNEL_IP, 9000))
        c.sendall(i.to_bytes(4, "big"))
        clients.append(c)
    bg.join(TIMEOUT)
    _echo_numbers_reversed(accepted, clients)
    for c in clients:
        c.close()
