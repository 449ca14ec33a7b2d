"""refstack.select over UDP sockets: readiness at the exact virtual instant, Linux semantics.

Stack A (10.0.0.1) and stack B (10.0.0.2) share a 125 ms MemoryLink; a datagram sent
at t=0 makes its receiver readable at exactly t=0.125.
"""

from __future__ import annotations

import errno

import pytest

from refstack import runtime as rt_mod
from refstack import socket as rs
from refstack.select import (
    EPOLLERR,
    EPOLLET,
    EPOLLIN,
    EPOLLONESHOT,
    EPOLLOUT,
    POLLERR,
    POLLIN,
    POLLNVAL,
    POLLOUT,
    POLLRDNORM,
    epoll,
    poll,
    select,
)
from tests.api.harness import B_IP, DELAY, Net


@pytest.fixture
def pair(net: Net) -> tuple[rs.socket, rs.socket]:
    """(sender on A, receiver on B bound to port 5000)."""
    return net.udp(net.a), net.udp(net.b, ("", 5000))


def send(sender: rs.socket, payload: bytes = b"x") -> None:
    sender.sendto(payload, (B_IP, 5000))


# --- select --------------------------------------------------------------------------------------
def test_select_returns_at_the_arrival_instant(net: Net, pair: tuple[rs.socket, rs.socket]) -> None:
    sender, receiver = pair
    send(sender)
    assert select([receiver], [], [], 0) == ([], [], [])  # timeout 0: nothing yet, time stays
    assert net.now() == 0.0
    assert select([receiver], [], [], 5.0) == ([receiver], [], [])
    assert net.now() == DELAY
    assert select([receiver], [], [], 0) == ([receiver], [], [])  # level: until read
    receiver.recv(10)
    assert select([receiver], [], [], 0) == ([], [], [])


def test_select_timeout_is_exact_and_without_lists_it_just_waits(net: Net) -> None:
    receiver = net.udp(net.b, ("", 5000))
    assert select([receiver], [], [], 0.25) == ([], [], [])
    assert net.now() == 0.25
    with rt_mod.use(net.a):
        assert select([], [], [], 0.5) == ([], [], [])
    assert net.now() == 0.75


def test_select_on_writable_udp_and_plain_descriptors(net: Net, pair: tuple[rs.socket, rs.socket]) -> None:
    sender, receiver = pair
    with rt_mod.use(net.b):
        fd = receiver.fileno()
        assert select([fd], [fd], [fd], None) == ([], [fd], [])
    # sockets of two runtimes that share the driver can be selected together
    send(sender)
    assert select([sender, receiver], [], [], None) == ([receiver], [], [])


def test_select_rejects_closed_sockets_and_descriptors(net: Net) -> None:
    s = net.udp(net.a)
    fd = s.fileno()
    s.close()
    with pytest.raises(ValueError, match="negative integer"):
        select([s], [], [], 0)
    with rt_mod.use(net.a), pytest.raises(OSError) as excinfo:
        select([fd], [], [], 0)
    assert excinfo.value.errno == errno.EBADF
    with pytest.raises(ValueError, match="non-negative"):
        select([], [], [], -1)


def test_select_counts_an_error_as_readable_and_writable(net: Net) -> None:
    s = net.udp(net.a)
    s.connect((B_IP, 9999))
    s.send(b"anyone?")
    assert select([s], [], [], None) == ([s], [], [])
    assert net.now() == 2 * DELAY  # the port unreachable came back
    assert select([s], [s], [s], 0) == ([s], [s], [])


# --- poll ----------------------------------------------------------------------------------------
def test_poll_waits_in_milliseconds_and_reports_what_was_asked(
    net: Net, pair: tuple[rs.socket, rs.socket]
) -> None:
    sender, receiver = pair
    p = poll()
    p.register(receiver, POLLIN)
    assert p.poll(0) == []
    assert p.poll(250) == []
    assert net.now() == 0.25
    send(sender)
    assert p.poll() == [(receiver.fileno(), POLLIN)]
    assert net.now() == 0.25 + DELAY
    p.modify(receiver, POLLIN | POLLRDNORM | POLLOUT)
    assert p.poll(-1) == [(receiver.fileno(), POLLIN | POLLRDNORM | POLLOUT)]


def test_poll_reports_pollnval_for_a_closed_descriptor(net: Net) -> None:
    s = net.udp(net.a)
    fd = s.fileno()
    p = poll()
    p.register(s)
    assert p.poll(0) == [(fd, POLLOUT)]
    s.close()
    assert p.poll(0) == [(fd, POLLNVAL)]
    p.unregister(fd)
    assert p.poll(0) == []


def test_poll_unregister_and_modify_of_unknown_descriptors(net: Net) -> None:
    s = net.udp(net.a)
    p = poll()
    with pytest.raises(KeyError):
        p.unregister(s)
    with pytest.raises(FileNotFoundError):
        p.modify(s, POLLIN)
    p.register(s, POLLOUT)
    p.unregister(s)
    assert p.poll(0) == []
    with pytest.raises(ValueError, match="belongs to runtime"):
        p.register(s)
        p.register(net.udp(net.b))


def test_poll_reports_pollerr_even_when_not_asked(net: Net) -> None:
    s = net.udp(net.a)
    s.connect((B_IP, 9999))
    s.send(b"anyone?")
    p = poll()
    p.register(s, POLLIN)
    assert p.poll() == [(s.fileno(), POLLERR)]  # an error alone: no POLLIN (Linux datagram_poll)
    assert net.now() == 2 * DELAY


# --- epoll ---------------------------------------------------------------------------------------
def test_epoll_is_level_triggered_by_default(net: Net, pair: tuple[rs.socket, rs.socket]) -> None:
    sender, receiver = pair
    ep = epoll(runtime=net.b)
    ep.register(receiver, EPOLLIN)
    send(sender, b"1")
    send(sender, b"2")
    fd = receiver.fileno()
    assert ep.poll() == [(fd, EPOLLIN)]
    assert net.now() == DELAY
    assert ep.poll(0) == [(fd, EPOLLIN)]
    receiver.recv(10)
    assert ep.poll(0) == [(fd, EPOLLIN)]  # one datagram left
    receiver.recv(10)
    assert ep.poll(0) == []


def test_epoll_edge_triggered_reports_once_per_arrival(net: Net, pair: tuple[rs.socket, rs.socket]) -> None:
    sender, receiver = pair
    ep = epoll(runtime=net.b)
    ep.register(receiver, EPOLLIN | EPOLLET)
    fd = receiver.fileno()
    assert ep.poll(0) == []
    send(sender, b"1")
    assert ep.poll(1.0) == [(fd, EPOLLIN)]
    assert net.now() == DELAY
    assert ep.poll(0) == []  # still readable, but no new edge
    assert ep.poll(0.5) == []
    assert net.now() == DELAY + 0.5
    send(sender, b"2")
    assert ep.poll() == [(fd, EPOLLIN)]  # a new arrival is a new edge, unread data or not
    assert net.now() == 2 * DELAY + 0.5
    receiver.recv(10)
    assert ep.poll(0) == []  # reading is no edge
    ep.modify(receiver, EPOLLIN | EPOLLET)
    assert ep.poll(0) == [(fd, EPOLLIN)]  # modify reports current readiness again


def test_edge_triggered_epollout_is_not_woken_by_an_arrival(
    net: Net, pair: tuple[rs.socket, rs.socket]
) -> None:
    """Linux wakes epoll with the event's key: a datagram is an EPOLLIN wake-up."""
    sender, receiver = pair
    ep = epoll(runtime=net.b)
    ep.register(receiver, EPOLLOUT | EPOLLET)
    fd = receiver.fileno()
    assert ep.poll(0) == [(fd, EPOLLOUT)]
    assert ep.poll(0) == []
    send(sender)
    assert ep.poll(1.0) == []
    ep.modify(receiver, EPOLLIN | EPOLLOUT | EPOLLET)
    assert ep.poll(0) == [(fd, EPOLLIN | EPOLLOUT)]
    send(sender)
    assert ep.poll() == [(fd, EPOLLIN | EPOLLOUT)]


def test_epoll_oneshot_until_modify(net: Net, pair: tuple[rs.socket, rs.socket]) -> None:
    sender, receiver = pair
    ep = epoll(runtime=net.b)
    ep.register(receiver, EPOLLIN | EPOLLONESHOT)
    fd = receiver.fileno()
    send(sender)
    assert ep.poll() == [(fd, EPOLLIN)]
    assert ep.poll(0) == []
    send(sender)
    assert ep.poll(1.0) == []  # disabled, even for new data
    ep.modify(receiver, EPOLLIN | EPOLLONESHOT)
    assert ep.poll(0) == [(fd, EPOLLIN)]
    assert ep.poll(0) == []


def test_epoll_reports_errors_unasked(net: Net) -> None:
    s = net.udp(net.a)
    s.connect((B_IP, 9999))
    s.send(b"anyone?")
    ep = epoll(runtime=net.a)
    ep.register(s, 0)
    assert ep.poll() == [(s.fileno(), EPOLLERR)]
    assert net.now() == 2 * DELAY


def test_epoll_unregister_and_closed_descriptors(net: Net, pair: tuple[rs.socket, rs.socket]) -> None:
    sender, receiver = pair
    ep = epoll(runtime=net.b)
    assert ep.fileno() == 4  # after the receiver's 3, from the same table
    ep.register(receiver, EPOLLIN)
    with pytest.raises(FileExistsError):
        ep.register(receiver, EPOLLIN)
    ep.unregister(receiver)
    with pytest.raises(FileNotFoundError):
        ep.unregister(receiver)
    with pytest.raises(FileNotFoundError):
        ep.modify(receiver, EPOLLIN)
    send(sender)
    assert ep.poll(1.0) == []
    ep.register(receiver, EPOLLIN)
    fd = receiver.fileno()
    receiver.close()
    assert ep.poll(0) == []  # closing the socket removed it from the interest list
    with pytest.raises(OSError) as excinfo:
        ep.unregister(fd)
    assert excinfo.value.errno == errno.EBADF
    with pytest.raises(OSError) as excinfo:
        ep.register(ep.fileno())
    assert excinfo.value.errno == errno.EINVAL
    with pytest.raises(ValueError, match="maxevents must be greater than 0"):
        ep.poll(0, 0)
    with pytest.raises(ValueError, match="belongs to runtime"):
        ep.register(sender)


def test_epoll_close_and_context_manager(net: Net) -> None:
    with epoll(runtime=net.a) as ep:
        assert ep.fileno() == 3
        assert not ep.closed
    assert ep.closed
    ep.close()
    for call in (ep.fileno, lambda: ep.poll(0), lambda: ep.register(3)):
        with pytest.raises(ValueError, match="closed epoll object"):
            call()
    assert net.udp(net.a).fileno() == 3  # the descriptor was freed


def test_epoll_maxevents_goes_round_robin_over_level_triggered_descriptors(net: Net) -> None:
    socks = [net.udp(net.a) for _ in range(3)]
    ep = epoll(runtime=net.a)
    for s in socks:
        ep.register(s, EPOLLOUT)
    fds = [s.fileno() for s in socks]
    assert ep.poll(0, 2) == [(fds[0], EPOLLOUT), (fds[1], EPOLLOUT)]
    assert ep.poll(0, 2) == [(fds[2], EPOLLOUT), (fds[0], EPOLLOUT)]


def test_an_epoll_descriptor_is_itself_pollable(net: Net, pair: tuple[rs.socket, rs.socket]) -> None:
    sender, receiver = pair
    inner = epoll(runtime=net.b)
    inner.register(receiver, EPOLLIN)
    outer = epoll(runtime=net.b)
    outer.register(inner, EPOLLIN)
    assert outer.poll(0) == []
    send(sender)
    assert outer.poll() == [(inner.fileno(), EPOLLIN)]
    assert net.now() == DELAY
    assert inner.poll(0) == [(receiver.fileno(), EPOLLIN)]


def test_the_epoll_timeout_is_exact(net: Net) -> None:
    ep = epoll(runtime=net.a)
    assert ep.poll(0.375) == []
    assert net.now() == 0.375
    assert ep.poll(0.0001) == []  # rounded up to a millisecond, as epoll_wait
    assert net.now() == 0.376
