"""One-way TCP bulk throughput over a real TAP device, in one run on one machine.

Measured, each in a private network namespace of its own (``conformance.netns``; nothing
touches the host's interfaces), the kernel's end at 198.51.100.1/24 and the stack under
test at 198.51.100.2:

- ``refstack``: kernel -> refstack and refstack -> kernel, refstack attached to ``tap0``
  by :class:`refstack.tuntap.TapLink` and driven by
  :class:`refstack.tuntap.RealTimeDriver` (one process, the application on the main
  thread, the event loop on its own); a plain device: complete, MTU-sized frames;
- ``refstack_offload``: the same two transfers on a device opened with the virtio-net
  offloads (``TapLink.create(name, offload=True)``: ``IFF_VNET_HDR``,
  ``TUN_F_CSUM|TUN_F_TSO4``, as QEMU and gVisor open theirs): the kernel hands refstack
  TCP super-segments of up to 64 KB with a partial checksum, refstack hands the kernel
  TSO super-segments.  The rows add the link's offload counters (super-segments read and
  written, the longest frame read);
- ``pytcp``: the same two directions for PyTCP 2.7.6 (``pip install pytcp==2.7.6``; or
  ``--pytcp-path DIR`` holding it), run in a child process inside the namespace with its
  own TAP service (``pytcp.TcpIpStack``), as PyTCP is meant to run; skipped with the
  reason when it is not installed or does not run (never a made-up number);
- ``veth``: kernel -> kernel over a veth pair between two namespaces: the ceiling.

The kernel's end of every transfer is a child Python process inside the namespace (plain
``socket`` calls), so that it never competes with refstack for this process's GIL.
Every transfer counts the bytes the receiver got up to EOF (the interop tests check
content with sha256; this only times).  ``--mtu 9000`` runs refstack's transfers on a
jumbo-frame TAP device (both ends), which shows how much of refstack's cost is per packet.
``--offload both|off|only`` picks the refstack rows (default both).  Prints MB/s (10^6
bytes per second) and the ratios refstack/PyTCP and refstack/veth for each refstack row
(``refstack_vs_*`` for the plain device, ``refstack_offload_vs_*`` with offloads, and
``refstack_offload_vs_refstack_*``, the offloads' speed-up).  ``--json`` prints one JSON
object on stdout; ``--profile`` adds where refstack's time goes (cProfile of the loop
thread and the application thread, merged; own time by module and by function, on stderr
and in the JSON: ``profile`` for the plain device, ``profile_offload`` with offloads).

Needs root (namespaces, TUN/TAP) and iproute2's ``ip`` for the veth pair.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import ctypes
import importlib.util
import io
import json
import os
import pstats
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from conformance import netns
from refstack.stack import Stack
from refstack.tuntap import RealTimeDriver, TapLink

KERNEL_IP = "198.51.100.1"
PEER_IP = "198.51.100.2"
NETMASK = "255.255.255.0"
PORT = 5001
CHUNK = 1 << 20
TIMEOUT = 120.0
PYTCP_VERSION = "2.7.6"


# --- namespaces -------------------------------------------------------------------------------------
def _configure(dev: str, ip: str, mtu: int = 1500) -> None:
    """(Inside a namespace.)  ``dev`` up with ``ip``/24 and ``mtu``, ``lo`` up, no IPv6 chatter."""
    with contextlib.suppress(OSError):
        Path(f"/proc/sys/net/ipv6/conf/{dev}/disable_ipv6").write_text("1")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as ctl:
        if mtu != 1500:
            netns.set_mtu(ctl, dev, mtu)
        netns.set_link_up(ctl, dev)
        netns.configure_interface(ctl, dev, ip, NETMASK)
        netns.set_link_up(ctl, "lo")


def _socket_in(ns: netns.NetNamespace) -> socket.socket:
    sock = ns.run(lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM), "bench-socket")
    sock.settimeout(TIMEOUT)
    return sock


def _close_ns(ns: netns.NetNamespace) -> None:
    with contextlib.suppress(Exception):
        ns.run(netns.destroy_sockets, "bench-teardown")
    ns.join(5.0)
    ns.close()


def _send(sock: socket.socket, total: int, deadline: float | None = None) -> int:
    """Send ``total`` bytes (or until ``deadline``), then FIN; returns bytes sent."""
    block = os.urandom(CHUNK)
    sent = 0
    while sent < total and (deadline is None or time.monotonic() < deadline):
        n = min(CHUNK, total - sent)
        sock.sendall(block[:n] if n < CHUNK else block)
        sent += n
    sock.shutdown(socket.SHUT_WR)
    return sent


def _drain(recv_into: Callable[[memoryview], int]) -> int:
    buf = memoryview(bytearray(1 << 18))
    got = 0
    while n := recv_into(buf):
        got += n
    return got


class _Thread:
    """A thread whose result or exception :meth:`join` hands back."""

    def __init__(self, fn: Callable[[], Any], name: str) -> None:
        self.result: Any = None
        self.error: BaseException | None = None

        def run() -> None:
            try:
                self.result = fn()
            except BaseException as exc:
                self.error = exc

        self.thread = threading.Thread(target=run, name=name, daemon=True)
        self.thread.start()

    def join(self) -> Any:
        self.thread.join(TIMEOUT * 2)
        if self.error is not None:
            raise self.error
        return self.result


def _rate(nbytes: int, seconds: float) -> float:
    return round(nbytes / 1e6 / seconds, 2) if seconds > 0 else 0.0


# --- the kernel's end: a child process inside the namespace -------------------------------------------
_KERNEL_PEER = r"""
import json, os, socket, sys, time
mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
if mode == "send":
    size = int(sys.argv[4])
    sys.stdin.readline()  # go
    s = socket.create_connection((host, port), timeout=120)
    block, sent = os.urandom(1 << 20), 0
    t0 = time.monotonic()
    while sent < size:
        n = min(len(block), size - sent)
        s.sendall(block[:n] if n < len(block) else block)
        sent += n
    s.shutdown(socket.SHUT_WR)
    s.recv(1)
    print(json.dumps({"bytes": sent, "seconds": time.monotonic() - t0}), flush=True)
else:
    s = socket.socket()
    s.bind((host, port))
    s.listen(1)
    print(json.dumps({"listening": True}), flush=True)
    c, _ = s.accept()
    c.settimeout(120)
    buf, got = memoryview(bytearray(1 << 20)), 0
    t0 = time.monotonic()
    while n := c.recv_into(buf):
        got += n
    print(json.dumps({"bytes": got, "seconds": time.monotonic() - t0}), flush=True)
"""


class _Child:
    """A Python child process started inside ``ns`` (it inherits the forking thread's
    namespace), killed when the thread that forked it ends (PR_SET_PDEATHSIG) or by
    :meth:`close`; lines of JSON on stdout, commands on stdin."""

    def __init__(self, ns: netns.NetNamespace, argv: list[str], env: dict[str, str] | None = None) -> None:
        box: dict[str, Any] = {}
        started = threading.Event()

        def keeper() -> None:  # lives as long as the child: PDEATHSIG follows the forking thread
            try:
                box["proc"] = subprocess.Popen(
                    argv,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    env=env,
                    preexec_fn=_die_with_parent,  # noqa: PLW1509 -- only a prctl
                )
            except OSError as exc:
                box["error"] = exc
            started.set()
            if "proc" in box:
                box["proc"].wait()

        self.thread = ns.start_thread(keeper, "bench-child")
        started.wait()
        if "error" in box:
            raise box["error"]
        self.proc: subprocess.Popen[str] = box["proc"]

    def read(self, timeout: float) -> dict[str, Any]:
        return _read_json(self.proc, timeout)

    def say(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def stderr_tail(self) -> str:
        return _stderr_tail(self.proc)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.kill()
        self.thread.join(10.0)


def _kernel_peer(ns: netns.NetNamespace, *args: str) -> _Child:
    return _Child(ns, [sys.executable, "-c", _KERNEL_PEER, *args])


# --- refstack ---------------------------------------------------------------------------------------
def refstack_bulk(
    direction: str,
    size: int,
    profiles: list[cProfile.Profile] | None,
    mtu: int = 1500,
    *,
    offload: bool = False,
) -> dict[str, Any]:
    """One transfer between the kernel (a child process in the namespace, so that it
    never competes for this process's GIL) and refstack on tap0; ``direction`` "rx" is
    kernel -> refstack, "tx" refstack -> kernel; ``offload``: the device has the
    virtio-net offloads (GSO/TSO, checksum offload)."""
    ns = netns.NetNamespace()
    link: TapLink | None = None
    driver: RealTimeDriver | None = None
    peer: _Child | None = None
    loop_prof = cProfile.Profile() if profiles is not None else None
    app_prof = cProfile.Profile() if profiles is not None else None
    try:

        def inside() -> TapLink:
            created = TapLink.create("tap0", offload=offload)
            _configure("tap0", KERNEL_IP, mtu)
            return created  # type: ignore[return-value]

        link = ns.run(inside, "bench-setup")
        stack = Stack(name="bench", seed=1)
        link.attach(stack, PEER_IP, 24, mtu=mtu)
        driver = RealTimeDriver(stack, link, profiler=loop_prof).start()
        if direction == "rx":
            srv = driver.socket()
            srv.settimeout(TIMEOUT)
            srv.bind((PEER_IP, PORT))
            srv.listen(1)
            peer = _kernel_peer(ns, "send", PEER_IP, str(PORT), str(size))
            peer.say("go")
            conn, _ = srv.accept()
            conn.settimeout(TIMEOUT)
            if app_prof is not None:
                app_prof.enable()
            start = time.monotonic()
            got = 0
            while data := conn.recv(1 << 18):
                got += len(data)
            elapsed = time.monotonic() - start
            if app_prof is not None:
                app_prof.disable()
            conn.close()
            peer.read(TIMEOUT)
        else:
            peer = _kernel_peer(ns, "recv", KERNEL_IP, str(PORT))
            if not peer.read(TIMEOUT).get("listening"):
                raise RuntimeError("the kernel peer did not listen")
            c = driver.socket()
            c.settimeout(TIMEOUT)
            c.connect((KERNEL_IP, PORT))
            block = os.urandom(CHUNK)
            if app_prof is not None:
                app_prof.enable()
            sent = 0
            while sent < size:
                n = min(CHUNK, size - sent)
                c.sendall(block[:n] if n < CHUNK else block)
                sent += n
            c.shutdown(socket.SHUT_WR)
            if app_prof is not None:
                app_prof.disable()
            done = peer.read(TIMEOUT)
            got, elapsed = int(done["bytes"]), float(done["seconds"])
            c.close()
        with driver.locked():
            counters = dict(stack.counters)
            loops, stalls = driver.loops, driver.stalls
            link_counters = link.offload_counters()
    finally:
        if peer is not None:
            peer.close()
        if driver is not None:
            driver.close()
        if link is not None:
            link.close()
        _close_ns(ns)
    if profiles is not None and loop_prof is not None and app_prof is not None:
        profiles += [loop_prof, app_prof]
    if got != size:
        raise RuntimeError(f"refstack {direction}: {got} bytes arrived of {size}")
    row: dict[str, Any] = {
        "bytes": got,
        "seconds": round(elapsed, 3),
        "MBps": _rate(got, elapsed),
        "loop_iterations": loops,
        "frames_per_iteration": round((counters["rx_frames"] + counters["tx_frames"]) / max(loops, 1), 1),
        "stalls": stalls,
        "retransmits": {k: v for k, v in counters.items() if "retransmit" in k},
    }
    if offload:
        row["link"] = {k: v for k, v in link_counters.items() if k != "tx_dropped" or v}
    return row


def _refstack_rows(
    size: int, profiles: list[cProfile.Profile] | None, mtu: int, *, offload: bool
) -> dict[str, Any]:
    """Both directions on a plain or an offloaded device.  A failed offloaded transfer
    is reported as such ("failed": why) rather than ending the run: the plain rows and
    the others still stand."""
    rows: dict[str, Any] = {}
    for key, direction in (("kernel_to_stack", "rx"), ("stack_to_kernel", "tx")):
        if not offload:
            rows[key] = refstack_bulk(direction, size, profiles, mtu)
            continue
        try:
            rows[key] = refstack_bulk(direction, size, profiles, mtu, offload=True)
        except (RuntimeError, OSError, TimeoutError) as exc:
            rows[key] = {"failed": f"{type(exc).__name__}: {exc}"}
    return rows


# --- veth: the kernel's own ceiling -------------------------------------------------------------------
def veth_bulk(size: int) -> dict[str, Any]:
    """kernel -> kernel over a veth pair between two fresh namespaces (two child processes)."""
    ip = shutil.which("ip")
    if ip is None:
        return {"skipped": "iproute2's `ip` is not installed (needed to create the veth pair)"}
    a, b = netns.NetNamespace(), netns.NetNamespace()
    children: list[_Child] = []
    try:
        b_path = f"/proc/{os.getpid()}/fd/{b.fd}"

        def make_pair() -> None:
            for argv in (
                [ip, "link", "add", "vth0", "type", "veth", "peer", "name", "vth1"],
                [ip, "link", "set", "vth1", "netns", b_path],
            ):
                done = subprocess.run(argv, capture_output=True, text=True, check=False)
                if done.returncode:
                    raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")
            _configure("vth0", KERNEL_IP)

        a.run(make_pair, "bench-veth")
        b.run(lambda: _configure("vth1", PEER_IP), "bench-veth")
        receiver = _kernel_peer(b, "recv", PEER_IP, str(PORT))
        children.append(receiver)
        if not receiver.read(TIMEOUT).get("listening"):
            raise RuntimeError("the veth receiver did not listen")
        sender = _kernel_peer(a, "send", PEER_IP, str(PORT), str(size))
        children.append(sender)
        sender.say("go")
        done = receiver.read(TIMEOUT)
        got, elapsed = int(done["bytes"]), float(done["seconds"])
    finally:
        for child in children:
            child.close()
        _close_ns(a)
        _close_ns(b)
    return {"bytes": got, "seconds": round(elapsed, 3), "MBps": _rate(got, elapsed)}


# --- PyTCP ----------------------------------------------------------------------------------------
_PYTCP_PEER = r"""
import json, sys, time
from pytcp import config
config.LOG_CHANEL = set()
from pytcp import TcpIpStack
from pytcp.lib import socket as psocket
mode, size, kernel_ip, my_ip, port = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
stack = TcpIpStack(interface="tap1", mac_address="02:00:5e:10:00:03", ip4_address=my_ip + "/24",
                   ip6_address="fd00::2/64")
config.IP6_SUPPORT = False
stack.start()
print(json.dumps({"ready": True}), flush=True)
sys.stdin.readline()  # the kernel's side is configured
if mode == "rx":
    s = psocket.socket(psocket.AF_INET4, psocket.SOCK_STREAM)
    s.bind((my_ip, port))
    s.listen()
    print(json.dumps({"listening": True}), flush=True)
    conn, _ = s.accept()
    got, start = 0, None
    while data := conn.recv():
        if start is None:
            start = time.monotonic()
        got += len(data)
    elapsed = time.monotonic() - (start or time.monotonic())
    print(json.dumps({"bytes": got, "seconds": elapsed}), flush=True)
else:
    s = psocket.socket(psocket.AF_INET4, psocket.SOCK_STREAM)
    s.connect((kernel_ip, port))
    s.send(bytes(size))
    s.close()
    print(json.dumps({"sent": size}), flush=True)
    sys.stdin.readline()
stack.stop()
"""


def _pytcp_location(explicit: str | None) -> tuple[str | None, str]:
    """Where pytcp 2.7.6 is importable from: (PYTHONPATH entry or "" for installed, reason)."""
    if explicit:
        init = Path(explicit) / "pytcp" / "__init__.py"
        if not init.exists():
            return None, f"--pytcp-path {explicit} holds no pytcp package"
        return explicit, ""
    spec = importlib.util.find_spec("pytcp")
    if spec is None:
        return None, (
            f"pytcp=={PYTCP_VERSION} is not installed (pip install pytcp=={PYTCP_VERSION}, or pass"
            " --pytcp-path DIR of `pip install --target DIR`)"
        )
    from importlib import metadata

    version = metadata.version("pytcp")
    if version != PYTCP_VERSION:
        return None, f"pytcp {version} is installed, the comparison is defined for {PYTCP_VERSION}"
    return "", ""


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def pytcp_bulk(direction: str, size: int, path: str, time_cap: float) -> dict[str, Any]:
    """PyTCP in a child process inside a fresh namespace, on its own TAP device (tap1),
    against a kernel peer in another child process."""
    ns = netns.NetNamespace()
    env = dict(os.environ)
    if path:
        env["PYTHONPATH"] = path + os.pathsep + env.get("PYTHONPATH", "")
    children: list[_Child] = []
    argv = [sys.executable, "-O", "-c", _PYTCP_PEER, direction, str(size), KERNEL_IP, PEER_IP, str(PORT)]
    try:
        pytcp = _Child(ns, argv, env)
        children.append(pytcp)
        try:
            if not pytcp.read(30.0).get("ready"):
                return {"skipped": "PyTCP did not start"}
            ns.run(lambda: _configure("tap1", KERNEL_IP), "bench-pytcp-setup")
            if direction == "rx":
                pytcp.say("go")
                if not pytcp.read(30.0).get("listening"):
                    return {"skipped": "PyTCP did not listen"}
                kernel = _kernel_peer(ns, "send", PEER_IP, str(PORT), str(size))
                children.append(kernel)
                kernel.say("go")
                done = pytcp.read(time_cap)
            else:
                kernel = _kernel_peer(ns, "recv", KERNEL_IP, str(PORT))
                children.append(kernel)
                if not kernel.read(30.0).get("listening"):
                    return {"skipped": "the kernel peer did not listen"}
                pytcp.say("go")
                done = kernel.read(time_cap)
            got, elapsed = int(done["bytes"]), float(done["seconds"])
        except (TimeoutError, OSError, ValueError, KeyError) as exc:
            return {
                "skipped": f"PyTCP run failed: {type(exc).__name__}: {exc}; stderr: {pytcp.stderr_tail()}"
            }
        if got != size:
            return {"skipped": f"PyTCP moved {got} bytes of {size}"}
        return {"bytes": got, "seconds": round(elapsed, 3), "MBps": _rate(got, elapsed)}
    finally:
        for child in children:
            child.close()
        _close_ns(ns)


def _pytcp_attempts(direction: str, size: int, path: str, time_cap: float, tries: int = 2) -> dict[str, Any]:
    """PyTCP's transfer, tried again once if it stalls (PyTCP 2.7.6 now and then stops
    sending mid-transfer); the failed attempts are listed with the result."""
    failed: list[str] = []
    for _ in range(tries):
        result = pytcp_bulk(direction, size, path, time_cap)
        if "skipped" not in result:
            if failed:
                result["failed_attempts"] = failed
            return result
        failed.append(str(result["skipped"]))
    return {"skipped": " / ".join(failed)}


def _read_json(proc: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    assert proc.stdout is not None
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    if not box or not box[0]:
        raise TimeoutError(f"no answer from the PyTCP process within {timeout} s")
    value = json.loads(box[0])
    if not isinstance(value, dict):
        raise ValueError(f"PyTCP process printed {box[0]!r}")
    return value


def _stderr_tail(proc: subprocess.Popen[str]) -> str:
    with contextlib.suppress(Exception):
        proc.kill()
        _, err = proc.communicate(timeout=5)
        return " | ".join(err.strip().splitlines()[-3:])
    return "(none)"


# --- profile ----------------------------------------------------------------------------------------
def _short(filename: str) -> str:
    for marker in ("/refstack/", "/conformance/", "/lib/python"):
        if marker in filename:
            return filename[filename.index(marker) + 1 :]
    return filename


_WAITS = ("acquire' of '_thread", "'poll' of 'select.epoll'", "'select' of 'select", "'wait' of")


def profile_summary(profiles: list[cProfile.Profile], top: int) -> dict[str, Any]:
    """The functions refstack spent its own CPU time in (both threads merged), by own
    time, with the time spent blocked (lock and condition waits, the loop's epoll sleep)
    set apart: those are idle, not work.  A syscall's own time includes waiting to get the
    GIL back (``posix.write`` hands it to the application thread while the frame goes out)."""
    stats = pstats.Stats(profiles[0], stream=io.StringIO())
    for p in profiles[1:]:
        stats.add(p)
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = stats.stats  # type: ignore[attr-defined]
    waiting = {k: v for k, v in raw.items() if any(w in k[2] for w in _WAITS)}
    busy = {k: v for k, v in raw.items() if k not in waiting}
    total = sum(tt for _, _, tt, _, _ in busy.values()) or 1.0
    rows = sorted(busy.items(), key=lambda item: item[1][2], reverse=True)[:top]
    out = []
    for (filename, line, func), (_cc, nc, tt, ct, _) in rows:
        where = _short(filename)
        out.append(
            {
                "function": f"{where}:{line}({func})",
                "calls": nc,
                "tottime_s": round(tt, 3),
                "share": round(tt / total, 3),
                "cumtime_s": round(ct, 3),
            }
        )
    modules: dict[str, float] = {}
    for (filename, _line, func), (_cc, _nc, tt, _ct, _) in busy.items():
        key = _short(filename) if filename != "~" else f"builtin {func.split(' of ')[0].strip('<>')}"
        modules[key] = modules.get(key, 0.0) + tt
    by_module = sorted(modules.items(), key=lambda item: item[1], reverse=True)[:top]
    return {
        "by_module": [
            {"module": m, "tottime_s": round(t, 3), "share": round(t / total, 3)} for m, t in by_module
        ],
        "busy_s": round(total, 3),
        "waiting_s": round(sum(tt for _, _, tt, _, _ in waiting.values()), 3),
        "top": out,
    }


def _unavailable() -> str:
    """Why this machine cannot run the bench ("" when it can): a namespace and a TAP device."""
    return netns.device_unavailable(lambda: TapLink.create("tap0").close(), "a TAP device")


# --- main ---------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--mb", type=float, default=50.0, help="MB per refstack transfer (default 50)")
    parser.add_argument("--veth-mb", type=float, default=1000.0, help="MB over veth (default 1000)")
    parser.add_argument("--pytcp-mb", type=float, default=5.0, help="MB per PyTCP transfer (default 5)")
    parser.add_argument("--pytcp-seconds", type=float, default=60.0, help="cap on a PyTCP transfer")
    parser.add_argument("--pytcp-path", help="a directory holding pytcp 2.7.6 (pip install --target)")
    parser.add_argument("--no-pytcp", action="store_true", help="skip PyTCP")
    parser.add_argument(
        "--mtu",
        type=int,
        default=1500,
        help="refstack's TAP MTU, both ends (default 1500; PyTCP and veth keep 1500)",
    )
    parser.add_argument(
        "--offload",
        choices=("both", "off", "only"),
        default="both",
        help="refstack on a plain device, on an offloaded one (virtio-net GSO/TSO), or both (default)",
    )
    parser.add_argument("--profile", action="store_true", help="cProfile refstack (loop + app threads)")
    parser.add_argument("--top", type=int, default=20, help="functions in the profile summary")
    args = parser.parse_args(argv)
    why = _unavailable()
    if why:
        print(json.dumps({"bench": "tap_bulk", "skipped": why}))
        return 0
    size = int(args.mb * 1e6)
    profiles: list[cProfile.Profile] | None = [] if args.profile else None
    offload_profiles: list[cProfile.Profile] | None = [] if args.profile else None
    result: dict[str, Any] = {"bench": "tap_bulk", "mtu": args.mtu, "unit": "MB/s (1e6 bytes/s)"}
    if args.offload == "only":
        result["refstack"] = {"skipped": "--offload only"}
    else:
        result["refstack"] = _refstack_rows(size, profiles, args.mtu, offload=False)
    if args.offload == "off":
        result["refstack_offload"] = {"skipped": "--offload off"}
    else:
        result["refstack_offload"] = _refstack_rows(size, offload_profiles, args.mtu, offload=True)
    result["veth"] = {"kernel_to_kernel": veth_bulk(int(args.veth_mb * 1e6))}
    if args.no_pytcp:
        result["pytcp"] = {"skipped": "--no-pytcp"}
    else:
        path, why = _pytcp_location(args.pytcp_path)
        if path is None:
            result["pytcp"] = {"skipped": why}
        else:
            psize = int(args.pytcp_mb * 1e6)
            result["pytcp"] = {
                "version": PYTCP_VERSION,
                "kernel_to_stack": _pytcp_attempts("rx", psize, path, args.pytcp_seconds),
                "stack_to_kernel": _pytcp_attempts("tx", psize, path, args.pytcp_seconds),
            }
    result["ratios"] = _ratios(result)
    for key, collected, what in (
        ("profile", profiles, "plain device"),
        ("profile_offload", offload_profiles, "offloaded device"),
    ):
        if not collected:
            continue
        result[key] = summary = profile_summary(collected, args.top)
        print(
            f"refstack profile, {what} (loop + application threads, by own time):"
            f" busy {summary['busy_s']} s, blocked {summary['waiting_s']} s"
            " (cProfile slows refstack about 2-3x)",
            file=sys.stderr,
        )
        for row in summary["by_module"]:
            print(f"  {row['share']:6.1%} {row['tottime_s']:8.3f}s  {row['module']}", file=sys.stderr)
        print("top functions:", file=sys.stderr)
        for row in summary["top"]:
            print(
                f"  {row['share']:6.1%} {row['tottime_s']:8.3f}s {row['calls']:>9} {row['function']}",
                file=sys.stderr,
            )
    if args.json:
        print(json.dumps(result, indent=None))
    else:
        _print_human(result)
    return 0


def _mbps(section: Any, key: str) -> float | None:
    if isinstance(section, dict) and isinstance(section.get(key), dict):
        value = section[key].get("MBps")
        return float(value) if value else None
    return None


def _ratios(result: dict[str, Any]) -> dict[str, Any]:
    """``<row>_vs_veth_<direction>`` and ``<row>_vs_pytcp_<direction>`` for each refstack
    row measured (``refstack``, ``refstack_offload``; None when PyTCP has no figure), and
    ``refstack_offload_vs_refstack_<direction>`` when both were measured."""
    ratios: dict[str, Any] = {}
    veth = _mbps(result["veth"], "kernel_to_kernel")
    for row in ("refstack", "refstack_offload"):
        for key in ("kernel_to_stack", "stack_to_kernel"):
            ours = _mbps(result.get(row), key)
            pytcp = _mbps(result.get("pytcp"), key)
            if ours is not None and veth:
                ratios[f"{row}_vs_veth_{key}"] = round(ours / veth, 4)
            if ours is not None and pytcp:
                ratios[f"{row}_vs_pytcp_{key}"] = round(ours / pytcp, 1)
            elif ours is not None:
                ratios[f"{row}_vs_pytcp_{key}"] = None
    for key in ("kernel_to_stack", "stack_to_kernel"):
        plain, offloaded = _mbps(result.get("refstack"), key), _mbps(result.get("refstack_offload"), key)
        if plain and offloaded is not None:
            ratios[f"refstack_offload_vs_refstack_{key}"] = round(offloaded / plain, 2)
    return ratios


def _print_human(result: dict[str, Any]) -> None:
    for stack in ("refstack", "refstack_offload", "pytcp", "veth"):
        section = result.get(stack, {})
        if "skipped" in section:
            print(f"{stack:16} skipped: {section['skipped']}")
            continue
        for key, value in section.items():
            if isinstance(value, dict):
                shown = value.get("MBps", value.get("skipped", value.get("failed")))
                print(f"{stack:16} {key:16} {shown}")
    for key, value in result["ratios"].items():
        print(f"{key:48} {value}")


if __name__ == "__main__":
    sys.exit(main())
