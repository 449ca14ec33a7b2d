"""``refstack run``'s command line: set up device, stack and driver, install the shims, run.

::

    refstack run [--tap DEV | --tun DEV] [--netns NAME|PATH] [--address A/N] [--gateway G]
                 [--name STACK] [--ef EF_NAME=VALUE ...] [--pcap FILE] -- program.py args...
    refstack run ... -- -m module args...

``--netns`` enters a namespace first (a name from ``ip netns``, i.e. ``/run/netns/NAME``, or
any nsfs path such as ``/proc/self/fd/N``), before any thread starts, so the device, the
loop thread and every kernel socket the program falls back to live there.  The device is
created, or attached to when it exists and is persistent and free.  EF_* options come from
the environment and ``--ef`` (which wins).  The stack serves ``refstack stackdump``.
Exit status: the program's (``sys.exit``), 1 on an uncaught exception, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import os
import runpy
import sys
import threading
import time
from pathlib import Path
from typing import Any, BinaryIO

from ..config import Config, ConfigError
from ..stack import Stack
from ..tuntap import DeviceLink, TapLink, TunLink
from .readiness import ShimDriver
from .shim import install, uninstall

CLONE_NEWNET = 0x40000000
SNAPLEN = 256
"""Octets kept of each frame with --pcap (headers, as interop/conftest.py keeps)."""


class RunError(Exception):
    """Bad usage or set-up: one line on stderr, exit status 2."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    dev = parser.add_mutually_exclusive_group()
    dev.add_argument("--tap", metavar="DEV", help="run on TAP device DEV (Ethernet; refstack does ARP)")
    dev.add_argument("--tun", metavar="DEV", help="run on TUN device DEV (bare IPv4)")
    parser.add_argument(
        "--netns", metavar="NAME", help="enter this network namespace first (name or nsfs path)"
    )
    parser.add_argument("--address", metavar="A/N", default="198.51.100.2/24", help="refstack's address")
    parser.add_argument("--gateway", metavar="G", help="default route via G")
    parser.add_argument("--name", metavar="STACK", help="stack name (default: EF_NAME, else run-<program>)")
    parser.add_argument(
        "--ef", metavar="EF_NAME=VALUE", action="append", default=[], help="an EF_* option (repeatable)"
    )
    parser.add_argument("--pcap", metavar="FILE", type=Path, help="write the device's traffic to FILE (pcap)")
    parser.add_argument(
        "--offload",
        action="store_true",
        help="open the device with virtio-net offloads (TSO/GSO, checksum offload; refstack.nic.offload)",
    )


def enter_netns(where: str) -> None:
    """setns(2) the calling thread (the main thread, before any other starts) into ``where``."""
    path = where if "/" in where else f"/run/netns/{where}"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise RunError(f"cannot open network namespace {path}: {e.strerror}") from None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        if libc.setns(fd, CLONE_NEWNET) != 0:
            code = ctypes.get_errno()
            raise RunError(f"cannot enter network namespace {path}: {os.strerror(code)}")
    finally:
        os.close(fd)


def _config(pairs: list[str]) -> Config:
    env = {k: v for k, v in os.environ.items() if k.startswith("EF_")}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.startswith("EF_"):
            raise RunError(f"--ef takes EF_NAME=VALUE, not {pair!r}")
        env[name] = value
    try:
        return Config.from_env(env)
    except ConfigError as e:
        raise RunError(str(e)) from None


class _PcapTap:
    """A stack tap writing every frame of one interface to a pcap file (dpkt)."""

    def __init__(self, path: Path, interface: str, ethernet: bool) -> None:
        import dpkt  # noqa: PLC0415 - only with --pcap

        self.file: BinaryIO = path.open("wb")
        self.writer: Any = dpkt.pcap.Writer(
            self.file, snaplen=SNAPLEN, linktype=dpkt.pcap.DLT_EN10MB if ethernet else 101
        )
        self.interface = interface
        self.lock = threading.Lock()

    def __call__(self, direction: str, interface: str, now: float, frame: bytes) -> None:
        if interface == self.interface:
            with self.lock:
                self.writer.writepkt(bytes(frame), time.time())

    def close(self) -> None:
        with self.lock:
            self.file.close()


def run(args: argparse.Namespace, program: list[str]) -> int:
    """Run ``program`` (``script args`` or ``-m module args``) on refstack; its exit status."""
    if not program:
        raise RunError("nothing to run: give `-- program.py args` or `-- -m module args`")
    if args.tap is None and args.tun is None:
        raise RunError("give a device: --tap DEV or --tun DEV")
    module = None
    if program[0] == "-m":
        if len(program) < 2:
            raise RunError("-m needs a module name")
        module, argv = program[1], program[1:]
    else:
        argv = program
        if not Path(argv[0]).exists():
            raise RunError(f"no such program: {argv[0]}")
    address, _, prefix = args.address.partition("/")
    config = _config(args.ef)
    if args.netns is not None:
        enter_netns(args.netns)
    link_cls: type[DeviceLink] = TapLink if args.tap is not None else TunLink
    dev: str = args.tap if args.tap is not None else args.tun
    try:
        link = link_cls.create(dev, offload=args.offload)
    except OSError as e:
        raise RunError(f"cannot open {dev}: {e.strerror or e}") from None
    pcap: _PcapTap | None = None
    driver: ShimDriver | None = None
    previous: dict[str, Any] | None = None
    saved_argv, saved_path = sys.argv[:], sys.path[:]
    try:
        default_name = f"run-{Path(module or argv[0]).stem}"[:16]
        stack = Stack(config=config, name=args.name or config.name or default_name)
        link.attach(stack, address, int(prefix or 24))
        if args.gateway:
            stack.add_route("0.0.0.0", 0, dev, args.gateway)
        if args.pcap is not None:
            pcap = _PcapTap(args.pcap, dev, link.ethernet)
            stack.taps.append(pcap)
        driver = ShimDriver(stack, link, serve_control=True)
        driver.start()
        previous = install(driver)
        try:
            if module is not None:
                sys.argv = ["-m", *argv[1:]]
                sys.path.insert(0, os.getcwd())
                runpy.run_module(module, run_name="__main__", alter_sys=True)
            else:
                sys.argv = list(argv)
                sys.path.insert(0, str(Path(argv[0]).resolve().parent))
                runpy.run_path(argv[0], run_name="__main__")
        except SystemExit as e:
            code = e.code
            if code is None:
                return 0
            if isinstance(code, int):
                return code
            print(code, file=sys.stderr)
            return 1
        return 0
    finally:
        sys.argv, sys.path[:] = saved_argv, saved_path
        if previous is not None:
            uninstall(previous)
        if driver is not None:
            driver.close()
        link.close()
        if pcap is not None:
            pcap.close()
