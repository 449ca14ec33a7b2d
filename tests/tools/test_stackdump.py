"""The stackdump formatters on an in-process stack (tests.tools.scene): shapes and names
of onload_stackdump (shared/onload/STACKDUMP.md)."""

from __future__ import annotations

import re

import pytest

from refstack import introspect
from refstack.stack import Stack
from refstack.tools import stackdump as sd
from tests.tools.scene import Scene, make_scene


@pytest.fixture
def scene() -> Scene:
    return make_scene()


def ids(stack: Stack) -> dict[tuple[str, str, str], int]:
    """(proto, local, remote) -> socket id, to name sockets in expected text."""
    return {
        (v.proto, introspect.fmt_addr(v.local), introspect.fmt_addr(v.remote)): v.id
        for v in introspect.sockets(stack)
    }


def test_netstat_lists_every_socket_with_its_queues(scene: Scene) -> None:
    port = scene.client_port
    assert sd.render_netstat(scene.net.b.stack).splitlines() == [
        "TCP 0 128 0.0.0.0:8080 0.0.0.0:0 LISTEN",  # listener: accept queue, backlog
        f"TCP 3000 0 10.0.0.2:8080 10.0.0.1:{port} ESTABLISHED",  # 3000 bytes received, unread
        "UDP 0 0 0.0.0.0:5000 0.0.0.0:0",
        "UDP 0 0 10.0.0.2:5001 10.0.0.1:7000",
        "UDP 0 0 0.0.0.0:6000 0.0.0.0:0",
    ]
    assert sd.render_netstat(scene.net.a.stack) == f"TCP 0 0 10.0.0.1:{port} 10.0.0.2:8080 ESTABLISHED"


def test_socket_dump_heads_and_details(scene: Scene) -> None:
    stack = scene.net.b.stack
    text = sd.render_sockets(stack)
    heads = [line for line in text.splitlines() if not line.startswith(" ")]
    n = ids(stack)
    port = scene.client_port
    assert heads == [
        f"TCP b:{n['TCP', '0.0.0.0:8080', '0.0.0.0:0']} lcl=0.0.0.0:8080 rmt=0.0.0.0:0 LISTEN",
        f"TCP b:{n['TCP', '10.0.0.2:8080', f'10.0.0.1:{port}']} lcl=10.0.0.2:8080"
        f" rmt=10.0.0.1:{port} ESTABLISHED",
        f"UDP b:{n['UDP', '0.0.0.0:5000', '0.0.0.0:0']} lcl=0.0.0.0:5000 rmt=0.0.0.0:0 UDP",
        f"UDP b:{n['UDP', '10.0.0.2:5001', '10.0.0.1:7000']} lcl=10.0.0.2:5001 rmt=10.0.0.1:7000 UDP",
        f"UDP b:{n['UDP', '0.0.0.0:6000', '0.0.0.0:0']} lcl=0.0.0.0:6000 rmt=0.0.0.0:0 UDP",
    ]
    assert "  listenq: max=128 n=0\n  acceptq: max=128 n=0" in text
    assert re.search(r"\n  snd: una-nxt-max=[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8} isn=[0-9a-f]{8}\n", text)
    assert re.search(r"\n  rcv: isn=[0-9a-f]{8} usr=3000 rob_bytes=0 rob_pieces=0 rcvbuf=\d+ fin=0\n", text)
    assert "tcpflags: TS SACK WSCALE passive=1" in text  # the accepted connection
    assert "\n  eff_mss=1448 smss=1460 amss=1460 wscl s=10 r=10\n" in text
    assert "\n  mcast: member of 239.1.2.3 on eth0" in text


def test_socket_timers_show_an_armed_retransmission(scene: Scene) -> None:
    scene.client.send(b"y" * 100)  # unacknowledged: the RTO timer runs
    text = sd.render_sockets(scene.net.a.stack)
    assert re.search(r"\n  timers: rto\(\d+ms\[\d+\.\d{6}\]\)", text)
    assert "send+inflight=100" in text


def test_netif_block(scene: Scene) -> None:
    process = sd.ProcessInfo(4242, ["python", "app.py"], created=1000.0)
    lines = sd.render_netif(scene.net.b.stack, stack_id=3, process=process, wall=1012.0).splitlines()
    assert lines[0] == "ci_netif_dump_to_logger: stack=3 name=b"
    assert lines[1] == f"  ver={sd.VERSION} pid=4242"
    assert re.fullmatch(r"  creation_time=\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(delta=12secs\)", lines[2])
    assert "  sock_bufs: max=8192 n_allocated=5 tcp=2 udp=3" in lines
    assert "ci_netif_dump_vi: stack=3 intf=1 dev=eth0 hw=none addr=10.0.0.2/24 mtu=1500" in lines
    assert "  rxq: cap=512 (EF_RXQ_SIZE)" in lines
    assert "route: 10.0.0.0/24 dev eth0" in lines


def test_stats_banner_then_every_counter_sorted(scene: Scene) -> None:
    stack = scene.net.b.stack
    lines = sd.render_stats(stack, stack_id=2).splitlines()
    assert lines[0] == "-------------------- ci_netif_stats: 2 ---------------------"
    expected = [f"{k}: {v}" for k, v in sorted(stack.counters.items())]
    expected += [f"{k}: {v}" for k, v in sorted(stack.onload.counters.items())]
    assert lines[1:] == expected
    assert "tcp_established: 1" in lines


def test_opts_are_the_config_description(scene: Scene) -> None:
    text = sd.render_opts(scene.net.b.stack)
    assert text.splitlines()[1:] == scene.net.b.stack.config.describe().splitlines()
    assert "EF_MAX_ENDPOINTS: 8192" in text


def test_filters_say_they_are_derived(scene: Scene) -> None:
    text = sd.render_filters(scene.net.b.stack)
    lines = text.splitlines()
    assert lines[0].startswith("# The filters Onload would install for these sockets")
    assert "installed follows, as a cross-check" in lines[1]
    assert lines[2] == (
        "oof_manager_dump: hwports up=1 down=0 unavailable=0 local_addr_n=1"
        " n_filters=5 max=4096 (EF_MAX_FILTERS)"
    )
    n = ids(scene.net.b.stack)
    listener = n["TCP", "0.0.0.0:8080", "0.0.0.0:0"]
    accepted = n["TCP", "10.0.0.2:8080", f"10.0.0.1:{scene.client_port}"]
    member = n["UDP", "0.0.0.0:6000", "0.0.0.0:0"]
    assert f"  FILTER 10.0.0.2:8080 wild hwports=eth0 stack=b sockets=b:{listener},b:{accepted}" in lines
    assert f"  mcast filter: maddr=239.1.2.3:6000 stack=b hwports=eth0 sockets=b:{member}" in lines
    assert "ACCELERATED (sharing wild)" in text
    assert "oof_local_port_dump: TCP:8080 n_refs=2" in lines


def test_lots_has_every_section_in_onload_order(scene: Scene) -> None:
    process = sd.ProcessInfo(7, ["app"], created=0.0, env={"EF_NO_FAIL": "0", "HOME": "/root"})
    text = sd.render(scene.net.b.stack, "lots", stack_id=1, process=process, wall=5.0)
    order = [
        "ci_netif_dump_to_logger: stack=1 name=b",
        "ci_netif_dump_vi: stack=1",
        "---- sockets ----",
        "TCP b:",
        "---- netstat ----",
        "ci_netif_stats: 1",
        "# The filters Onload would install",
        "oof_manager_dump",
        "---- config opts ----",
        "---- stack time ----",
        "---- process env ----",
        "env: EF_NO_FAIL=0",
    ]
    positions = [text.index(marker) for marker in order]
    assert positions == sorted(positions)
    assert "HOME" not in text  # only EF_* and REFSTACK_* variables


def test_every_stack_command_renders(scene: Scene) -> None:
    for what in sd.STACK_COMMANDS:
        assert sd.render(scene.net.a.stack, what).strip()
    with pytest.raises(ValueError, match="unknown stackdump command 'lotz'"):
        sd.render(scene.net.a.stack, "lotz")


def test_stacks_and_processes_tables() -> None:
    rows = [
        sd.StackRow(0, "a", 100, ["python", "x.py"]),
        sd.StackRow(1, "b", 100, ["python", "x.py"]),
        sd.StackRow(2, "c", 50, ["app"]),
    ]
    assert sd.render_stacks(rows) == "\n".join(
        [
            "#stack-id stack-name      pids",
            "0         a                100",
            "1         b                100",
            "2         c                50",
        ]
    )
    assert sd.render_processes(rows) == "\n".join(
        [
            "#pid      stack-id cmdline",
            "50        2        app",
            "100       0        python x.py",
            "100       1        python x.py",
        ]
    )


def test_timers_list_the_stack_clock_and_armed_timers(scene: Scene) -> None:
    scene.client.send(b"z")
    text = sd.render_timers(scene.net.a.stack)
    assert text.splitlines()[1].startswith("time: now=0.759000 next_deadline=")
    assert re.search(r"\n  tcp-rtx +at \d+\.\d{6} \(in \d+ms\)", text)


def test_installed_table_agrees_with_the_derived_filters(scene: Scene) -> None:
    """The filter table refstack.nic installed holds the filters derived from the
    sockets (the derived view counts one per socket and address, as Onload does)."""
    stack = scene.net.b.stack
    text = sd.render_filters(stack)
    installed = next(line for line in text.splitlines() if line.startswith("installed: "))
    assert f"n_filters={len(stack.onload.filters)}" in installed
    derived = [line for line in text.splitlines() if line.startswith(("  FILTER", "  mcast filter"))]
    assert len(derived) == len(stack.onload.filters)
