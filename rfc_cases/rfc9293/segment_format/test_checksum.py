"""RFC 9293 §3.1: the TCP checksum, computed by the sender and checked by the receiver.

Python cases: a .pkt line cannot write a wrong checksum (the injector always computes
it), and checking every segment of a flow, an odd-length one included, reads best as
a loop.  Every outbound segment a .pkt line matches has its checksums verified by the
harness as well (conformance/run/packets.py checksum_diffs), so the .pkt corpus checks
MUST-2 on every segment it matches; these cases check it on purpose.  On Linux, tun0
offers transmit checksum offload and the capture completes a partial checksum as a NIC
would, so there the kernel's share is the pseudo-header sum;
checksum_sent_without_offload.pkt turns the offload off.
"""

from __future__ import annotations

import errno

import pytest
from scapy.layers.inet import IP, TCP, in4_chksum
from scapy.packet import Packet

from conformance.case_api import Case, Dut, DutError, TcpConnection, case


def _tcp_checksum_ok(pkt: Packet) -> bool:
    """The one's complement sum over pseudo-header and segment, checksum included, is
    -0 (RFC 9293 §3.1)."""
    ip = pkt[IP]
    segment = bytes(ip)[ip.ihl * 4 : ip.len]
    return in4_chksum(6, ip, segment) == 0


def _corrupt(pkt: Packet) -> bytes:
    """``pkt`` as bytes with its TCP checksum off by one bit pattern (never valid)."""
    raw = bytearray(bytes(pkt))
    at = pkt[IP].ihl * 4 + 16
    raw[at] ^= 0x5A
    return bytes(raw)


def _segment(conn: TcpConnection, flags: str, payload: bytes = b"", **fields: object) -> Packet:
    assert conn.dut_port is not None
    tcp = TCP(sport=conn.bench_port, dport=conn.dut_port, flags=flags, seq=conn.seq, window=conn.window)
    tcp.ack = conn.ack or 0
    for name, value in fields.items():
        setattr(tcp, name, value)
    pkt = IP(src=conn.bench_ip, dst=conn.dut_ip) / tcp
    return IP(bytes(pkt / payload if payload else pkt))


def _nothing_to_read(dut: Dut, fd: int) -> None:
    dut.set_nonblocking(fd)
    with pytest.raises(DutError) as nothing:
        dut.recv(fd)
    assert nothing.value.errno == errno.EAGAIN
    dut.set_nonblocking(fd, False)


# req: MUST-2
@case("RFC 9293 §3.1")
def test_every_segment_sent_carries_a_valid_checksum(dut: Dut, conn: TcpConnection) -> None:
    """The SYN-ACK, data segments of even and odd length (the odd one padded with a zero
    octet for the sum), pure ACKs and the FIN all carry a correct TCP checksum over the
    pseudo-header (RFC 9293 §3.1)."""
    fd, _ = dut.establish(conn)
    dut.setsockopt(fd, 6, 1, 1)  # IPPROTO_TCP, TCP_NODELAY
    dut.send(fd, b"even-length!")
    dut.send(fd, b"odd")
    conn.expect(payload_len=lambda n: n > 0)
    conn.drain(0.1)
    conn.send("A")
    conn.send("PA", b"data for the DUT to ACK")
    conn.expect(flags="A", ack=conn.seq)
    dut.shutdown(fd, 1)  # SHUT_WR: the FIN
    conn.expect(flags="FA")
    conn.send("A")
    seen = [p for p in conn.received if p[TCP].sport == conn.dut_port]
    kinds = {str(p[TCP].flags) for p in seen}
    assert {"SA", "A", "FA"} <= kinds and any(len(bytes(p[TCP].payload)) % 2 for p in seen), kinds
    bad = [p.summary() for p in seen if not _tcp_checksum_ok(p)]
    assert not bad, f"segments with a wrong TCP checksum: {bad}"


# req: MUST-3
@case("RFC 9293 §3.1")
def test_data_with_bad_checksum_is_dropped(case: Case, dut: Dut, conn: TcpConnection) -> None:
    """A data segment whose checksum is wrong is discarded: no ACK, nothing to read.
    The same segment with a correct checksum is then acknowledged and delivered."""
    fd, _ = dut.establish(conn)
    good = _segment(conn, "PA", b"checksummed")
    case.inject(_corrupt(good))
    conn.expect_none(0.3)
    _nothing_to_read(dut, fd)
    conn.send("PA", b"checksummed")
    conn.expect(flags="A", ack=conn.seq)
    assert dut.recv(fd) == b"checksummed"


# req: MUST-3
@case("RFC 9293 §3.1")
def test_syn_with_bad_checksum_is_dropped(case: Case, dut: Dut, conn: TcpConnection) -> None:
    """A SYN with a wrong checksum to a listener draws nothing (no SYN-ACK, no RST);
    the same SYN with a correct checksum is answered."""
    dut.listen_tcp(8080)
    conn.dut_port = 8080
    syn = _segment(conn, "S", ack=0, options=[("MSS", 1000)])
    case.inject(_corrupt(syn))
    assert case.sniff_any(0.3) is None, "the DUT answered a SYN with a bad checksum"
    conn.send("S", options=[("MSS", 1000)])
    conn.expect(flags="SA", ack=conn.seq)


# req: MUST-3
@case("RFC 9293 §3.1")
def test_rst_with_bad_checksum_is_dropped(case: Case, dut: Dut, conn: TcpConnection) -> None:
    """An RST at RCV.NXT (which would reset the connection) with a wrong checksum is
    discarded: the connection stays up and carries data."""
    fd, _ = dut.establish(conn)
    case.inject(_corrupt(_segment(conn, "R")))
    conn.expect_none(0.2)
    assert dut.so_error(fd) == 0
    dut.send(fd, b"still up")
    conn.expect(payload=b"still up")
