"""Regression tests for what the RX fuzzer found, each named after what broke."""

from __future__ import annotations

from refstack.stack import Stack
from refstack.tcp.state import TcpState
from refstack.wire import SYN, build_ipv4, build_tcp, build_udp, ipv4_addr
from refstack.wire.addresses import mac
from refstack.wire.ethernet import ETHERTYPE_IPV4, build_ethernet
from tests.tcp.conftest import establish

from .rxworld import GROUP, RxWorld

LOCAL = ipv4_addr("192.168.0.1")
LOCAL_MAC, PEER_MAC = mac("02:00:00:00:00:01"), mac("02:00:00:00:00:02")


def _stack_with_listener() -> Stack:
    s = Stack(seed=1)
    s.add_interface("eth0", LOCAL, 24, mac=LOCAL_MAC)
    ep = s.tcp.endpoint()
    ep.bind(bytes(4), 8080)
    ep.listen(8)
    return s


def test_syn_from_our_own_address_on_the_wire_is_martian() -> None:
    """The LAND attack: a SYN from 192.168.0.1:8080 to 192.168.0.1:8080 arriving on
    eth0 made a SYN-RECEIVED connection to itself that answered itself over the
    loopback for 63 s (SYN-ACK retransmissions, each drawing three segments).  Our
    own address as a source from outside is a spoof: dropped as a martian source, as
    Linux does (fib_validate_source without accept_local)."""
    s = _stack_with_listener()
    seg = build_tcp(LOCAL, LOCAL, 8080, 8080, seq=1, flags=SYN)
    mark = s.counters.mark()
    s.receive(build_ethernet(LOCAL_MAC, PEER_MAC, ETHERTYPE_IPV4, build_ipv4(LOCAL, LOCAL, 6, seg)), 0.0)
    assert s.poll(0.0) == []
    assert s.counters.since(mark) == {"rx_frames": 1, "ip_rx_martian_source": 1}
    assert not s.tcp.connections


def test_syn_from_our_own_address_to_another_port_is_martian() -> None:
    """The same with a different source port: the SYN-ACK went to ourselves, drew our
    own RST, and the RST reset the half-open connection."""
    s = _stack_with_listener()
    seg = build_tcp(LOCAL, LOCAL, 4000, 8080, seq=1, flags=SYN)
    mark = s.counters.mark()
    s.receive(build_ethernet(LOCAL_MAC, PEER_MAC, ETHERTYPE_IPV4, build_ipv4(LOCAL, LOCAL, 6, seg)), 0.0)
    assert s.poll(0.0) == []
    assert s.counters.since(mark) == {"rx_frames": 1, "ip_rx_martian_source": 1}


def test_our_multicast_still_loops_back() -> None:
    """The martian rule spares multicast, which comes back on its interface by design
    (IP_MULTICAST_LOOP): a socket joined to the group still gets our own datagram."""
    w = RxWorld(3)
    w.dut.add_route("224.0.0.0", 4, "eth0")
    sender = receiver = w.udp[0]  # bound to 5353, joined to GROUP
    receiver.rx.clear()
    receiver.rx_bytes = 0
    sender.sendto(b"to the group", (GROUP, 5353), w.sim.now())
    w.advance(0.01)
    assert [d for d, _ in receiver.rx] == [b"to the group"]
    assert all(ep.state != TcpState.CLOSED for ep in w.connections())


def test_udp_from_our_own_address_on_the_wire_is_martian() -> None:
    """Unicast UDP from our own address arriving on eth0 is not delivered."""
    w = RxWorld(4)
    u = w.udp[1]  # bound to port 7
    udp = build_udp(LOCAL, LOCAL, 7, 7, b"echo to myself")
    frame = build_ethernet(LOCAL_MAC, PEER_MAC, ETHERTYPE_IPV4, build_ipv4(LOCAL, LOCAL, 17, udp))
    assert w.inject(frame) == []
    assert not u.rx


def test_fin_first_sent_by_a_retransmission_can_be_acknowledged() -> None:
    """Found by the RX fuzzer (SND.NXT > SND.MAX after an RTO in CLOSE-WAIT).  Two
    segments in flight; an RTO resends the first (the go-back cursor now points at the
    second); a partial ACK with a zero window; close() cannot send the FIN (the cursor
    waits for the window); the next RTO resends the second segment with the FIN.  The
    peer's ACK of everything must then be taken."""
    c = establish()  # packetdrill's preamble: peer MSS 1000, no options
    p, ep = c.peer, c.ep
    c.send(b"a" * 2000)
    p.at(1.5)  # RTO: the first segment again
    p.inject(".", 1, c.iss + 1 + 1000, win=0)
    ep.close(p.now)
    p.at(10)  # RTO: the second segment, with the FIN
    p.out.clear()
    assert ep.snd_una <= ep.snd_nxt <= ep.snd_max, (ep.snd_una, ep.snd_nxt, ep.snd_max)
    mark = ep.layer.stack.counters.mark()
    p.inject(".", 1, c.iss + 1 + 2000 + 1, win=65535)  # data and FIN acknowledged
    assert "tcp_ack_unsent" not in ep.layer.stack.counters.since(mark)
    assert ep.state == TcpState.FIN_WAIT_2
