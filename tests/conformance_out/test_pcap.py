"""conformance.pcap: a case's packets written to pcap and read back by independent readers.

Packets are built with scapy (the oracle's side); the file is read back with dpkt,
scapy's rdpcap and, when the machine has it, tshark.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import dpkt
import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.utils import rdpcap

from conformance.pcap import LINKTYPE_RAW, PCAP_EPOCH, pcap_name, write_pcap
from conformance.results import CaseResult, TraceEntry, Verdict

LOCAL, REMOTE = "192.168.0.1", "192.0.2.1"


def _in(time: float, **tcp: object) -> TraceEntry:
    pkt = bytes(IP(src=REMOTE, dst=LOCAL) / TCP(sport=40000, dport=8080, **tcp))  # type: ignore[arg-type]
    return TraceEntry(time, "in", "in packet", 3, pkt)


def _out(time: float, **tcp: object) -> TraceEntry:
    pkt = bytes(IP(src=LOCAL, dst=REMOTE) / TCP(sport=8080, dport=40000, **tcp))  # type: ignore[arg-type]
    return TraceEntry(time, "out", "out packet", 4, pkt)


def handshake_result() -> CaseResult:
    """A passive open, with the non-packet entries a real trace has in between."""
    trace = [
        TraceEntry(0.0, "call", "socket(...) = 3", 1),
        TraceEntry(0.0, "shell", "sysctl -q net.ipv4.tcp_timestamps=0", 0),
        TraceEntry(0.0, "call", "listen(3, 1) = 0", 2),
        _in(0.1, flags="S", seq=0, window=1000),
        _out(0.1, flags="SA", seq=0, ack=1, window=64240),
        TraceEntry(0.1, "note", "matched line 4", 4),
        _in(0.2, flags="A", seq=1, ack=1, window=1000),
        TraceEntry(0.2, "call", "accept(3, ..., ...) = 4", 5),
        _in(0.9999999, flags="PA", seq=1, ack=1, window=1000),
        _out(1.25, flags="A", seq=1, ack=1, window=64240),
        TraceEntry(1.5, "note", "an entry with empty packet bytes is not a packet", 0, b""),
        TraceEntry(
            2.000001,
            "out",
            "a UDP datagram",
            9,
            bytes(IP(src=LOCAL, dst=REMOTE) / UDP(sport=53, dport=5353) / (b"\xff" * 1400)),
        ),
    ]
    return CaseResult("rfc9293/handshake/passive_open.pkt", "linux", Verdict.PASS, trace=trace)


def packets_of(result: CaseResult) -> list[TraceEntry]:
    return [t for t in result.trace if t.packet]


def test_dpkt_reads_back_every_packet_in_order_with_its_time(tmp_path: Path) -> None:
    result = handshake_result()
    path = tmp_path / "case.pcap"
    assert write_pcap(result, path) == 6
    with path.open("rb") as f:
        reader = dpkt.pcap.Reader(f)
        assert reader.datalink() == LINKTYPE_RAW
        assert reader.snaplen >= 65535
        records = list(reader)
    expected = packets_of(result)
    assert [buf for _, buf in records] == [t.packet for t in expected]
    # microsecond timestamps, offset from the fixed epoch; 0.9999999 rounds up into the next second
    assert [round((ts - PCAP_EPOCH) * 1_000_000) for ts, _ in records] == [
        100_000,
        100_000,
        200_000,
        1_000_000,
        1_250_000,
        2_000_001,
    ]
    for (_, buf), entry in zip(records, expected, strict=True):
        ip = dpkt.ip.IP(buf)
        src = ".".join(map(str, ip.src))
        assert src == (REMOTE if entry.kind == "in" else LOCAL)


def test_record_headers_are_exact_and_never_carry_a_million_microseconds(tmp_path: Path) -> None:
    times = [0.0, 0.0000005, 0.9999994, 0.9999996, 1.000001, 59.999999, 3600.5]
    trace = [TraceEntry(t, "in", "", 0, bytes(IP(src=REMOTE, dst=LOCAL) / TCP())) for t in times]
    path = tmp_path / "t.pcap"
    write_pcap(CaseResult("t", "refstack", Verdict.PASS, trace=trace), path)
    data = path.read_bytes()
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic == 0xA1B2C3D4 else ">"
    assert struct.unpack(endian + "I", data[:4])[0] == 0xA1B2C3D4  # microsecond pcap
    assert struct.unpack(endian + "I", data[20:24])[0] == LINKTYPE_RAW
    offset, stamps = 24, []
    while offset < len(data):
        sec, usec, caplen, wirelen = struct.unpack(endian + "IIII", data[offset : offset + 16])
        assert usec < 1_000_000 and caplen == wirelen
        stamps.append((sec - PCAP_EPOCH, usec))
        offset += 16 + caplen
    assert stamps == [(0, 0), (0, 0), (0, 999_999), (1, 0), (1, 1), (59, 999_999), (3600, 500_000)]


def test_scapy_reads_back_the_same_packets_and_directions(tmp_path: Path) -> None:
    result = handshake_result()
    path = tmp_path / "case.pcap"
    write_pcap(result, path)
    packets = rdpcap(str(path))
    expected = packets_of(result)
    assert len(packets) == len(expected)
    for pkt, entry in zip(packets, expected, strict=True):
        assert bytes(pkt) == entry.packet
        assert IP in pkt  # LINKTYPE_RAW decodes straight to IP
        assert pkt[IP].src == (REMOTE if entry.kind == "in" else LOCAL)
        assert pkt[IP].dst == (LOCAL if entry.kind == "in" else REMOTE)
        assert round((float(pkt.time) - PCAP_EPOCH) * 1e6) == round(entry.time * 1e6)
    flags = [str(p[TCP].flags) for p in packets if TCP in p]
    assert flags == ["S", "SA", "A", "PA", "A"]


def test_tshark_reads_it(tmp_path: Path) -> None:
    tshark = shutil.which("tshark")
    if tshark is None:
        pytest.skip("tshark is not installed on this machine (dpkt and scapy still read the file)")
    result = handshake_result()
    path = tmp_path / "case.pcap"
    write_pcap(result, path)
    run = subprocess.run(
        [tshark, "-n", "-r", str(path), "-T", "fields", "-e", "ip.src"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    sources = run.stdout.split()
    assert sources == [REMOTE if t.kind == "in" else LOCAL for t in packets_of(result)]


def test_a_trace_without_packets_writes_an_empty_valid_pcap(tmp_path: Path) -> None:
    result = CaseResult(
        "x.pkt", "refstack", Verdict.ERROR, reason="syntax", trace=[TraceEntry(0.0, "note", "nothing")]
    )
    path = tmp_path / "empty.pcap"
    assert write_pcap(result, path) == 0
    assert path.stat().st_size == 24  # the file header only
    with path.open("rb") as f:
        assert list(dpkt.pcap.Reader(f)) == []
    assert len(rdpcap(str(path))) == 0
    assert write_pcap(CaseResult("y.pkt", "linux", Verdict.SKIP), tmp_path / "none.pcap") == 0


def test_the_same_result_always_writes_the_same_bytes(tmp_path: Path) -> None:
    write_pcap(handshake_result(), tmp_path / "a.pcap")
    write_pcap(handshake_result(), tmp_path / "b.pcap")
    assert (tmp_path / "a.pcap").read_bytes() == (tmp_path / "b.pcap").read_bytes()


def test_a_packet_round_tripped_through_json_is_written_the_same(tmp_path: Path) -> None:
    result = handshake_result()
    back = CaseResult.from_json(result.to_json())
    write_pcap(result, tmp_path / "a.pcap")
    write_pcap(back, tmp_path / "b.pcap")
    assert (tmp_path / "a.pcap").read_bytes() == (tmp_path / "b.pcap").read_bytes()


# -- pcap_name -----------------------------------------------------------------------

SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-")


@pytest.mark.parametrize(
    "case",
    [
        "rfc9293/segment_arrival/rst_in_window.pkt",
        "/work/main/rfc_cases/rfc9293/x.pkt",
        "../../etc/passwd",
        "..",
        ".hidden.pkt",
        "",
        "python/test_frag.py::test_overlap[first-8/16]",
        "with space and $(shell) `tick` ; | * ? \\ back\\slash",
        "ünïcødé/名前.pkt",
        "a" * 400 + "/" + "b" * 400 + ".pkt",
        "nul\x00byte\nnewline",
    ],
)
def test_pcap_name_is_one_safe_file_name(case: str) -> None:
    name = pcap_name(case, "linux")
    assert name.endswith(".linux.pcap")
    assert set(name) <= SAFE, name
    assert not name.startswith(".")
    assert name not in {".", ".."}
    assert len(name.encode()) <= 255
    assert os.path.basename(name) == name


def test_pcap_name_keeps_plain_names_and_stays_readable() -> None:
    assert pcap_name("smoke.pkt", "refstack") == "smoke.pkt.refstack.pcap"
    name = pcap_name("rfc9293/segment_arrival/rst_in_window.pkt", "linux")
    assert name.startswith("rfc9293__segment_arrival__rst_in_window.pkt-")
    assert pcap_name("x.pkt", "../evil") == "x.pkt._evil.pcap"


def test_different_cases_or_targets_never_share_a_name() -> None:
    cases = [
        "a/b_c.pkt",
        "a_b/c.pkt",
        "a__b_c.pkt",
        "a/b/c.pkt",
        "x y.pkt",
        "x?y.pkt",
        "x_y.pkt",
        "/a/b_c.pkt",
        "a/b_c.pkt/",
        "c" * 300 + "1",
        "c" * 300 + "2",
    ]
    names = {pcap_name(c, t) for c in cases for t in ("refstack", "linux")}
    assert len(names) == 2 * len(cases)
    assert pcap_name("a/b.pkt", "linux") == pcap_name("a/b.pkt", "linux")  # deterministic


def test_the_output_modules_do_not_import_refstack() -> None:
    code = (
        "import sys, conformance.pcap, conformance.expectations, conformance.resultset;"
        "bad = sorted(m for m in sys.modules if m == 'refstack' or m.startswith('refstack.'));"
        "sys.exit(', '.join(bad) or None)"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
