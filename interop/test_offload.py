"""refstack on an offloaded device (``IFF_VNET_HDR``, ``TUN_F_CSUM|TUN_F_TSO4``): the
kernel hands refstack 64 KB TCP super-segments (GSO) and frames with a partial checksum,
and refstack hands the kernel TSO super-segments with a partial checksum, as QEMU and
gVisor do with theirs (virtio spec §5.1.6; :mod:`refstack.nic.vnet`).

The same world as the other interop tests (:mod:`interop.conftest`: a private namespace,
the kernel at 198.51.100.1/24, refstack at 198.51.100.2, a pcap of the device whose path
a failing test prints), but the device is opened with ``offload=True``.  The tests check
the bytes (sha256 both ways) and that the offloads were really used: super-segments
longer than the MTU read (``rx_gso``, ``rx_max_len``) and written (``tx_gso``), frames
whose checksum the kernel vouched for accepted (``rx_csum_valid``, no checksum drop on
either side), no header dropped (``rx_bad_vnet``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from . import traffic
from .conftest import (
    KERNEL_IP,
    REFSTACK_IP,
    Interop,
    bulk_bytes,
    close_interop,
    open_interop,
    report,
)

TIMEOUT = 30.0
ETH_MTU_FRAME = 1514  # the longest frame a 1500-byte MTU allows without offloads


@pytest.fixture
def offloaded(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Interop]:
    """An offloaded TAP (or TUN, ``indirect`` param ``"tun"``) between the kernel and refstack."""
    world = open_interop(tmp_path, request.config, kind=getattr(request, "param", "tap"), offload=True)
    assert world.link.offload and world.stack.primary.tso
    request.node.interop_pcap = world.pcap
    try:
        yield world
    finally:
        close_interop(world)


# --- helpers ------------------------------------------------------------------------------------
def _snmp(world: Interop, group: str) -> dict[str, int]:
    """The namespace's ``group:`` SNMP counters (``Tcp``, ``Udp``, ``Ip``), read inside."""

    def read() -> dict[str, int]:
        rows = [line.split() for line in Path("/proc/thread-self/net/snmp").read_text().splitlines()]
        names, values = (row for row in rows if row[0] == f"{group}:")
        return {n: int(v) for n, v in zip(names[1:], values[1:], strict=True)}

    return world.ns.run(read, "interop-snmp")


def _checksum_drops(world: Interop) -> dict[str, int]:
    """refstack's counters of transport checksum failures (none may move here)."""
    return {k: v for k, v in world.counters().items() if "checksum" in k or "csum" in k.lower()}


def _link(world: Interop) -> dict[str, int]:
    with world.driver.locked():
        return world.link.offload_counters()


def _report(what: str, size: int, elapsed: float, link: dict[str, int]) -> None:
    mb = size / 1e6
    report(
        f"bulk {what} over offloaded TAP: {mb:.0f} MB in {elapsed:.2f} s = {mb / elapsed:.1f} MB/s"
        f" (sha256 equal; rx_gso {link['rx_gso']}, rx_max_len {link['rx_max_len']},"
        f" tx_gso {link['tx_gso']}, rx_frames {link['rx_frames']}, tx_frames {link['tx_frames']})"
    )


# --- bulk ------------------------------------------------------------------------------------------
def test_offload_bulk_kernel_to_refstack(offloaded: Interop) -> None:
    """10 MB kernel -> refstack: the kernel's TSO/GSO hands refstack super-segments of up to
    64 KB behind gso_size and a partial checksum; sha256 equal, none dropped."""
    world = offloaded
    size = bulk_bytes(world.config)
    before = _snmp(world, "Tcp")
    elapsed = traffic.kernel_to_refstack(world, size)
    link = _link(world)
    _report("kernel -> refstack", size, elapsed, link)
    assert link["rx_bad_vnet"] == 0
    assert link["rx_gso"] > 0, f"no super-segment arrived: {link}"
    assert link["rx_max_len"] > ETH_MTU_FRAME, link
    assert link["rx_csum_valid"] > 0, link  # partial checksums, accepted: sha256 matched
    assert not any(_checksum_drops(world).values()), _checksum_drops(world)
    after = _snmp(world, "Tcp")
    assert after["InCsumErrors"] == before["InCsumErrors"]  # refstack's ACKs were complete


def test_offload_bulk_refstack_to_kernel(offloaded: Interop) -> None:
    """10 MB refstack -> kernel: refstack writes TSO super-segments (TxOffloadFrame behind
    NEEDS_CSUM + GSO TCPV4) that the kernel takes whole; sha256 equal, no checksum error."""
    world = offloaded
    size = bulk_bytes(world.config)
    before = _snmp(world, "Tcp")
    elapsed = traffic.refstack_to_kernel(world, size)
    link = _link(world)
    _report("refstack -> kernel", size, elapsed, link)
    assert link["tx_gso"] > 0, f"refstack wrote no TSO super-segment: {link}"
    assert link["tx_csum_partial"] >= link["tx_gso"], link
    assert link["tx_dropped"] == 0 or link["tx_frames"] > 0
    after = _snmp(world, "Tcp")
    assert after["InCsumErrors"] == before["InCsumErrors"], "the kernel dropped segments on their checksum"
    assert link["rx_bad_vnet"] == 0


# --- echo and UDP still work -----------------------------------------------------------------------
@pytest.mark.parametrize("offloaded", ["tap", "tun"], indirect=True)
def test_offload_tcp_echo_kernel_client(offloaded: Interop) -> None:
    """Small segments both ways on an offloaded TAP and TUN (csum_start is relative to the
    frame: after the Ethernet header on a TAP, at the IP header on a TUN)."""
    world = offloaded
    traffic.kernel_echo_client(world, [b"hello", b"x" * 3000, bytes(range(256)) * 200])
    link = _link(world)
    assert link["rx_bad_vnet"] == 0 and link["rx_csum_valid"] > 0, link


def test_offload_udp_echo(offloaded: Interop) -> None:
    """Plain UDP both ways: the kernel's datagrams arrive with a partial checksum
    (NEEDS_CSUM, accepted), refstack's echoes are taken by the kernel (no InCsumErrors)."""
    world = offloaded
    r, k = traffic.udp_pair(world)
    before = _snmp(world, "Udp")
    for i in range(20):
        payload = bytes((i + j) & 0xFF for j in range(100 + 60 * i))
        k.sendto(payload, (REFSTACK_IP, 5000))
        data, peer = r.recvfrom(65536)
        assert (data, peer) == (payload, (KERNEL_IP, 5001))
        r.sendto(data, peer)
        assert k.recvfrom(65536) == (payload, (REFSTACK_IP, 5000))
    after = _snmp(world, "Udp")
    assert after["InCsumErrors"] == before["InCsumErrors"]
    assert after["InDatagrams"] - before["InDatagrams"] == 20
    link = _link(world)
    assert link["rx_bad_vnet"] == 0 and link["rx_csum_valid"] >= 20, link
    assert not any(_checksum_drops(world).values()), _checksum_drops(world)


def test_offload_fragmented_udp_both_ways(offloaded: Interop) -> None:
    """8 KB datagrams, fragmented by each sender (the kernel cannot leave a fragmented
    datagram's checksum to the device, nor may refstack): reassembled whole on both sides."""
    world = offloaded
    r, k = traffic.udp_pair(world)
    k.sendto(b"warm-up", (REFSTACK_IP, 5000))  # ARP both ways first
    assert r.recvfrom(100) == (b"warm-up", (KERNEL_IP, 5001))
    before_ip, before_udp = _snmp(world, "Ip"), _snmp(world, "Udp")
    mark = world.counters()
    for i in range(10):
        payload = bytes((i * 3 + j) & 0xFF for j in range(8192))
        k.sendto(payload, (REFSTACK_IP, 5000))
        data, peer = r.recvfrom(65536)
        assert (data, peer) == (payload, (KERNEL_IP, 5001))
        r.sendto(data, peer)
        assert k.recvfrom(65536) == (payload, (REFSTACK_IP, 5000))
    moved = {name: v - mark.get(name, 0) for name, v in world.counters().items()}
    assert moved["ReasmOKs"] == 10
    after_ip, after_udp = _snmp(world, "Ip"), _snmp(world, "Udp")
    assert after_ip["ReasmOKs"] - before_ip["ReasmOKs"] == 10
    assert after_udp["InCsumErrors"] == before_udp["InCsumErrors"]
    assert world.capture.fragments["rx"] > 0 and world.capture.fragments["tx"] > 0
    assert _link(world)["rx_bad_vnet"] == 0
