"""derive_filters: the hardware filters Onload would install, from socket state
(shared/onload/FILTERS_AND_HANDOVER.md, "Which filter a socket gets")."""

from __future__ import annotations

from refstack import socket as rs
from refstack.clock import VirtualClock
from refstack.config import Config
from refstack.introspect import fmt_addr, sockets
from refstack.runtime import Runtime, VirtualDriver
from refstack.simulation import Simulation
from refstack.stack import Stack
from refstack.tools.filters import FilterTable, derive_filters
from tests.tools.scene import GROUP, join, make_scene

Row = tuple[str, str, str, int, str, int, str, tuple[str, ...]]


def filters(table: FilterTable, stack: Stack) -> set[Row]:
    """Each filter with its sockets named by local->remote address, order-free."""
    names = {v.id: f"{v.proto} {fmt_addr(v.local)}->{fmt_addr(v.remote)}" for v in sockets(stack)}
    return {
        (f.kind, f.proto, f.laddr, f.lport, f.raddr, f.rport, f.interface, tuple(names[i] for i in f.sockets))
        for f in table.filters
    }


def states(table: FilterTable) -> dict[str, str]:
    return {
        f"{r.socket.proto} {fmt_addr(r.socket.local)}->{fmt_addr(r.socket.remote)}": r.state
        for r in table.sockets
    }


def lone(config: Config | None = None) -> tuple[Stack, Runtime]:
    """A stack with two interfaces and no peer (binds and listens need none)."""
    stack = Stack(name="s", seed=1, config=config)
    stack.add_interface("eth0", "10.0.0.2", 24)
    stack.add_interface("eth1", "10.1.0.2", 24)
    sim = Simulation(VirtualClock())
    sim.add(stack, "s")
    return stack, Runtime(stack, VirtualDriver(sim))


def udp(rt: Runtime, addr: tuple[str, int], *, reuse: bool = False) -> rs.socket:
    s = rs.socket(rs.AF_INET, rs.SOCK_DGRAM, runtime=rt)
    if reuse:
        s.setsockopt(rs.SOL_SOCKET, rs.SO_REUSEADDR, 1)
    s.bind(addr)
    return s


def listen(rt: Runtime, addr: tuple[str, int]) -> rs.socket:
    s = rs.socket(rs.AF_INET, rs.SOCK_STREAM, runtime=rt)
    s.bind(addr)
    s.listen(8)
    return s


def test_the_scene_server() -> None:
    scene = make_scene()
    stack = scene.net.b.stack
    table = derive_filters(stack)
    conn = f"TCP 10.0.0.2:8080->10.0.0.1:{scene.client_port}"
    assert filters(table, stack) == {
        ("wild", "TCP", "10.0.0.2", 8080, "0.0.0.0", 0, "eth0", ("TCP 0.0.0.0:8080->0.0.0.0:0", conn)),
        ("wild", "UDP", "10.0.0.2", 5000, "0.0.0.0", 0, "eth0", ("UDP 0.0.0.0:5000->0.0.0.0:0",)),
        ("full", "UDP", "10.0.0.2", 5001, "10.0.0.1", 7000, "eth0", ("UDP 10.0.0.2:5001->10.0.0.1:7000",)),
        ("wild", "UDP", "10.0.0.2", 6000, "0.0.0.0", 0, "eth0", ("UDP 0.0.0.0:6000->0.0.0.0:0",)),
        ("mcast", "UDP", GROUP, 6000, "0.0.0.0", 0, "eth0", ("UDP 0.0.0.0:6000->0.0.0.0:0",)),
    }
    assert states(table) == {
        "TCP 0.0.0.0:8080->0.0.0.0:0": "ACCELERATED (wild)",
        conn: "ACCELERATED (sharing wild)",  # accepted: shares the listener's filter
        "UDP 0.0.0.0:5000->0.0.0.0:0": "ACCELERATED (wild)",
        "UDP 10.0.0.2:5001->10.0.0.1:7000": "ACCELERATED (full)",
        "UDP 0.0.0.0:6000->0.0.0.0:0": "ACCELERATED (wild)",
    }
    assert table.interfaces == ["eth0"] and table.capacity == 4096 and not table.over_capacity


def test_an_active_open_gets_a_full_match_filter() -> None:
    scene = make_scene()
    stack = scene.net.a.stack
    port = scene.client_port
    assert filters(derive_filters(stack), stack) == {
        ("full", "TCP", "10.0.0.1", port, "10.0.0.2", 8080, "eth0", (f"TCP 10.0.0.1:{port}->10.0.0.2:8080",))
    }


def test_an_accepted_connection_needs_its_own_filter_once_the_listener_is_gone() -> None:
    scene = make_scene()
    scene.listener.close()
    stack = scene.net.b.stack
    table = derive_filters(stack)
    conn = f"TCP 10.0.0.2:8080->10.0.0.1:{scene.client_port}"
    assert states(table)[conn] == "ACCELERATED (full)"
    assert ("full", "TCP", "10.0.0.2", 8080, "10.0.0.1", scene.client_port, "eth0", (conn,)) in filters(
        table, stack
    )


def test_wild_means_one_filter_per_accelerated_address() -> None:
    stack, rt = lone()
    listen(rt, ("", 80))
    listen(rt, ("10.1.0.2", 81))  # semi-wild: its own address only
    udp(rt, ("127.0.0.1", 53))  # loopback is never accelerated
    table = derive_filters(stack)
    assert filters(table, stack) == {
        ("wild", "TCP", "10.0.0.2", 80, "0.0.0.0", 0, "eth0", ("TCP 0.0.0.0:80->0.0.0.0:0",)),
        ("wild", "TCP", "10.1.0.2", 80, "0.0.0.0", 0, "eth1", ("TCP 0.0.0.0:80->0.0.0.0:0",)),
        ("semi-wild", "TCP", "10.1.0.2", 81, "0.0.0.0", 0, "eth1", ("TCP 10.1.0.2:81->0.0.0.0:0",)),
    }
    assert states(table) == {
        "TCP 0.0.0.0:80->0.0.0.0:0": "ACCELERATED (wild)",
        "TCP 10.1.0.2:81->0.0.0.0:0": "ACCELERATED (wild)",
        "UDP 127.0.0.1:53->0.0.0.0:0": "HANDOVER (not an accelerated address)",
    }


def test_interface_lists_decide_what_is_accelerated() -> None:
    for config, expected in [
        (Config().with_options(EF_INTERFACE_BLACKLIST="eth0"), ["eth1"]),
        (Config().with_options(EF_INTERFACE_WHITELIST="eth0"), ["eth0"]),
        (Config().with_options(EF_INTERFACE_WHITELIST="eth0 eth1", EF_INTERFACE_BLACKLIST="eth1"), ["eth0"]),
    ]:
        stack, rt = lone(config)
        listen(rt, ("", 80))
        table = derive_filters(stack)
        assert table.interfaces == expected
        assert [f.interface for f in table.filters] == expected


def test_sockets_with_the_same_filter_share_one() -> None:
    stack, rt = lone()
    udp(rt, ("10.0.0.2", 5000), reuse=True)
    udp(rt, ("10.0.0.2", 5000), reuse=True)
    table = derive_filters(stack)
    assert len(table.filters) == 1 and len(table.filters[0].sockets) == 2


def test_multicast_filters_are_group_and_port() -> None:
    stack, rt = lone()
    bound_to_group = udp(rt, (GROUP, 7000))
    unjoined = udp(rt, ("239.9.9.9", 7001))
    join(bound_to_group, GROUP, "10.1.0.2")
    table = derive_filters(stack)
    assert filters(table, stack) == {
        ("mcast", "UDP", GROUP, 7000, "0.0.0.0", 0, "eth1", (f"UDP {GROUP}:7000->0.0.0.0:0",)),
    }  # a socket bound to a group address has no unicast filter
    assert states(table) == {
        f"UDP {GROUP}:7000->0.0.0.0:0": "ACCELERATED (multicast laddr)",
        "UDP 239.9.9.9:7001->0.0.0.0:0": "UNREACHABLE (need IP_ADD_MEMBERSHIP)",
    }
    assert unjoined.fileno() > 0


def test_ef_mcast_recv_0_leaves_multicast_to_the_kernel() -> None:
    stack, rt = lone(Config().with_options(EF_MCAST_RECV=0))
    wild = udp(rt, ("", 7000))
    on_group = udp(rt, (GROUP, 7001))
    join(wild, GROUP, "10.0.0.2")
    join(on_group, GROUP, "10.0.0.2")
    table = derive_filters(stack)
    assert {f.kind for f in table.filters} == {"wild"}
    assert states(table) == {
        "UDP 0.0.0.0:7000->0.0.0.0:0": "ACCELERATED (wild); KERNEL (multicast: EF_MCAST_RECV=0)",
        f"UDP {GROUP}:7001->0.0.0.0:0": "KERNEL (multicast laddr)",
    }


def test_unbound_and_merely_bound_sockets_get_no_filter() -> None:
    stack, rt = lone()
    rs.socket(rs.AF_INET, rs.SOCK_DGRAM, runtime=rt)  # never bound
    bound = rs.socket(rs.AF_INET, rs.SOCK_STREAM, runtime=rt)
    bound.bind(("", 9000))  # TCP filters come with listen() or connect()
    assert derive_filters(stack).filters == [] and derive_filters(stack).sockets == []


def test_capacity_is_ef_max_filters() -> None:
    stack, rt = lone(Config().with_options(EF_MAX_FILTERS=1))
    listen(rt, ("", 80))  # two filters: one per interface
    table = derive_filters(stack)
    assert table.capacity == 1 and table.over_capacity
