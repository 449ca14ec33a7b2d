"""The real-time driver on its own, without privileges: two refstacks joined by a
``SOCK_SEQPACKET`` socket pair (one read = one frame, as on a TAP device), each driven by a
:class:`refstack.tuntap.RealTimeDriver` loop thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from refstack import select as rselect
from refstack.stack import Stack
from refstack.tuntap import DeviceLink, LoopError, RealTimeDriver, TapLink, TunLink

A_IP, B_IP = "198.51.100.1", "198.51.100.2"


@pytest.fixture
def pair() -> Iterator[tuple[RealTimeDriver, RealTimeDriver]]:
    sa, sb = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    links = [TapLink(sa.detach(), "eth0"), TapLink(sb.detach(), "eth0")]  # each owns its end
    drivers = []
    for i, (link, ip) in enumerate(zip(links, (A_IP, B_IP), strict=True)):
        stack = Stack(name=f"s{i}", seed=i)
        link.attach(stack, ip, 24, mac=f"02:00:00:00:00:0{i + 1}")
        drivers.append(RealTimeDriver(stack, link).start())
    try:
        yield drivers[0], drivers[1]
    finally:
        for d in drivers:
            d.close()
        for link in links:
            link.close()


def test_tcp_echo_between_two_drivers(pair: tuple[RealTimeDriver, RealTimeDriver]) -> None:
    a, b = pair
    srv = b.socket()
    srv.settimeout(5)
    srv.bind((B_IP, 7))
    srv.listen(4)

    def serve() -> None:
        conn, _ = srv.accept()
        conn.settimeout(5)
        while data := conn.recv(65536):
            conn.sendall(data)
        conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    c = a.socket()
    c.settimeout(5)
    start = time.monotonic()
    c.connect((B_IP, 7))
    assert time.monotonic() - start < 0.5  # the SYN left at once: connect kicked the loop
    payload = bytes(range(256)) * 1000
    c.sendall(payload)
    got = b""
    while len(got) < len(payload):
        got += c.recv(65536)
    assert got == payload
    c.close()
    t.join(5)
    assert not t.is_alive()


def test_timeout_is_real_time_and_idle_loop_sleeps(pair: tuple[RealTimeDriver, RealTimeDriver]) -> None:
    a, _ = pair
    u = a.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind((A_IP, 9999))
    u.settimeout(0.3)
    with a.locked():
        before = a.loops
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        u.recvfrom(100)
    waited = time.monotonic() - start
    assert 0.29 <= waited < 1.0
    with a.locked():
        assert a.loops - before < 20  # no busy-waiting: the loop slept through the wait


def test_wait_until_without_the_lock_and_timeout_zero(pair: tuple[RealTimeDriver, RealTimeDriver]) -> None:
    a, _ = pair
    assert a.wait_until(lambda: True, None)
    assert not a.wait_until(lambda: False, 0)
    start = time.monotonic()
    assert not a.wait_until(lambda: False, 0.05)
    assert time.monotonic() - start >= 0.05
    with pytest.raises(ValueError, match="timeout"):
        a.wait_until(lambda: True, -1)


def test_waiters_raise_when_the_driver_closes(pair: tuple[RealTimeDriver, RealTimeDriver]) -> None:
    a, _ = pair
    u = a.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind((A_IP, 9998))
    errors: list[BaseException] = []

    def block() -> None:
        try:
            u.recvfrom(100)
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=block, daemon=True)
    t.start()
    time.sleep(0.1)
    a.close()
    t.join(5)
    assert len(errors) == 1 and isinstance(errors[0], LoopError)


def test_the_link_must_be_attached_first() -> None:
    sa, sb = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    link = TapLink(sa.detach(), "eth0")
    try:
        with pytest.raises(ValueError, match="attach"):
            RealTimeDriver(Stack(), link)
    finally:
        link.close()
        sb.close()


def test_tun_link_has_no_mac() -> None:
    sa, sb = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        link: DeviceLink = TunLink(sa.fileno(), "tun0")
        with pytest.raises(ValueError, match="no MAC"):
            link.attach(Stack(), A_IP, 24, mac="02:00:00:00:00:01")
        assert not link.attach(Stack(), A_IP, 24).is_ethernet
    finally:
        sa.close()
        sb.close()


def test_select_and_epoll_on_locked_sockets(pair: tuple[RealTimeDriver, RealTimeDriver]) -> None:
    """refstack.select works on LockedSockets when called under the lock (driver.call)."""
    a, b = pair
    rx = b.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind((B_IP, 5000))
    tx = a.socket(socket.AF_INET, socket.SOCK_DGRAM)
    assert b.call(rselect.select, [rx], [], [], 0.05) == ([], [], [])
    tx.sendto(b"ping", (B_IP, 5000))
    readable, _, _ = b.call(rselect.select, [rx], [], [], 5.0)
    assert readable == [rx]
    ep = b.call(rselect.epoll, runtime=b.runtime)
    b.call(ep.register, rx.fileno(), rselect.EPOLLIN)
    assert b.call(ep.poll, 1.0) == [(rx.fileno(), rselect.EPOLLIN)]
    assert rx.recvfrom(100) == (b"ping", (A_IP, tx.getsockname()[1]))
    assert b.call(ep.poll, 0.05) == []
