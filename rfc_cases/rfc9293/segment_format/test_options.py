"""RFC 9293 §3.1, §3.2: TCP options the bench builds byte by byte.

Python cases: a .pkt line can write only the options packetdrill knows (nop, eol, mss,
wscale, sackOK, sack, TS, FO), always with their correct length, so an unknown option
or an illegal length field needs a segment built by hand.
"""

from __future__ import annotations

from scapy.layers.inet import IP, TCP
from scapy.packet import Packet, Raw

from conformance.case_api import Dut, TcpConnection, case

_MSS_700 = b"\x02\x04\x02\xbc"  # kind 2, length 4, 700


def _send_raw_options(
    conn: TcpConnection, flags: str, options: bytes, payload: bytes = b"", *, ack: int | None = None
) -> Packet:
    """Inject one segment of ``conn`` whose option area is exactly ``options`` (a
    multiple of 4 octets), whatever their kinds and length fields say; the sequence
    number is ``conn.seq``, which moves past the segment (SYN included)."""
    assert len(options) % 4 == 0 and conn.dut_port is not None
    bits = TCP(flags=flags).flags
    header = TCP(
        sport=conn.bench_port,
        dport=conn.dut_port,
        flags=flags,
        seq=conn.seq,
        ack=(conn.ack or 0) if ack is None else ack,
        window=conn.window,
        dataofs=5 + len(options) // 4,
    )
    # The option octets go right after the 20-octet header, inside the checksum.
    sent = conn.case.inject(IP(src=conn.bench_ip, dst=conn.dut_ip) / header / Raw(options + payload))
    conn.seq = (conn.seq + len(payload) + (1 if bits.S or bits.F else 0)) & 0xFFFFFFFF
    return sent


def _open_with_syn_options(dut: Dut, conn: TcpConnection, options: bytes) -> tuple[int, Packet]:
    """Listen on 8080, send a SYN whose option area is ``options``, expect the SYN-ACK,
    complete the handshake and accept; return the accepted fd and the SYN-ACK."""
    listen_fd = dut.listen_tcp(8080)
    conn.dut_port = 8080
    _send_raw_options(conn, "S", options, ack=0)
    synack = conn.expect(flags="SA", ack=conn.seq)
    conn.send("A")
    fd, _ = dut.accept(listen_fd)
    return fd, synack


def _uses_mss_700(dut: Dut, fd: int, conn: TcpConnection) -> None:
    """The DUT's send MSS is the peer's 700 (TCP_MAXSEG reads it back on an open
    connection; segment sizes cannot show it on Linux's tun0, whose TSO merges them),
    and data flows."""
    assert dut.getsockopt(fd, 6, 2) == 700  # IPPROTO_TCP, TCP_MAXSEG
    dut.send(fd, bytes(1400))
    conn.expect(payload_len=lambda n: n > 0)
    conn.drain(0.05)
    conn.send("A")


# req: MUST-6
@case("RFC 9293 §3.1")
def test_unknown_option_in_syn_is_ignored(dut: Dut, conn: TcpConnection) -> None:
    """A SYN with an unknown option (kind 253, RFC 4727 experimental, length 6) before
    its MSS option: the unknown option is skipped by its length, the MSS after it is
    used (send MSS 700), and the SYN-ACK echoes nothing of it."""
    options = b"\xfd\x06\x12\x34\x56\x78" + b"\x01\x01" + _MSS_700
    fd, synack = _open_with_syn_options(dut, conn, options)
    assert all(kind not in (253, "253") for kind, _ in synack[TCP].options), synack[TCP].options
    _uses_mss_700(dut, fd, conn)


# req: MUST-6
@case("RFC 9293 §3.1")
def test_unknown_option_on_data_is_ignored(dut: Dut, conn: TcpConnection) -> None:
    """A data segment on an established connection that carries an unknown option
    (kind 99, length 4): the option is ignored, the data acknowledged and delivered."""
    fd, _ = dut.establish(conn)
    _send_raw_options(conn, "PA", b"\x63\x04\xab\xcd", b"unknown option")
    conn.expect(flags="A", ack=conn.seq)
    assert dut.recv(fd) == b"unknown option"


# req: MUST-7
@case("RFC 9293 §3.1")
def test_option_length_zero_in_syn_is_coped_with(dut: Dut, conn: TcpConnection) -> None:
    """A SYN whose options are <mss 700> then an unknown kind with length 0 (which
    would never end): the DUT copes: it stops parsing at the bad length, keeps the MSS
    it already read (send MSS 700), and the connection works."""
    fd, _ = _open_with_syn_options(dut, conn, _MSS_700 + b"\x63\x00\x01\x01")
    _uses_mss_700(dut, fd, conn)
    conn.send("PA", b"after")
    conn.expect(flags="A", ack=conn.seq)
    assert dut.recv(fd) == b"after"


# req: MUST-7
@case("RFC 9293 §3.1")
def test_option_length_past_the_header_in_syn_is_coped_with(dut: Dut, conn: TcpConnection) -> None:
    """A SYN whose options are <mss 700> then an option claiming 40 octets where only
    4 remain in the header: the DUT copes (no crash, no read past the header): the SYN
    is answered, the MSS read before it is used, and the connection works."""
    fd, _ = _open_with_syn_options(dut, conn, _MSS_700 + b"\x63\x28\x01\x01")
    _uses_mss_700(dut, fd, conn)


# req: MUST-7
@case("RFC 9293 §3.1")
def test_option_length_zero_on_data_is_coped_with(dut: Dut, conn: TcpConnection) -> None:
    """A data segment on an established connection whose only option has length 0:
    the DUT copes: the segment is acknowledged and its data delivered, and the
    connection carries data both ways afterwards."""
    fd, _ = dut.establish(conn)
    _send_raw_options(conn, "PA", b"\x63\x00\x00\x00", b"bad length")
    conn.expect(flags="A", ack=conn.seq)
    assert dut.recv(fd) == b"bad length"
    dut.send(fd, b"reply")
    conn.expect(payload=b"reply")


def _option_area_problems(pkt: Packet) -> list[str]:
    """What is wrong with the option area of a segment the DUT sent: every option but
    EOL and NOP carries a length octet of at least 2 that stays inside the header
    (MUST-68), and whatever follows an EOL up to the data offset is zero (MUST-69)."""
    tcp = pkt[TCP]
    raw = bytes(tcp)[20 : tcp.dataofs * 4]
    problems: list[str] = []
    i = 0
    while i < len(raw):
        kind = raw[i]
        if kind == 0:
            if any(raw[i + 1 :]):
                problems.append(f"non-zero padding after EOL: {raw[i:].hex()}")
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= len(raw) or raw[i + 1] < 2 or i + raw[i + 1] > len(raw):
            problems.append(f"kind {kind} at {20 + i}: bad or missing length in {raw.hex()}")
            break
        i += raw[i + 1]
    return problems


# req: MUST-68 MUST-69
@case("RFC 9293 §3.1")
def test_options_sent_are_well_formed(dut: Dut, conn: TcpConnection) -> None:
    """Every segment with options the DUT sends (its SYN-ACK to a SYN offering MSS,
    SACK-permitted, timestamps and window scale; timestamped data, ACKs and FIN) has a
    well-formed option area: a length on every option but EOL and NOP, zeros after an
    EOL.  (Linux, and refstack after it, pad with NOPs and end the list at the data
    offset, so the EOL rule only bites if an EOL is ever sent.)"""
    syn_options = [("MSS", 1000), ("SAckOK", b""), ("Timestamp", (1, 0)), ("NOP", None), ("WScale", 7)]
    listen_fd = dut.listen_tcp(8080)
    conn.dut_port = 8080
    conn.send("S", options=syn_options)
    synack = conn.expect(flags="SA", ack=conn.seq)
    tsval = dict(synack[TCP].options).get("Timestamp", (0, 0))[0]
    conn.send("A", options=[("NOP", None), ("NOP", None), ("Timestamp", (2, tsval))])
    fd, _ = dut.accept(listen_fd)
    dut.send(fd, b"timestamped data")
    conn.expect(payload=b"timestamped data")
    conn.send("PA", b"data", options=[("NOP", None), ("NOP", None), ("Timestamp", (3, tsval))])
    conn.expect(flags="A", ack=conn.seq)
    dut.shutdown(fd, 1)  # SHUT_WR
    conn.expect(flags="FA")
    seen = [p for p in conn.received if p[TCP].dataofs > 5]
    assert len(seen) >= 4, [p.summary() for p in conn.received]
    problems = [f"{p.summary()}: {m}" for p in seen for m in _option_area_problems(p)]
    assert not problems, problems


# req: MUST-64
@case("RFC 9293 §3.2")
def test_unaligned_timestamp_option_is_processed(dut: Dut, conn: TcpConnection) -> None:
    """With timestamps negotiated, a data segment carries <nop,TS,nop> instead of the
    usual word-aligned <nop,nop,TS>: the timestamp option starts at an odd offset. The
    DUT still reads it: its ACK echoes that TSval (RFC 7323 §4.3), and the data is
    delivered."""
    listen_fd = dut.listen_tcp(8080)
    conn.dut_port = 8080
    conn.send("S", options=[("MSS", 1000), ("NOP", None), ("NOP", None), ("Timestamp", (100, 0))])
    synack = conn.expect(flags="SA", ack=conn.seq)
    tsval = dict(synack[TCP].options)["Timestamp"][0]
    conn.send("A", options=[("NOP", None), ("NOP", None), ("Timestamp", (101, tsval))])
    fd, _ = dut.accept(listen_fd)
    # 1 + 10 + 1 octets: the option area is 12, the TS option at offset 1.
    options = b"\x01" + b"\x08\x0a" + (7777).to_bytes(4, "big") + tsval.to_bytes(4, "big") + b"\x01"
    _send_raw_options(conn, "PA", options, b"odd offset")
    ack = conn.expect(flags="A", ack=conn.seq)
    assert dict(ack[TCP].options)["Timestamp"][1] == 7777, ack[TCP].options
    assert dut.recv(fd) == b"odd offset"
