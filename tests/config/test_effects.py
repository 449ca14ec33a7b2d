"""The effect of each EF_* option wired beyond the profile (test_stack_wiring.py) and the
Onload model's limits (tests/nic): socket buffers, multicast, interface lists, EF_NAME,
and the TCP timers observed on the wire in virtual time."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from refstack import socket as rs
from refstack.clock import VirtualClock
from refstack.config import Config
from refstack.link import MemoryLink
from refstack.runtime import Runtime, VirtualDriver
from refstack.simulation import Simulation
from refstack.stack import Stack
from refstack.tools.stackdump import render_netif
from refstack.wire.ipv4 import Ipv4Packet
from refstack.wire.tcp import ACK, FIN, RST, SYN, TcpSegment

A_IP, B_IP, B2_IP, PORT = "10.0.0.1", "10.0.0.2", "10.0.1.2", 8080
GROUP = "239.1.2.3"
IP_ADD_MEMBERSHIP, IP_MULTICAST_LOOP = 35, 34


class Pair:
    """Stack A (defaults) and stack B (``options``) on a MemoryLink, B's frames recorded."""

    def __init__(self, **options: object) -> None:
        self.sim = Simulation(VirtualClock())
        self.a_stack = Stack(name="a", seed=1)
        self.stack = Stack(name="b", seed=2, config=Config().with_options(options))
        self.a_stack.add_interface("eth0", A_IP, 24)
        self.stack.add_interface("eth0", B_IP, 24)
        self.stack.add_interface("eth1", B2_IP, 24)
        self.sim.add(self.a_stack, "a")
        self.sim.add(self.stack, "b")
        self.sim.connect("a", "b", MemoryLink(delay=0.01))
        driver = VirtualDriver(self.sim)
        self.a, self.b = Runtime(self.a_stack, driver), Runtime(self.stack, driver)
        self.sent: list[tuple[float, Ipv4Packet]] = []
        self.stack.taps.append(self._tap)

    def _tap(self, direction: str, iface: str, now: float, frame: bytes) -> None:
        if direction == "tx":
            self.sent.append((now, Ipv4Packet(frame)))

    def tcp_sent(
        self, match: Callable[[TcpSegment], bool] = lambda s: True
    ) -> list[tuple[float, TcpSegment]]:
        out = []
        for t, ip in self.sent:
            if ip.protocol == 6:
                seg = TcpSegment(ip.payload)
                if match(seg):
                    out.append((t, seg))
        return out

    def run(self, seconds: float) -> None:
        self.b.driver.wait_until(lambda: False, seconds)

    def tcp(self, rt: Runtime) -> rs.socket:
        return rs.socket(rs.AF_INET, rs.SOCK_STREAM, runtime=rt)

    def udp(self, rt: Runtime, port: int | None = None, addr: str = "") -> rs.socket:
        s = rs.socket(rs.AF_INET, rs.SOCK_DGRAM, runtime=rt)
        if port is not None:
            s.bind((addr, port))
        return s

    def connected(self) -> tuple[rs.socket, rs.socket]:
        """B's client connected to A's listener: (B's socket, A's accepted socket)."""
        listener = self.tcp(self.a)
        listener.bind(("", PORT))
        listener.listen(1)
        client = self.tcp(self.b)
        client.connect((A_IP, PORT))
        server, _ = listener.accept()
        return client, server


# --- EF_TCP_SNDBUF / EF_TCP_RCVBUF ---------------------------------------------------------------
def test_tcp_buffer_defaults_are_linuxs_without_the_options() -> None:
    p = Pair()
    s = p.tcp(p.b)
    assert s.getsockopt(rs.SOL_SOCKET, rs.SO_RCVBUF) == 131072  # tcp_rmem[1]
    assert s.getsockopt(rs.SOL_SOCKET, rs.SO_SNDBUF) == 16384  # tcp_wmem[1]


def test_tcp_sndbuf_and_rcvbuf_override_the_defaults_doubled() -> None:
    """Onload: "the actual size of the buffer is double the amount requested,
    mimicking the behavior of the Linux kernel"; a UDP socket keeps its default."""
    p = Pair(EF_TCP_SNDBUF=50000, EF_TCP_RCVBUF=8192)
    s = p.tcp(p.b)
    assert s.getsockopt(rs.SOL_SOCKET, rs.SO_SNDBUF) == 100000
    assert s.getsockopt(rs.SOL_SOCKET, rs.SO_RCVBUF) == 16384
    assert p.udp(p.b).getsockopt(rs.SOL_SOCKET, rs.SO_RCVBUF) == 212992  # rmem_default


def test_tcp_rcvbuf_shows_in_the_syn_window_and_accepted_sockets_inherit_it() -> None:
    p = Pair(EF_TCP_RCVBUF=8192)
    listener = p.tcp(p.b)
    listener.bind(("", PORT))
    listener.listen(1)
    client = p.tcp(p.a)
    client.connect((B_IP, PORT))
    conn, _ = listener.accept()
    assert conn.getsockopt(rs.SOL_SOCKET, rs.SO_RCVBUF) == 16384
    (_, synack), *_ = p.tcp_sent(lambda s: bool(s.flags & SYN))
    assert synack.window < 8192 < Pair().stack.profile.tcp_rmem[1]  # half the buffer, whole MSS


def test_a_handed_over_tcp_socket_keeps_the_kernels_buffers() -> None:
    p = Pair(EF_TCP_RCVBUF=8192, EF_TCP=0)
    assert p.tcp(p.b).getsockopt(rs.SOL_SOCKET, rs.SO_RCVBUF) == 131072


# --- EF_MCAST_SEND / EF_MCAST_RECV ---------------------------------------------------------------
def member(p: Pair) -> rs.socket:
    s = p.udp(p.b, PORT)
    s.setsockopt(rs.IPPROTO_IP, IP_ADD_MEMBERSHIP, rs.inet_aton(GROUP) + rs.inet_aton(B_IP))
    s.setblocking(False)
    return s


@pytest.mark.parametrize(
    ("options", "loop", "delivered"),
    [
        ({}, 1, True),  # unset: Linux (IP_MULTICAST_LOOP)
        ({}, 0, False),
        ({"EF_MCAST_SEND": 0}, 1, False),  # none
        ({"EF_MCAST_SEND": 1}, 1, True),  # local: the same stack, per IP_MULTICAST_LOOP
        ({"EF_MCAST_SEND": 1}, 0, False),
        ({"EF_MCAST_SEND": 2}, 1, False),  # ext: other stacks only
        ({"EF_MCAST_SEND": 3}, 1, True),  # all
    ],
)
def test_mcast_send_loops_back_to_the_same_stack(
    options: dict[str, object], loop: int, delivered: bool
) -> None:
    p = Pair(**options)
    receiver = member(p)
    sender = p.udp(p.b)
    sender.setsockopt(rs.IPPROTO_IP, IP_MULTICAST_LOOP, loop)
    sender.setsockopt(rs.IPPROTO_IP, 32, rs.inet_aton(B_IP))  # IP_MULTICAST_IF
    sender.sendto(b"hello", (GROUP, PORT))
    p.run(0.1)
    try:
        got = receiver.recv(100)
    except BlockingIOError:
        got = None
    assert got == (b"hello" if delivered else None)
    suppressed = p.stack.onload.counters["mcast_send_loop_suppressed"]
    assert suppressed == (1 if loop and not delivered else 0)


def test_a_handed_over_sender_loops_back_as_linux() -> None:
    p = Pair(EF_MCAST_SEND=0, EF_MAX_ENDPOINTS=4)
    receiver = member(p)
    fillers = [p.udp(p.b) for _ in range(3)]
    sender = p.udp(p.b)  # the fifth socket: handed over (EF_NO_FAIL=1)
    assert not sender._file.core.onload.accelerated  # type: ignore[attr-defined]
    sender.setsockopt(rs.IPPROTO_IP, 32, rs.inet_aton(B_IP))
    sender.sendto(b"kernel", (GROUP, PORT))
    p.run(0.1)
    assert receiver.recv(100) == b"kernel" and len(fillers) == 3


@pytest.mark.parametrize("recv", [1, 0])
def test_mcast_recv_0_receives_through_the_kernel_counted(recv: int) -> None:
    """EF_MCAST_RECV=0: "multicast receives are not accelerated, but the socket
    continues to be managed by Onload": no multicast filter, the datagram counted as
    kernel-path traffic, and still delivered."""
    p = Pair(EF_MCAST_RECV=recv)
    receiver = member(p)
    assert receiver._file.core.onload.accelerated  # type: ignore[attr-defined]
    sender = p.udp(p.a)
    sender.setsockopt(rs.IPPROTO_IP, 32, rs.inet_aton(A_IP))  # IP_MULTICAST_IF
    sender.sendto(b"group", (GROUP, PORT))
    p.run(0.1)
    assert receiver.recv(100) == b"group"
    counters = p.stack.onload.counters
    kernel = 0 if recv else 1
    assert counters["no_match_pass_to_kernel_udp"] == kernel
    assert counters["udp_mcast_kernel_rx"] == kernel
    assert counters["rx_accelerated"] == 1 - kernel
    assert len(p.stack.onload.filters) == 2 + (1 - kernel)  # wild on eth0, eth1 (+ the group)


# --- EF_INTERFACE_WHITELIST / BLACKLIST -------------------------------------------------------------
@pytest.mark.parametrize(
    "options",
    [{"EF_INTERFACE_BLACKLIST": "eth1"}, {"EF_INTERFACE_WHITELIST": "eth0"}],
    ids=["black", "white"],
)
def test_sockets_bound_on_an_excluded_interface_are_handed_over(options: dict[str, object]) -> None:
    p = Pair(**options)
    s = p.udp(p.b, PORT, addr=B2_IP)
    listener = p.tcp(p.b)
    listener.bind((B2_IP, PORT))
    listener.listen(1)
    ok = p.udp(p.b, PORT, addr=B_IP)
    records = [x._file.core.onload for x in (s, listener, ok)]  # type: ignore[attr-defined]
    assert [r.accelerated for r in records] == [False, False, True]
    assert "not on an accelerated interface" in records[0].reason
    counters = p.stack.onload.counters
    assert (counters["udp_handover_bind"], counters["tcp_handover_listen"]) == (1, 1)
    # the kernel path serves them: a connection to the handed-over listener works
    p.a_stack.add_route("10.0.1.0", 24, "eth0")
    client = p.tcp(p.a)
    client.connect((B2_IP, PORT))
    conn, _ = listener.accept()
    client.sendall(b"through the kernel")
    assert conn.recv(100) == b"through the kernel"
    assert counters["no_match_pass_to_kernel_tcp"] > 0


def test_without_lists_every_interface_is_accelerated() -> None:
    p = Pair()
    s = p.udp(p.b, PORT, addr=B2_IP)
    assert s._file.core.onload.accelerated  # type: ignore[attr-defined]


# --- EF_NAME -----------------------------------------------------------------------------------------
def test_ef_name_is_the_name_stackdump_shows() -> None:
    stack = Stack(config=Config.from_env({"EF_NAME": "trading"}))
    assert render_netif(stack).splitlines()[0] == "ci_netif_dump_to_logger: stack=0 name=trading"


# --- TCP timers on the wire ----------------------------------------------------------------------------
def syn_times(options: dict[str, object], seconds: float) -> list[float]:
    p = Pair(**options)
    s = p.tcp(p.b)
    s.setblocking(False)
    with pytest.raises(BlockingIOError):
        s.connect(("10.0.0.9", PORT))  # nobody answers
    p.run(seconds)
    return [round(t, 6) for t, _ in p.tcp_sent(lambda seg: bool(seg.flags & SYN))]


def gaps(times: list[float]) -> list[float]:
    return [round(b - a, 3) for a, b in itertools.pairwise(times)]


def test_rfc_rto_initial_sets_the_first_syn_retransmission() -> None:
    assert gaps(syn_times({}, 2.5))[:1] == [1.0]
    assert gaps(syn_times({"EF_RFC_RTO_INITIAL": 300}, 2.5))[:3] == [0.3, 0.6, 1.2]


def test_rfc_rto_max_caps_the_backoff() -> None:
    times = syn_times({"EF_RFC_RTO_INITIAL": 500, "EF_RFC_RTO_MAX": 1500}, 6.0)
    assert gaps(times)[:5] == [0.5, 1.0, 1.5, 1.5, 1.5]


@pytest.mark.parametrize(("rto_min", "low", "high"), [(None, 0.2, 0.25), (600, 0.6, 0.65)])
def test_rfc_rto_min_bounds_a_data_retransmission(rto_min: int | None, low: float, high: float) -> None:
    """The RTT is 20 ms, so the RTO is its floor: the first retransmission of data the
    peer never acknowledges comes EF_RFC_RTO_MIN after the data (plus the RTT, as
    Linux adds the floor to the smoothed RTT)."""
    p = Pair(**({} if rto_min is None else {"EF_RFC_RTO_MIN": rto_min}))
    client, _server = p.connected()
    p.a_stack.receive = lambda frame, now, interface=None: None  # type: ignore[method-assign]
    client.send(b"lost")
    p.run(1.0)
    data = p.tcp_sent(lambda seg: len(seg.payload) > 0)
    assert len(data) >= 2
    assert low <= data[1][0] - data[0][0] <= high


@pytest.mark.parametrize(("peer_closes_after", "answer"), [(1.5, "A"), (2.5, "R")])
def test_tcp_fin_timeout_ends_an_orphaned_fin_wait_2(peer_closes_after: float, answer: str) -> None:
    """EF_TCP_FIN_TIMEOUT=2: B closes, A acknowledges but stays open, and B's orphaned
    connection waits in FIN-WAIT-2 for 2 s. A's FIN within them is acknowledged (B goes
    to TIME-WAIT); after them B has forgotten the connection and answers with a RST."""
    p = Pair(EF_TCP_FIN_TIMEOUT=2)
    client, server = p.connected()
    client.close()
    closed_at = p.sim.now()
    p.run(peer_closes_after)
    server.close()
    p.run(0.1)
    fin = [(t, s) for t, s in p.tcp_sent() if t > closed_at + peer_closes_after - 0.01]
    assert fin, "B answered A's FIN"
    flags = fin[0][1].flags
    assert flags & (RST | ACK | FIN) == (RST if answer == "R" else ACK)


@pytest.mark.parametrize(("msl", "time_wait"), [(1, 2.0), (3, 6.0)])
def test_tcp_tconst_msl_sets_time_wait_to_two_msl(msl: int, time_wait: float) -> None:
    p = Pair(EF_TCP_TCONST_MSL=msl)
    client, server = p.connected()
    client.close()
    p.run(0.1)
    server.close()
    p.run(0.1)
    start = p.sim.now()
    conns = p.stack.tcp.connections
    assert [c.state.name for c in conns.values()] == ["TIME_WAIT"]
    p.b.driver.wait_until(lambda: not conns, time_wait + 1.0)
    assert time_wait - 0.25 <= p.sim.now() - start <= time_wait + 0.05
