"""``refstack run``'s shim modules without privileges: two stacks joined by a SEQPACKET
socket pair (one read = one frame, as on a TAP device), each on a ShimDriver."""

from __future__ import annotations

import hashlib
import http.server
import os
import select
import selectors
import socket
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from refstack.run.readiness import ShimDriver, Signal
from refstack.run.shim import install, select_module, selectors_module, socket_module, uninstall
from refstack.stack import Stack
from refstack.tuntap import TapLink

A_IP, B_IP = "198.51.100.1", "198.51.100.2"


@pytest.fixture
def pair() -> Iterator[tuple[ModuleType, ModuleType]]:
    """Shim ``socket`` modules for two stacks (A and B) joined by a wire."""
    sa, sb = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    links = [TapLink(sa.detach(), "eth0"), TapLink(sb.detach(), "eth0")]  # each owns its end
    drivers: list[ShimDriver] = []
    for i, (link, ip) in enumerate(zip(links, (A_IP, B_IP), strict=True)):
        stack = Stack(name=f"s{i}", seed=i)
        link.attach(stack, ip, 24, mac=f"02:00:00:00:00:0{i + 1}")
        driver = ShimDriver(stack, link)
        driver.start()
        drivers.append(driver)
    try:
        yield socket_module(drivers[0]), socket_module(drivers[1])
    finally:
        for d in drivers:
            d.close()
        for link in links:
            link.close()


def test_signal_carries_all_four_states() -> None:
    sig = Signal()
    try:
        for readable, writable in [(False, True), (True, True), (True, False), (False, False), (False, True)]:
            sig.set(readable, writable)
            r, w, _ = select.select([sig], [sig], [], 0)
            assert (bool(r), bool(w)) == (readable, writable)
    finally:
        sig.close()


def test_module_surface(pair: tuple[ModuleType, ModuleType]) -> None:
    shim, _ = pair
    assert isinstance(shim.socket, type) and shim.SocketType is shim.socket
    for name in (
        "AF_INET",
        "SOCK_STREAM",
        "SOL_SOCKET",
        "SO_REUSEADDR",
        "IPPROTO_TCP",
        "TCP_NODELAY",
        "SHUT_WR",
    ):
        assert getattr(shim, name) == getattr(socket, name)
    assert shim.error is OSError and shim.timeout is TimeoutError and shim.gaierror is socket.gaierror
    assert shim.getaddrinfo("198.51.100.2", 80, type=shim.SOCK_STREAM)[0][4] == ("198.51.100.2", 80)
    assert shim.create_connection.__globals__ is vars(shim)

    base: Any = shim.socket

    class Sub(base):  # type: ignore[misc]
        pass

    s: Any = Sub(shim.AF_INET, shim.SOCK_STREAM)
    with s:
        assert isinstance(s, base) and s.refstack
        assert s.family == socket.AF_INET and s.type == socket.SOCK_STREAM
        assert s.fileno() >= 0 and os.fstat(s.fileno())  # a real descriptor
    assert s.fileno() == -1
    assert select_module().poll is select.poll
    assert selectors_module().DefaultSelector is selectors.DefaultSelector


def test_kernel_fallbacks_are_counted(pair: tuple[ModuleType, ModuleType]) -> None:
    shim, _ = pair
    driver = shim.socket._driver
    a, b = shim.socketpair()  # AF_UNIX, on the kernel
    with a, b:
        assert not a.refstack and isinstance(a, shim.socket)
        a.sendall(b"over unix")
        assert b.recv(100) == b"over unix"
    with shim.socket(shim.AF_UNIX, shim.SOCK_DGRAM) as u:
        assert not u.refstack
    # loopback: a refstack socket hands over to the kernel on the same descriptor number
    lk = socket.socket()
    lk.bind(("127.0.0.1", 0))
    lk.listen()
    with lk, shim.socket() as c:
        fd = c.fileno()
        c.settimeout(5)
        c.connect(lk.getsockname())
        assert not c.refstack and c.fileno() == fd and c.gettimeout() == 5
        conn, _ = lk.accept()
        with conn:
            c.sendall(b"lo")
            assert conn.recv(10) == b"lo"
    with driver.locked() as stack:
        assert stack.counters["kernel_fallback_fileno"] >= 2  # socketpair's two ends
        assert stack.counters["kernel_fallback_af_unix"] == 1
        assert stack.counters["tcp_handover_loopback"] == 1


def test_select_on_a_shim_socket_and_a_kernel_pipe(pair: tuple[ModuleType, ModuleType]) -> None:
    sa, sb = pair
    rx = sb.socket(sb.AF_INET, sb.SOCK_DGRAM)
    rx.bind((B_IP, 5000))
    tx = sa.socket(sa.AF_INET, sa.SOCK_DGRAM)
    r_pipe, w_pipe = os.pipe()
    try:
        assert select.select([rx, r_pipe], [], [], 0.05) == ([], [], [])
        os.write(w_pipe, b"x")
        assert select.select([rx, r_pipe], [], [], 1.0)[0] == [r_pipe]
        os.read(r_pipe, 1)
        tx.sendto(b"ping", (B_IP, 5000))
        assert select.select([rx, r_pipe], [], [], 5.0)[0] == [rx]
        assert rx.recvfrom(100)[0] == b"ping"
        assert select.select([rx, r_pipe], [], [], 0.05)[0] == []  # drained: not readable
        poller = select.epoll()
        poller.register(rx.fileno(), select.EPOLLIN)
        tx.sendto(b"pong", (B_IP, 5000))
        assert poller.poll(5.0) == [(rx.fileno(), select.EPOLLIN)]
        poller.close()
    finally:
        os.close(r_pipe)
        os.close(w_pipe)
        rx.close()
        tx.close()


def test_tcp_writability_and_connect_readiness(pair: tuple[ModuleType, ModuleType]) -> None:
    sa, sb = pair
    srv = sb.socket()
    srv.bind((B_IP, 7))
    srv.listen()
    c = sa.socket()
    c.setblocking(False)
    assert c.connect_ex((B_IP, 7)) == 115  # EINPROGRESS
    sel = selectors.DefaultSelector()
    sel.register(c, selectors.EVENT_WRITE)
    assert sel.select(5.0)  # connected: writable
    assert c.getsockopt(sa.SOL_SOCKET, sa.SO_ERROR) == 0
    assert select.select([srv], [], [], 5.0)[0] == [srv]
    conn, _ = srv.accept()
    # fill the send buffer of a non-blocking socket until it is not writable
    sent = 0
    while True:
        try:
            sent += c.send(b"z" * 65536)
        except BlockingIOError:
            break
    assert select.select([], [c], [], 0)[1] == []
    got = 0
    while got < sent:
        got += len(conn.recv(1 << 20))
    assert sel.select(5.0)  # writable again once the peer read
    sel.close()
    for s in (c, conn, srv):
        s.close()


def test_http_server_and_urllib_through_the_shims(
    pair: tuple[ModuleType, ModuleType], tmp_path: Path
) -> None:
    """http.server imported under B's shims, urllib under A's: 1 MB, sha256 equal."""
    sa, sb = pair
    real_server, real_request = http.server, urllib.request
    body = os.urandom(1 << 20)
    (tmp_path / "blob").write_bytes(body)
    previous = install(sb.socket._driver)
    try:
        import http.server as hs

        handler = lambda *a: hs.SimpleHTTPRequestHandler(*a, directory=str(tmp_path))  # noqa: E731
        server = hs.ThreadingHTTPServer((B_IP, 8000), handler)
    finally:
        uninstall(previous)
    assert hs is not real_server and hs.socket.socket._driver is sb.socket._driver  # type: ignore[attr-defined]
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    t.start()
    previous = install(sa.socket._driver)
    try:
        import urllib.request as ur

        assert ur is not real_request
        start = time.monotonic()
        with ur.urlopen(f"http://{B_IP}:8000/blob", timeout=10) as response:
            data: Any = response.read()
        elapsed = time.monotonic() - start
    finally:
        uninstall(previous)
        server.shutdown()
        server.server_close()
        t.join(5)
    assert hashlib.sha256(data).digest() == hashlib.sha256(body).digest()
    print(f"1 MB over the shims in {elapsed:.2f} s")
    assert http.server is real_server and urllib.request is real_request  # restored


ASYNCIO_ECHO = """
import asyncio

async def main(host: str) -> bytes:
    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while data := await r.read(65536):
            w.write(data)
            await w.drain()
        w.close()

    srv = await asyncio.start_server(handle, host, 9000)
    r, w = await asyncio.open_connection(host, 9000)

    async def read_all() -> bytes:
        got = b""
        while data := await r.read(65536):
            got += data
        return got

    reader = asyncio.ensure_future(read_all())
    w.write(PAYLOAD)
    await w.drain()
    w.write_eof()
    got = await reader
    w.close()
    srv.close()
    await srv.wait_closed()
    return got
"""


def test_asyncio_streams_through_the_shims(pair: tuple[ModuleType, ModuleType]) -> None:
    """asyncio imported under A's shims: an echo server and client on refstack (1 MB)."""
    sa, _ = pair
    payload = bytes(range(256)) * 4000
    previous = install(sa.socket._driver)
    try:
        namespace: dict[str, Any] = {"PAYLOAD": payload}
        exec(ASYNCIO_ECHO, namespace)  # asyncio imported afresh, against the shims
        aio = namespace["asyncio"]
        assert aio.base_events.socket.socket._driver is sa.socket._driver
        got = aio.run(aio.wait_for(namespace["main"](A_IP), 20))
    finally:
        uninstall(previous)
    assert got == payload
    assert "asyncio" not in sys.modules or sys.modules["asyncio"] is not aio  # the shimmed one is gone


def test_an_unreferenced_shim_socket_is_closed(pair: tuple[ModuleType, ModuleType]) -> None:
    sa, _ = pair
    driver = sa.socket._driver
    s = sa.socket(sa.AF_INET, sa.SOCK_DGRAM)
    s.bind((A_IP, 6000))
    del s
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with driver.locked():
            if not driver.runtime.fds() and not driver._signals:
                break
        time.sleep(0.01)
    with driver.locked():
        assert driver.runtime.fds() == {} and driver._signals == {}
    again = sa.socket(sa.AF_INET, sa.SOCK_DGRAM)
    again.bind((A_IP, 6000))  # the port is free again
    again.close()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--", "x.py"], "give a device"),
        (["run", "--tap", "t0"], "nothing to run"),
        (["run", "--tap", "t0", "--", "/nonexistent/x.py"], "no such program"),
        (["run", "--tap", "t0", "--ef", "FOO=1", "--", "-m", "http.server"], "EF_NAME=VALUE"),
        (["run", "--tap", "t0", "--ef", "EF_RXQ_SIZE=banana", "--", "-m", "http.server"], "EF_RXQ_SIZE"),
    ],
)
def test_run_usage_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    from refstack.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("refstack run: error:") and message in err
