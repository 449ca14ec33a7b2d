"""UDP between refstack and the kernel: fragmented datagrams (RFC 791 §3.2) and
multicast with IGMP (RFC 1112, RFC 3376), both directions."""

from __future__ import annotations

import itertools
import socket
import struct
import threading
import time
from pathlib import Path

from refstack.counters import KERNEL_PATH_RX_FRAGMENTS

from . import traffic
from .conftest import KERNEL_IP, REFSTACK_IP, Interop

TIMEOUT = 10.0
DATAGRAM = 8192
COUNT = 20
FRAGMENTS_PER_DATAGRAM = 6  # 8 (UDP) + 8192 bytes in 1480-byte pieces at MTU 1500


def _payload(i: int) -> bytes:
    return bytes((i + j) & 0xFF for j in range(DATAGRAM))


def _kernel_snmp(interop: Interop) -> dict[str, int]:
    """The namespace's ``Ip:`` SNMP counters (/proc/thread-self/net/snmp, read inside)."""

    def read() -> dict[str, int]:
        lines = [line.split() for line in Path("/proc/thread-self/net/snmp").read_text().splitlines()]
        names, values = next((a, b) for a, b in itertools.pairwise(lines) if a[0] == "Ip:")
        return {n: int(v) for n, v in zip(names[1:], values[1:], strict=True)}

    return interop.ns.run(read, "interop-snmp")


# --- fragments -------------------------------------------------------------------------------------
def test_fragmented_udp_kernel_to_refstack(interop: Interop) -> None:
    """The kernel fragments 8 KB datagrams; refstack's kernel path reassembles them
    (Onload hands every fragment to the kernel), counted in ReasmOKs and
    kernel_path_rx_fragments."""
    r, k = traffic.udp_pair(interop)
    k.sendto(b"warm-up", (REFSTACK_IP, 5000))  # ARP both ways first
    assert r.recvfrom(100) == (b"warm-up", (KERNEL_IP, 5001))
    mark = interop.counters()
    for i in range(COUNT):
        k.sendto(_payload(i), (REFSTACK_IP, 5000))
        data, peer = r.recvfrom(65536)
        assert peer == (KERNEL_IP, 5001)
        assert data == _payload(i)
    moved = {k: v - mark.get(k, 0) for k, v in interop.counters().items()}
    assert moved["ReasmOKs"] == COUNT
    assert moved[KERNEL_PATH_RX_FRAGMENTS] == COUNT * FRAGMENTS_PER_DATAGRAM
    assert moved.get("ReasmFails", 0) == 0
    assert interop.capture.fragments["rx"] == COUNT * FRAGMENTS_PER_DATAGRAM


def test_fragmented_udp_refstack_to_kernel(interop: Interop) -> None:
    """refstack fragments its own 8 KB datagrams; the kernel reassembles and receives them whole."""
    r, k = traffic.udp_pair(interop)
    r.sendto(b"warm-up", (KERNEL_IP, 5001))
    assert k.recvfrom(100) == (b"warm-up", (REFSTACK_IP, 5000))
    before = _kernel_snmp(interop)
    for i in range(COUNT):
        r.sendto(_payload(i), (KERNEL_IP, 5001))
        data, peer = k.recvfrom(65536)
        assert peer == (REFSTACK_IP, 5000)
        assert data == _payload(i)
    after = _kernel_snmp(interop)
    assert after["ReasmOKs"] - before["ReasmOKs"] == COUNT
    assert after["ReasmReqds"] - before["ReasmReqds"] == COUNT * FRAGMENTS_PER_DATAGRAM
    assert interop.capture.fragments["tx"] == COUNT * FRAGMENTS_PER_DATAGRAM


# --- multicast -------------------------------------------------------------------------------------
IGMP_REPORTS = {0x12, 0x16, 0x22}  # IGMPv1, v2 membership reports, v3 report (RFC 3376 §4.2)


def _reported(interop: Interop, direction: str, group: str) -> bool:
    """Whether an IGMP membership report for ``group`` went ``direction`` on the device."""
    g = socket.inet_aton(group)
    for d, ip in list(interop.capture.igmp):
        if d != direction:
            continue
        igmp = ip[(ip[0] & 0x0F) * 4 :]
        if not igmp or igmp[0] not in IGMP_REPORTS:
            continue
        if igmp[0] == 0x22:  # v3: group records of type(1) auxlen(1) nsrc(2) group(4) sources
            count = struct.unpack_from("!H", igmp, 6)[0]
            offset = 8
            for _ in range(count):
                if igmp[offset + 4 : offset + 8] == g:
                    return True
                aux, nsrc = igmp[offset + 1], struct.unpack_from("!H", igmp, offset + 2)[0]
                offset += 8 + 4 * nsrc + 4 * aux
        elif igmp[4:8] == g:
            return True
    return False


def _wait_for(predicate: object, timeout: float = TIMEOUT) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.01)
    return False


def test_multicast_refstack_sends_kernel_member_receives(interop: Interop) -> None:
    group, port = "239.1.2.3", 6000
    k = interop.kernel_socket(socket.AF_INET, socket.SOCK_DGRAM)
    k.settimeout(TIMEOUT)
    k.bind(("", port))
    mreq = socket.inet_aton(group) + socket.inet_aton(KERNEL_IP)
    k.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
    assert _wait_for(lambda: _reported(interop, "rx", group)), "no IGMP report from the kernel"
    r = interop.socket(socket.AF_INET, socket.SOCK_DGRAM)
    r.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(REFSTACK_IP))
    got: list[tuple[bytes, tuple[str, int]]] = []

    def receive() -> None:
        got.append(k.recvfrom(65536))

    t = threading.Thread(target=receive, daemon=True)
    t.start()
    for _ in range(3):  # UDP: a few tries, though nothing should be lost here
        r.sendto(b"to the group", (group, port))
        t.join(1.0)
        if got:
            break
    assert got and got[0][0] == b"to the group"
    assert got[0][1][0] == REFSTACK_IP


def test_multicast_kernel_sends_refstack_member_receives(interop: Interop) -> None:
    group, port = "239.1.2.4", 6001
    r = interop.socket(socket.AF_INET, socket.SOCK_DGRAM)
    r.settimeout(1.0)
    r.bind(("", port))
    mreq = socket.inet_aton(group) + socket.inet_aton(REFSTACK_IP)
    r.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
    assert _wait_for(lambda: _reported(interop, "tx", group)), "no IGMP report from refstack"
    k = interop.kernel_socket(socket.AF_INET, socket.SOCK_DGRAM)
    k.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(KERNEL_IP))
    k.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
    data = None
    for _ in range(3):
        k.sendto(b"from the kernel", (group, port))
        try:
            data, peer = r.recvfrom(65536)
        except TimeoutError:
            continue
        assert peer[0] == KERNEL_IP
        break
    assert data == b"from the kernel"
