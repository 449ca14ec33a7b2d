"""``python -m refstack run``: unmodified programs on refstack against the kernel.

- ``python -m http.server`` run unmodified on refstack (in a ``refstack run`` subprocess on
  ``tap0`` at 198.51.100.2), fetched with ``curl`` from the kernel side: 10 MB (the bulk size:
  ``--long`` or ``INTEROP_BULK_MB``), sha256 equal;
- ``urllib.request`` run on refstack, fetching from a kernel ``http.server`` at
  198.51.100.1: 10 MB, sha256 equal.

Each test builds the namespace as :func:`interop.conftest.open_interop` does (the same
``_setup_inside``: device up, kernel end 198.51.100.1/24), but makes the TAP device
persistent and lets go of it, so that the ``refstack run`` child attaches to it by name
(``--tap tap0``) after entering the namespace (``--netns /proc/self/fd/N``, the
namespace's descriptor passed down).  Kernel-side programs run under
``nsenter --net=/proc/self/fd/N``.  The child writes every frame to a pcap (``--pcap``);
a failure prints its path.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conformance import netns
from refstack.tuntap import TapLink

from .conftest import KERNEL_IP, REFSTACK_IP, _setup_inside, available, bulk_bytes, report

TUNSETPERSIST = 0x400454CB
TIMEOUT = 60.0
REPO = Path(__file__).resolve().parent.parent


@dataclass
class RunWorld:
    """A namespace with a persistent, configured ``tap0`` nobody is attached to yet."""

    ns: netns.NetNamespace
    tmp: Path
    pcap: Path
    runtime_dir: Path
    procs: list[subprocess.Popen[bytes]]
    size: int
    offload: bool = False  # refstack run --offload: the device with virtio-net offloads

    @property
    def nsfs(self) -> str:
        """The namespace as a path valid in a child that inherited :attr:`ns`'s fd."""
        return f"/proc/self/fd/{self.ns.fd}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        env["REFSTACK_RUNTIME_DIR"] = str(self.runtime_dir)
        return env

    def spawn(self, argv: list[str], log: str) -> subprocess.Popen[bytes]:
        out = (self.tmp / log).open("wb")
        proc = subprocess.Popen(
            argv, pass_fds=[self.ns.fd], stdout=out, stderr=subprocess.STDOUT, env=self.env(), cwd=self.tmp
        )
        out.close()
        self.procs.append(proc)
        return proc

    def refstack_run(self, program: list[str], log: str = "refstack-run.log") -> subprocess.Popen[bytes]:
        """``python -m refstack run --tap tap0 ... -- program`` inside the namespace."""
        argv = [sys.executable, "-m", "refstack", "run", "--tap", "tap0", "--netns", self.nsfs]
        argv += ["--address", f"{REFSTACK_IP}/24", "--name", "interop-run", "--pcap", str(self.pcap)]
        if self.offload:
            argv.append("--offload")
        return self.spawn([*argv, "--", *program], log)

    def kernel_run(self, program: list[str], log: str) -> subprocess.Popen[bytes]:
        """``program`` on the kernel, inside the namespace."""
        return self.spawn(["nsenter", f"--net={self.nsfs}", *program], log)

    def log(self, name: str) -> str:
        path = self.tmp / name
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_listening(self, ip: str, port: int, proc: subprocess.Popen[bytes], log: str) -> None:
        """Until a kernel client in the namespace can connect to ``ip:port``."""
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"{proc.args!r} exited with {proc.returncode}:\n{self.log(log)}")
            sock = self.ns.run(lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM), "probe")
            with sock:
                sock.settimeout(1.0)
                try:
                    sock.connect((ip, port))
                    return
                except OSError:
                    time.sleep(0.2)
        pytest.fail(f"nothing listens on {ip}:{port} after 30 s:\n{self.log(log)}")


def _persistent_tap() -> None:
    """(Inside the namespace.)  tap0 configured as the other interop tests have it, then made
    persistent and released, for the ``refstack run`` child to attach to."""
    link = _setup_inside(TapLink, "tap0")
    try:
        fcntl.ioctl(link.fd, TUNSETPERSIST, 1)
    finally:
        link.close()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunWorld]:
    ok, why = available()
    if not ok:
        pytest.skip(why)
    if shutil.which("nsenter") is None:
        pytest.skip("nsenter (util-linux) is needed to run kernel-side programs in the namespace")
    ns = netns.NetNamespace()
    w = RunWorld(ns, tmp_path, tmp_path / "tap0.pcap", tmp_path / "runtime", [], bulk_bytes(request.config))
    w.offload = getattr(request, "param", "plain") == "offload"
    request.node.interop_pcap = w.pcap
    try:
        ns.run(_persistent_tap, "interop-setup")
        yield w
    finally:
        for proc in w.procs:
            _stop(proc)
        with contextlib.suppress(Exception):
            ns.run(netns.destroy_sockets, "interop-teardown")
        ns.join(5.0)
        ns.close()  # the persistent device goes with the namespace


def _blob(directory: Path, size: int) -> str:
    directory.mkdir()
    data = os.urandom(size)
    (directory / "blob").write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def _curl() -> str:
    curl = shutil.which("curl")
    if curl is None and shutil.which("apt-get") is not None and os.geteuid() == 0:
        for step in (["install"], ["update"], ["install"]):  # update only when install fails
            if step == ["update"] and shutil.which("curl") is not None:
                break
            args = ["-y", "-q", "curl"] if step == ["install"] else ["-q"]
            subprocess.run(["apt-get", *step, *args], capture_output=True, check=False, timeout=300)
        curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is missing and could not be installed with apt-get")
    return curl


@pytest.mark.parametrize("world", ["plain", "offload"], indirect=True)
def test_http_server_on_refstack_fetched_by_kernel_curl(world: RunWorld) -> None:
    curl = _curl()
    digest = _blob(world.tmp / "www", world.size)
    server = world.refstack_run(
        ["-m", "http.server", "--bind", REFSTACK_IP, "--directory", str(world.tmp / "www"), "8000"]
    )
    world.wait_listening(REFSTACK_IP, 8000, server, "refstack-run.log")
    # The stack is visible to `refstack stackdump` from another process.
    dump = subprocess.run(
        [sys.executable, "-m", "refstack", "stackdump", "interop-run", "lots"],
        capture_output=True, text=True, env=world.env(), timeout=30, check=False,
    )  # fmt: skip
    assert dump.returncode == 0 and "interop-run" in dump.stdout, dump.stderr
    (world.tmp / "stackdump.txt").write_text(dump.stdout)
    out = world.tmp / "fetched"
    start = time.monotonic()
    fetch = world.kernel_run(
        [curl, "-sS", "--max-time", str(int(TIMEOUT)), "-o", str(out), f"http://{REFSTACK_IP}:8000/blob"],
        "curl.log",
    )
    assert fetch.wait(TIMEOUT + 10) == 0, world.log("curl.log") + world.log("refstack-run.log")
    elapsed = time.monotonic() - start
    assert out.stat().st_size == world.size
    assert hashlib.sha256(out.read_bytes()).hexdigest() == digest
    report(
        f"refstack run{' --offload' if world.offload else ''}: python -m http.server on refstack"
        f" -> kernel curl: {world.size / 1e6:.0f} MB"
        f" in {elapsed:.2f} s = {world.size / 1e6 / elapsed:.1f} MB/s (sha256 equal)"
    )
    _stop(server)
    assert server.returncode == 0, world.log("refstack-run.log")


FETCH = """\
import hashlib, json, sys, time, urllib.request, socket
start = time.monotonic()
with urllib.request.urlopen(sys.argv[1], timeout=60) as response:
    h, n = hashlib.sha256(), 0
    while chunk := response.read(1 << 18):
        h.update(chunk)
        n += len(chunk)
elapsed = time.monotonic() - start
print(json.dumps({"sha256": h.hexdigest(), "bytes": n, "seconds": elapsed,
                  "shim": getattr(socket, "__refstack_shim__", False)}))
"""


def test_urllib_on_refstack_fetches_from_kernel_http_server(world: RunWorld) -> None:
    digest = _blob(world.tmp / "www", world.size)
    server = world.kernel_run(
        [
            sys.executable,
            "-m",
            "http.server",
            "--bind",
            KERNEL_IP,
            "--directory",
            str(world.tmp / "www"),
            "8001",
        ],
        "kernel-http.log",
    )
    world.wait_listening(KERNEL_IP, 8001, server, "kernel-http.log")
    script = world.tmp / "fetch.py"
    script.write_text(FETCH)
    client = world.refstack_run([str(script), f"http://{KERNEL_IP}:8001/blob"])
    assert client.wait(TIMEOUT + 30) == 0, world.log("refstack-run.log")
    lines = world.log("refstack-run.log").strip().splitlines()
    result = json.loads(lines[-1])
    assert result["shim"] is True
    assert result["bytes"] == world.size
    assert result["sha256"] == digest
    seconds = result["seconds"]
    report(
        f"refstack run: urllib.request on refstack <- kernel http.server: {world.size / 1e6:.0f} MB"
        f" in {seconds:.2f} s = {world.size / 1e6 / seconds:.1f} MB/s (sha256 equal)"
    )
