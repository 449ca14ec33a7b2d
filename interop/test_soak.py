"""Soak: refstack against the Linux kernel over TAP through an impaired link (issue 9).

The impairment of ``tests/tcp/test_impaired_transfer.py`` (5 % loss, 5 % reordering,
1 % duplication, 0.1 % corruption, 2 ms delay) acts on refstack's side of the device
only, in real time (:class:`refstack.impairment_device.ImpairedDevice`): on every frame
refstack reads from the device and every frame it writes to it.  The kernel is left as
it is (no netem); it simply sees a bad wire.  Corruption flips one bit of the frame's
TCP segment, so the receiver must reject the frame on its TCP checksum: the kernel counts
it in the namespace's ``Tcp: InCsumErrors``, refstack in ``tcp_rx_bad_checksum``.

One connection per seed (the kernel opens it for some seeds, refstack for the others)
moves data both ways at once: 1 MB each way by default, 10 MB with ``--long``
(``INTEROP_SOAK_MB`` overrides); sha256 equal both ways, MB/s and the impairment's
counters reported.  Two pcaps in the test's tmp dir: ``tap0.pcap`` (what refstack's stack
received and sent, printed on failure as in the other interop tests) and
``tap0-wire.pcap`` (what the kernel sent and what it was given, after the impairment).

The seeds are chosen so that in each direction the impairment corrupts a frame within
the first 500 (every run moves well over 700 frames each way), so every run checks the
checksum rejection on both sides.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from refstack.impairment import Impairment
from refstack.impairment_device import ImpairedDevice
from refstack.tuntap import DeviceLink

from . import traffic
from .conftest import (
    KERNEL_IP,
    REFSTACK_IP,
    Capture,
    Interop,
    close_interop,
    open_interop,
    report,
)

TIMEOUT = 60.0
CHUNK = 1 << 16
PORT = 5009

# (seed, who opens the connection).  Each seed corrupts a frame within the first 500 of
# each direction (see the module docstring).
RUNS = [(8, "kernel"), (15, "refstack"), (33, "kernel")]


def impairment(seed: int) -> Impairment:
    """The issue's impairment (as ``tests/tcp/test_impaired_transfer.py``)."""
    return Impairment(seed, loss=0.05, reorder=0.05, duplicate=0.01, corrupt=0.001, delay=0.002)


def soak_bytes(config: pytest.Config) -> int:
    """Bytes each way: ``INTEROP_SOAK_MB``, else 10 MB with ``--long``, else 1 MB."""
    explicit = os.environ.get("INTEROP_SOAK_MB")
    if explicit:
        return int(float(explicit) * 1_000_000)
    return (10 if config.getoption("--long") else 1) * 1_000_000


@dataclass
class Soak:
    world: Interop
    device: ImpairedDevice
    wire: Capture
    seed: int
    opener: str


@pytest.fixture
def soak(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Soak]:
    seed, opener = request.param
    wire = Capture(tmp_path / "tap0-wire.pcap", ethernet=True)
    wire.open()
    made: list[ImpairedDevice] = []

    def wrap(link: DeviceLink) -> DeviceLink:
        made.append(ImpairedDevice(link, impairment(seed), wire=wire.tap))
        return made[-1]

    try:
        world = open_interop(tmp_path, request.config, wrap_link=wrap)
        request.node.interop_pcap = world.pcap
        print(f"[soak] seed {seed}; the kernel's side of the impairment: {wire.path}")
        try:
            yield Soak(world, made[0], wire, seed, opener)
        finally:
            close_interop(world)
    finally:
        wire.close()


def _kernel_tcp_mib(world: Interop) -> dict[str, int]:
    """The namespace's ``Tcp:`` SNMP counters (/proc/thread-self/net/snmp, read inside)."""

    def read() -> dict[str, int]:
        rows = [line.split() for line in Path("/proc/thread-self/net/snmp").read_text().splitlines()]
        tcp = [row for row in rows if row[0] == "Tcp:"]
        names, values = tcp[0], tcp[1]
        return {n: int(v) for n, v in zip(names[1:], values[1:], strict=True)}

    return world.ns.run(read, "soak-snmp")


@dataclass
class Flow:
    """One direction's result."""

    sent: Any
    got: Any
    received: int = 0
    done: float = 0.0


def _send(sock: Any, size: int, seed: int, flow: Flow) -> None:
    for chunk in traffic.chunks(size, seed, CHUNK):
        sock.sendall(chunk)
        flow.sent.update(chunk)
    sock.shutdown(socket.SHUT_WR)


def _drain(sock: Any, flow: Flow) -> None:
    while data := sock.recv(1 << 18):
        flow.got.update(data)
        flow.received += len(data)
    flow.done = time.monotonic()


@pytest.mark.parametrize("soak", RUNS, indirect=True, ids=[f"seed{s}-{o}-opens" for s, o in RUNS])
def test_soak_both_ways_through_impaired_tap(soak: Soak) -> None:
    world, dev, seed = soak.world, soak.device, soak.seed
    size = soak_bytes(world.config)
    kernel_before = _kernel_tcp_mib(world)
    refstack_before = world.counters()

    # --- the connection, opened through the impairment -------------------------------------
    k = world.kernel_socket()
    k.settimeout(TIMEOUT)
    if soak.opener == "kernel":
        srv = world.socket()
        srv.settimeout(TIMEOUT)
        srv.bind((REFSTACK_IP, PORT))
        srv.listen(1)
        bg = world.thread(lambda: k.connect((REFSTACK_IP, PORT)), "kernel-connect")
        r, _ = srv.accept()
        bg.join(TIMEOUT)
        srv.close()
    else:
        k.bind((KERNEL_IP, PORT))
        k.listen(1)
        r = world.socket()
        r.settimeout(TIMEOUT)
        r.connect((KERNEL_IP, PORT))
        kc, _ = k.accept()
        world.kernel_sockets.append(kc)
        k = kc
        k.settimeout(TIMEOUT)
    r.settimeout(TIMEOUT)

    # --- both ways at once -----------------------------------------------------------------
    k2r = Flow(hashlib.sha256(), hashlib.sha256())  # kernel -> refstack
    r2k = Flow(hashlib.sha256(), hashlib.sha256())  # refstack -> kernel
    start = time.monotonic()
    threads = [
        world.thread(lambda: _send(k, size, 2 * seed, k2r), "kernel-sender"),
        world.thread(lambda: _drain(k, r2k), "kernel-receiver"),
        world.thread(lambda: _send(r, size, 2 * seed + 1, r2k), "refstack-sender"),
    ]
    _drain(r, k2r)
    for t in threads:
        t.join(TIMEOUT * 4)
    r.close()
    k.close()
    time.sleep(0.1)  # the last held frames leave the impairment

    assert k2r.received == size, f"kernel -> refstack: {k2r.received} of {size} bytes"
    assert r2k.received == size, f"refstack -> kernel: {r2k.received} of {size} bytes"
    assert k2r.got.hexdigest() == k2r.sent.hexdigest(), "kernel -> refstack: sha256 differs"
    assert r2k.got.hexdigest() == r2k.sent.hexdigest(), "refstack -> kernel: sha256 differs"

    # --- what the impairment did, and how each side took it ---------------------------------
    rx, tx = dev.counters["rx"], dev.counters["tx"]  # as refstack sees the directions
    kernel = {n: v - kernel_before.get(n, 0) for n, v in _kernel_tcp_mib(world).items()}
    refstack = {n: v - refstack_before.get(n, 0) for n, v in world.counters().items()}
    mb = size / 1e6
    k2r_s, r2k_s = k2r.done - start, r2k.done - start

    def fates(c: Any) -> str:
        return (
            f"{c.frames} frames: dropped {c.dropped}, duplicated {c.duplicated}, "
            f"corrupted {c.corrupted}, reordered {c.reordered}"
        )

    report(
        f"soak seed {seed} ({soak.opener} opens), {mb:g} MB each way at once through the impaired TAP: "
        f"kernel -> refstack {k2r_s:.2f} s = {mb / k2r_s:.2f} MB/s, "
        f"refstack -> kernel {r2k_s:.2f} s = {mb / r2k_s:.2f} MB/s (sha256 equal both ways)"
    )
    report(f"    impairment rx (kernel -> refstack) {fates(rx)}")
    report(f"    impairment tx (refstack -> kernel) {fates(tx)}")
    report(
        f"    kernel Tcp InCsumErrors {kernel['InCsumErrors']}, RetransSegs {kernel['RetransSegs']}; "
        f"refstack tcp_rx_bad_checksum {refstack.get('tcp_rx_bad_checksum', 0)}, "
        f"tcp_rx_malformed {refstack.get('tcp_rx_malformed', 0)}, "
        f"retransmits fast {refstack.get('tcp_fast_retransmit', 0)} "
        f"rto {refstack.get('tcp_rto_retransmit', 0)}"
    )

    # The impairment acted in both directions (the seeds corrupt a frame within the first
    # 500 each way; a smaller INTEROP_SOAK_MB may move fewer).
    for name, c in (("rx", rx), ("tx", tx)):
        if c.frames > 500:
            assert c.dropped and c.reordered, f"{name}: {c}"
            assert c.corrupted_tcp >= 1, f"{name}: seed {seed} corrupts a frame within the first 500: {c}"
    assert dev.inner.rx_frames == rx.frames
    # The kernel rejected every corrupted segment on its TCP checksum (a flip in the data
    # offset nibble may instead make it malformed: dropped before the checksum).
    assert tx.corrupted_tcp - tx.corrupted_tcp_doff <= kernel["InCsumErrors"] <= tx.corrupted_tcp, (
        f"kernel InCsumErrors {kernel['InCsumErrors']}, corrupted TCP segments sent {tx}"
    )
    # refstack rejected each corrupted segment on receipt: on its checksum or as malformed.
    rejected = refstack.get("tcp_rx_bad_checksum", 0) + refstack.get("tcp_rx_malformed", 0)
    assert rejected == rx.corrupted_tcp, f"refstack rejected {rejected}, corrupted TCP segments received {rx}"
    assert refstack.get("ip_rx_bad_checksum", 0) == 0  # the flips are in the segment, not the IP header
    # The wire pcap holds every frame the kernel sent and every frame it was given.
    assert soak.wire.frames == rx.frames + tx.delivered
