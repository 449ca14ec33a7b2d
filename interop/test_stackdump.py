"""``refstack stackdump`` from another process inspects a live interop stack mid-transfer:
the driver shares its stack lock with the control endpoint (refstack.control's lock
convention), so the dump is a consistent state between two loop iterations."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import KERNEL_IP, REFSTACK_IP, Interop, close_interop, open_interop

TIMEOUT = 30.0


@pytest.fixture
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Interop]:
    world = open_interop(tmp_path, request.config, name="interop", control_dir=tmp_path / "run")
    request.node.interop_pcap = world.pcap
    try:
        yield world
    finally:
        close_interop(world)


def test_stackdump_during_a_transfer(served: Interop, tmp_path: Path) -> None:
    interop = served
    srv = interop.socket()
    srv.settimeout(TIMEOUT)
    srv.bind((REFSTACK_IP, 5001))
    srv.listen(1)
    k = interop.kernel_socket()
    k.settimeout(TIMEOUT)
    stop = threading.Event()

    def sender() -> None:
        k.connect((REFSTACK_IP, 5001))
        block = bytes(65536)
        while not stop.is_set():
            k.sendall(block)
        k.close()

    bg = interop.thread(sender, "kernel-sender")
    conn, _ = srv.accept()
    conn.settimeout(TIMEOUT)
    received = [0]

    def reader() -> None:
        while data := conn.recv(1 << 18):
            received[0] += len(data)

    rd = interop.thread(reader, "refstack-reader")
    while received[0] < 2_000_000:
        rd.thread.join(0.01)
    env = dict(os.environ, REFSTACK_RUNTIME_DIR=str(tmp_path / "run"))
    dump = subprocess.run(
        [sys.executable, "-m", "refstack", "stackdump", "lots"],
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT,
        check=False,
    )
    moving = received[0]
    stop.set()
    bg.join(TIMEOUT)
    rd.join(TIMEOUT)
    conn.close()
    print(dump.stdout)
    assert dump.returncode == 0, dump.stderr
    text = dump.stdout
    assert "interop" in text  # the stack
    assert f"{REFSTACK_IP}:5001" in text and KERNEL_IP in text  # its sockets
    assert "rx_frames" in text  # its counters
    assert received[0] > moving  # the transfer went on after the dump
