"""A live refstack process for the cross-process tool tests.

Two stacks, ``<prefix>-client`` (10.0.0.1) and ``<prefix>-server`` (10.0.0.2), joined by
a 1 ms MemoryLink and driven in real time: the loop below runs the simulation up to
the wall clock every 10 ms, holding the stack lock (:mod:`refstack.control`) for each
step.  The client sends 100 bytes every 50 ms over an established TCP connection and
the server reads them; the server also has a UDP socket joined to 239.1.2.3.  Both
stacks serve control endpoints; the script prints ``ready`` once they are up and runs
until it is killed (SIGTERM and SIGINT exit cleanly, removing the sockets).

    python tests/tools/live_stack.py [--prefix NAME] [--ip-only]
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
import time
from types import FrameType

from refstack import socket as rs
from refstack.clock import VirtualClock
from refstack.control import ControlEndpoint, LockedEndpoint
from refstack.link import MemoryLink
from refstack.runtime import Runtime, VirtualDriver
from refstack.simulation import Simulation
from refstack.stack import Stack

CLIENT_IP, SERVER_IP, PORT, GROUP = "10.0.0.1", "10.0.0.2", 8080, "239.1.2.3"


def _exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", default="live")
    parser.add_argument("--ip-only", action="store_true", help="IP-only interfaces (LINKTYPE_RAW)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _exit)
    signal.signal(signal.SIGINT, _exit)

    lock = threading.RLock()
    client_stack = Stack(name=f"{args.prefix}-client", seed=1)
    server_stack = Stack(name=f"{args.prefix}-server", seed=2)
    client_stack.add_interface("eth0", CLIENT_IP, 24, mac=None if args.ip_only else "02:00:00:00:00:01")
    server_stack.add_interface("eth0", SERVER_IP, 24, mac=None if args.ip_only else "02:00:00:00:00:02")
    sim = Simulation(VirtualClock())
    sim.add(LockedEndpoint(client_stack, lock), "client")
    sim.add(LockedEndpoint(server_stack, lock), "server")
    sim.connect("client", "server", MemoryLink(delay=0.001))
    driver = VirtualDriver(sim)
    client_rt, server_rt = Runtime(client_stack, driver), Runtime(server_stack, driver)

    # set-up in virtual time (the blocking calls step the simulation), before serving
    listener = rs.socket(rs.AF_INET, rs.SOCK_STREAM, runtime=server_rt)
    listener.bind(("", PORT))
    listener.listen(8)
    client = rs.socket(rs.AF_INET, rs.SOCK_STREAM, runtime=client_rt)
    client.connect((SERVER_IP, PORT))
    conn, _ = listener.accept()
    client.setblocking(False)
    conn.setblocking(False)
    udp = rs.socket(rs.AF_INET, rs.SOCK_DGRAM, runtime=server_rt)
    udp.bind(("", 5000))
    udp.setsockopt(rs.IPPROTO_IP, rs.IP_ADD_MEMBERSHIP, rs.inet_aton(GROUP) + rs.inet_aton(SERVER_IP))

    with contextlib.ExitStack() as served:
        served.enter_context(ControlEndpoint(client_stack, lock=lock))
        served.enter_context(ControlEndpoint(server_stack, lock=lock))
        print("ready", flush=True)
        origin = time.monotonic() - sim.now()
        next_send = 0.0
        while True:
            with lock:
                now = time.monotonic() - origin
                if now >= next_send:
                    with contextlib.suppress(BlockingIOError):
                        client.send(b"x" * 100)
                    next_send = now + 0.05
                sim.run_for(max(0.0, now - sim.now()))
                with contextlib.suppress(BlockingIOError):
                    while conn.recv(65536):
                        pass
            time.sleep(0.01)


if __name__ == "__main__":
    sys.exit(main())
