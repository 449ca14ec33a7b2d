"""TCP traffic between the kernel and refstack, shared by the interop tests.

A bulk transfer moves ``size`` pseudo-random bytes (the same for the same seed) one
way over a fresh connection, checks them by sha256 and the byte count, waits for
the sender's FIN to be answered, and returns the seconds the receiver took.  An echo
has the kernel send messages that refstack sends back.
"""

from __future__ import annotations

import hashlib
import random
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

from .conftest import KERNEL_IP, REFSTACK_IP, Interop

TIMEOUT = 30.0
CHUNK = 1 << 20
PORT = 5001


def chunks(total: int, seed: int, size: int = CHUNK) -> Iterator[bytes]:
    """``total`` pseudo-random bytes in chunks of at most ``size`` (the same for the same seed)."""
    rng = random.Random(seed)
    left = total
    while left:
        n = min(size, left)
        yield rng.randbytes(n)
        left -= n


def drain(recv: Callable[[int], bytes], hasher: hashlib._Hash) -> int:
    """Read until EOF into ``hasher``; returns the byte count."""
    got = 0
    while data := recv(1 << 18):
        hasher.update(data)
        got += len(data)
    return got


def kernel_to_refstack(world: Interop, size: int) -> float:
    """The kernel connects to refstack and sends ``size`` bytes, then its FIN."""
    srv = world.socket()
    srv.settimeout(TIMEOUT)
    srv.bind((REFSTACK_IP, PORT))
    srv.listen(1)
    k = world.kernel_socket()
    k.settimeout(TIMEOUT)
    sent = hashlib.sha256()

    def sender() -> None:
        k.connect((REFSTACK_IP, PORT))
        for chunk in chunks(size, 1):
            k.sendall(chunk)
            sent.update(chunk)
        k.shutdown(socket.SHUT_WR)
        assert k.recv(1) == b""
        k.close()

    bg = world.thread(sender, "kernel-sender")
    conn, _ = srv.accept()
    conn.settimeout(TIMEOUT)
    got = hashlib.sha256()
    start = time.monotonic()
    n = drain(conn.recv, got)
    elapsed = time.monotonic() - start
    conn.close()
    bg.join(TIMEOUT)
    assert n == size
    assert got.hexdigest() == sent.hexdigest()
    return elapsed


def refstack_to_kernel(world: Interop, size: int) -> float:
    """refstack connects to the kernel and sends ``size`` bytes, then its FIN."""
    lk = world.kernel_socket()
    lk.settimeout(TIMEOUT)
    lk.bind((KERNEL_IP, PORT))
    lk.listen(1)
    got = hashlib.sha256()
    count = [0]

    def receiver() -> None:
        conn, _ = lk.accept()
        with conn:
            conn.settimeout(TIMEOUT)
            count[0] = drain(conn.recv, got)

    bg = world.thread(receiver, "kernel-receiver")
    c = world.socket()
    c.settimeout(TIMEOUT)
    c.connect((KERNEL_IP, PORT))
    sent = hashlib.sha256()
    start = time.monotonic()
    for chunk in chunks(size, 2):
        c.sendall(chunk)
        sent.update(chunk)
    c.shutdown(socket.SHUT_WR)
    assert c.recv(1) == b""  # the kernel's FIN: everything was read
    elapsed = time.monotonic() - start
    c.close()
    bg.join(TIMEOUT)
    assert count[0] == size
    assert got.hexdigest() == sent.hexdigest()
    return elapsed


def kernel_echo_client(world: Interop, messages: list[bytes], port: int = 7) -> None:
    """The kernel connects to refstack's echo server on ``port``, sends each message
    and reads it back whole before the next; refstack echoes until the kernel's FIN."""
    srv = world.socket()
    srv.settimeout(TIMEOUT)
    srv.bind((REFSTACK_IP, port))
    srv.listen(8)
    k = world.kernel_socket()
    k.settimeout(TIMEOUT)

    def client() -> None:
        k.connect((REFSTACK_IP, port))
        for m in messages:
            k.sendall(m)
            got = b""
            while len(got) < len(m):
                got += k.recv(65536)
            assert got == m
        k.close()

    bg = world.thread(client, "kernel-client")
    conn, peer = srv.accept()
    assert peer[0] == KERNEL_IP
    conn.settimeout(TIMEOUT)
    while data := conn.recv(65536):
        conn.sendall(data)
    conn.close()
    bg.join(TIMEOUT)


def udp_pair(world: Interop, refstack_port: int = 5000, kernel_port: int = 5001) -> tuple[Any, socket.socket]:
    """A refstack UDP socket on ``REFSTACK_IP:refstack_port`` and a kernel one on
    ``KERNEL_IP:kernel_port``, both bound, both with the interop timeout."""
    r = world.socket(socket.AF_INET, socket.SOCK_DGRAM)
    r.settimeout(TIMEOUT)
    r.bind((REFSTACK_IP, refstack_port))
    k = world.kernel_socket(socket.AF_INET, socket.SOCK_DGRAM)
    k.settimeout(TIMEOUT)
    k.bind((KERNEL_IP, kernel_port))
    return r, k
