"""Segment sizes, PSH and window scaling: cases whose exact bytes depend on stack
internals that the RFCs leave open (how a write is cut into buffers, how far a receive
window has grown), so they check the RFC's bounds instead of one stack's numbers.
"""

from __future__ import annotations

from scapy.layers.inet import TCP

from conformance.case_api import Case, Dut, TcpConnection, case
from conformance.target import Setting

MSS = 1000
PSH = 0x08


def _no_offloads(case: Case) -> None:
    """MSS-sized segments on the wire (Linux's tun0 would otherwise send TSO/GSO
    super-packets); a no-op on refstack."""
    case.session.apply(Setting("shell", "ethtool -K tun0 tso off gso off"))


# req: SHLD-28 MUST-61 MUST-16
@case("RFC 9293 §3.7.1 §3.9.1.2 SHLD-28 MUST-61 MUST-16")
def test_large_write_leaves_in_mss_segments_with_psh_on_the_last(
    case: Case, dut: Dut, conn: TcpConnection
) -> None:
    """A 3500-octet write to a peer whose MSS is 1000 leaves as full 1000-octet
    segments and one 500-octet tail (SHLD-28: maximum-sized segments; MUST-16: never
    above the effective MSS), and the segment that ends the data carries PSH (MUST-61:
    a sockets API cannot set PUSH, so the last buffered segment gets it)."""
    _no_offloads(case)
    lfd = dut.listen_tcp(8080)
    conn.connect_to(8080, options=[("MSS", MSS)])
    fd, _ = dut.accept(lfd)
    start = conn.ack
    dut.send(fd, b"s" * 3500)
    sizes: list[int] = []
    last = None
    while sum(sizes) < 3500:
        seg = conn.expect(payload_len=lambda n: n > 0, timeout=0.5)
        sizes.append(len(bytes(seg[TCP].payload)))
        last = seg
    conn.send("A")
    assert sizes == [1000, 1000, 1000, 500], sizes
    assert last is not None and int(last[TCP].flags) & PSH, "no PSH on the last segment"
    assert (last[TCP].seq + 500 - start) & 0xFFFFFFFF == 3500


# req: RFC7323-2.3 MUST-1
@case("RFC 7323 §2.3 RFC 9293 §3.8.6")
def test_advertised_window_is_scaled_when_the_peer_offers_window_scaling(
    case: Case, dut: Dut, conn: TcpConnection
) -> None:
    """With window scaling agreed, the window field of every segment after the SYN-ACK
    is the window shifted right by the DUT's own scale (RFC 7323 §2.3): the ACK of data
    offers about the same 64 KiB as the unscaled SYN-ACK, in units of 2**shift."""
    lfd = dut.listen_tcp(8080)
    synack = conn.connect_to(8080, options=[("MSS", MSS), ("NOP", None), ("WScale", 7)])
    shift = dict(synack[TCP].options).get("WScale")
    assert isinstance(shift, int) and shift > 0, f"no window scale in the SYN-ACK: {synack[TCP].options}"
    fd, _ = dut.accept(lfd)
    conn.send("PA", b"w" * MSS, window=512)
    ack = conn.expect(flags="A", ack=conn.seq, timeout=0.5)
    octets = ack[TCP].window << shift
    assert ack[TCP].window < 0xFFFF >> 4, f"window field {ack[TCP].window} does not look scaled"
    assert synack[TCP].window - 2 * MSS <= octets <= synack[TCP].window + (1 << shift), (
        f"scaled window {ack[TCP].window} << {shift} = {octets}, SYN-ACK offered {synack[TCP].window}"
    )
    assert dut.recv(fd) == b"w" * MSS
