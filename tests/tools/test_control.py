"""The control endpoint in one process: discovery, requests, the stack lock, tcpdump's
stream, clean-up of its socket file and of stale ones."""

from __future__ import annotations

import io
import json
import os
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dpkt
import pytest

from refstack import control
from refstack.control import ControlEndpoint, ControlError, StackRef
from refstack.stack import Stack
from refstack.tools import tcpdump
from refstack.wire.addresses import ipv4_addr
from refstack.wire.ethernet import ETHERTYPE_IPV4, build_ethernet
from refstack.wire.ipv4 import PROTO_UDP, build_ipv4
from refstack.wire.udp import build_udp

PEER, ME = ipv4_addr("10.0.0.1"), ipv4_addr("10.0.0.2")
MAC_PEER, MAC_ME = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")


@pytest.fixture
def rundir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "rt"
    monkeypatch.setenv(control.RUNTIME_DIR_ENV, str(d))
    return d


def make_stack(name: str = "b", *, ethernet: bool = False) -> Stack:
    stack = Stack(name=name, seed=1)
    stack.add_interface("eth0", ME, 24, mac=MAC_ME if ethernet else None)
    return stack


@pytest.fixture
def served(rundir: Path) -> Iterator[ControlEndpoint]:
    with ControlEndpoint(make_stack()) as endpoint:
        yield endpoint


def ref(endpoint: ControlEndpoint) -> StackRef:
    return StackRef(os.getpid(), endpoint.stack.name, endpoint.path)


def datagram(n: int) -> bytes:
    return build_ipv4(PEER, ME, PROTO_UDP, build_udp(PEER, ME, 4000, 5000, f"datagram {n}".encode()))


# --- where sockets live -----------------------------------------------------------------------------
def test_runtime_dir_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REFSTACK_RUNTIME_DIR", "/x/rt")
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/7")
    assert control.runtime_dir() == Path("/x/rt")
    monkeypatch.delenv("REFSTACK_RUNTIME_DIR")
    assert control.runtime_dir() == Path("/run/user/7/refstack")
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert control.runtime_dir() == Path(f"/tmp/refstack-{os.getuid()}")


def test_socket_names() -> None:
    assert control.parse_socket_name("42-b.sock") == (42, "b")
    assert control.parse_socket_name("42-my-stack.sock") == (42, "my-stack")
    for other in ("42-b.txt", "b.sock", "x-b.sock", "42-.sock", "42.sock"):
        assert control.parse_socket_name(other) is None


def test_start_creates_a_private_socket_and_close_removes_it(rundir: Path) -> None:
    endpoint = ControlEndpoint(make_stack("s1")).start()
    try:
        assert endpoint.path == rundir / f"{os.getpid()}-s1.sock"
        assert stat.S_ISSOCK(endpoint.path.stat().st_mode)
        assert stat.S_IMODE(rundir.stat().st_mode) == 0o700
        assert stat.S_IMODE(endpoint.path.stat().st_mode) == 0o600
        assert control.discover() == [ref(endpoint)]
    finally:
        endpoint.close()
    assert not endpoint.path.exists()
    endpoint.close()  # idempotent
    assert control.discover() == []


def test_the_atexit_hook_closes_every_live_endpoint(rundir: Path) -> None:
    endpoints = [ControlEndpoint(make_stack(name)).start() for name in ("x", "y")]
    control._close_all()
    assert [e.path.exists() for e in endpoints] == [False, False]


def test_one_endpoint_per_stack_name_and_a_usable_name(served: ControlEndpoint) -> None:
    with pytest.raises(ValueError, match="already served"):
        ControlEndpoint(make_stack("b")).start()
    with pytest.raises(ValueError, match="cannot name a control socket"):
        ControlEndpoint(make_stack("a/b"))


def test_stale_sockets_are_removed(rundir: Path) -> None:
    rundir.mkdir(mode=0o700)
    child = subprocess.Popen(["true"])
    child.wait()
    (rundir / f"{child.pid}-gone.sock").touch()  # its process is dead
    ghost = rundir / f"{os.getpid()}-ghost.sock"  # our pid, but nobody listens
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(ghost))
    s.close()
    (rundir / "notes.txt").touch()
    assert control.discover() == [StackRef(os.getpid(), "ghost", ghost)]
    assert not (rundir / f"{child.pid}-gone.sock").exists()
    assert control.live_stacks() == []
    assert not ghost.exists() and (rundir / "notes.txt").exists()


# --- requests ----------------------------------------------------------------------------------------
def test_hello(served: ControlEndpoint) -> None:
    [live] = control.live_stacks()
    assert live.stack_id == 0 and live.ref == ref(served)
    assert live.hello["stack"] == "b" and live.hello["pid"] == os.getpid()
    assert live.hello["interfaces"] == {"lo": "raw", "eth0": "raw"}
    assert live.cmdline == control.process_cmdline()


def test_stackdump_request(served: ControlEndpoint) -> None:
    reply = control.request(ref(served), {"op": "stackdump", "what": "netif", "stack_id": 4})
    assert reply["text"].startswith("ci_netif_dump_to_logger: stack=4 name=b\n")


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ({"op": "dance"}, "unknown op 'dance'"),
        ({"op": "stackdump", "what": "lotz"}, "unknown stackdump command 'lotz'"),
        ({"op": "stackdump", "stack_id": "x"}, "stack_id must be an integer"),
        ({"op": "tcpdump", "count": -1}, "count must be a whole number"),
        ({"op": "tcpdump", "interface": "eth9"}, "stack b has no interface 'eth9' (it has lo, eth0)"),
    ],
)
def test_bad_requests_get_one_line_errors(
    served: ControlEndpoint, message: dict[str, object], error: str
) -> None:
    with pytest.raises(ControlError) as info:
        control.request(ref(served), message)
    assert str(info.value).startswith(error) and "\n" not in str(info.value)


def test_malformed_request(served: ControlEndpoint) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(served.path))
        s.sendall(b"{not json\n")
        reply = json.loads(s.makefile("rb").readline())
    assert reply["ok"] is False and reply["error"].startswith("request is not JSON")


def test_a_request_waits_for_the_stack_lock(served: ControlEndpoint) -> None:
    """The driver holds the lock while it calls into the stack: a dump never sees a
    half-done call."""
    done = threading.Event()

    def dump() -> None:
        control.request(ref(served), {"op": "stackdump", "what": "stats"})
        done.set()

    with served.lock:
        worker = threading.Thread(target=dump)
        worker.start()
        assert not done.wait(0.3)  # blocked behind the driver
        served.stack.counters["held"] += 1
    assert done.wait(5)
    worker.join()


def test_locked_endpoint_holds_the_lock_for_every_call() -> None:
    lock = threading.RLock()
    stack = make_stack()
    seen: list[bool] = []
    stack.taps.append(lambda *_: seen.append(lock._is_owned()))  # type: ignore[attr-defined]
    locked = control.LockedEndpoint(stack, lock)
    locked.receive(datagram(0), 0.0)
    locked.poll(0.0)  # the ICMP port unreachable goes out
    assert seen == [True, True]
    assert locked.next_deadline() == stack.next_deadline()


# --- tcpdump ------------------------------------------------------------------------------------------
def feed(endpoint: ControlEndpoint, frames: list[bytes], stop: threading.Event) -> threading.Thread:
    """A driver thread: frames arrive every 5 ms, each receive under the stack lock."""

    def run() -> None:
        t = 0.0
        for frame in frames:
            if stop.is_set():
                return
            while not endpoint.stack.taps and not stop.is_set():
                time.sleep(0.005)  # wait for the capture to attach
            with endpoint.lock:
                endpoint.stack.receive(frame, t)
                endpoint.stack.poll(t)
            t += 0.005
            time.sleep(0.005)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_tcpdump_streams_raw_ip_frames_into_a_pcap(served: ControlEndpoint) -> None:
    frames = [datagram(n) for n in range(8)]  # port 5000 is closed: each draws an ICMP error
    stop = threading.Event()
    thread = feed(served, frames, stop)
    out = io.BytesIO()
    try:
        result = tcpdump.capture(ref(served), count=6, pcap=out)
    finally:
        stop.set()
        thread.join()
    assert (result.frames, result.linktype, result.interface) == (6, control.LINKTYPE_RAW, "eth0")
    records = list(dpkt.pcap.Reader(io.BytesIO(out.getvalue())))
    assert dpkt.pcap.Reader(io.BytesIO(out.getvalue())).datalink() == 101
    assert [bytes(buf) for _, buf in records][0::2] == frames[:3]  # rx, then the ICMP reply
    assert served.stack.taps == []  # the tap goes with the capture


def test_tcpdump_on_ethernet_and_as_text(rundir: Path) -> None:
    stack = make_stack("e", ethernet=True)
    frames = [build_ethernet(MAC_ME, MAC_PEER, ETHERTYPE_IPV4, datagram(n)) for n in range(3)]
    with ControlEndpoint(stack) as endpoint:
        stop = threading.Event()
        thread = feed(endpoint, frames, stop)
        text = io.StringIO()
        try:
            result = tcpdump.capture(ref(endpoint), count=1, text=text)
        finally:
            stop.set()
            thread.join()
    assert result.linktype == control.LINKTYPE_ETHERNET
    assert text.getvalue().endswith(" eth0 In  IP 10.0.0.1.4000 > 10.0.0.2.5000: UDP, length 10\n")


def test_a_capture_stops_when_the_client_hangs_up(served: ControlEndpoint) -> None:
    header, lines = tcpdump.frames(ref(served), count=None, interface=None)
    assert header["linktype"] == control.LINKTYPE_RAW and len(served.stack.taps) == 1
    lines.close()  # type: ignore[attr-defined]
    deadline = time.monotonic() + 5
    while served.stack.taps and time.monotonic() < deadline:
        time.sleep(0.05)
    assert served.stack.taps == []
