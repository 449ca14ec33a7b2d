"""``refstack stackdump``: a stack's state, sockets, counters and options, shaped like onload_stackdump.

Each formatter takes an in-process :class:`~refstack.stack.Stack` and returns text;
the control endpoint (:mod:`refstack.control`) calls :func:`render` in the stack's
own process, holding the stack lock, and the CLI prints what comes back.  Shapes and
names follow ``shared/onload/STACKDUMP.md`` (``netif_debug.c``, ``waitable.c``,
``tcp_debug.c``, ``stats_dump.h``, ``oof_filters.c``):

- ``stacks``: ``#stack-id stack-name      pids`` then ``%-9d %-16s pid[,pid...]``;
- ``processes``: ``#pid      stack-id cmdline``;
- ``netif``: ``ci_netif_dump_to_logger: stack=N name=NAME`` and indented
  ``key=value`` lines, then ``ci_netif_dump_vi: stack=N intf=I dev=NAME ...`` per
  interface;
- a socket: ``TCP <stack>:<id> lcl=IP:PORT rmt=IP:PORT STATE`` then its queues,
  windows, congestion state and timers as ``tcp_debug.c`` prints them;
- ``netstat``: ``TCP 0 0 0.0.0.0:8080 0.0.0.0:0 LISTEN`` (proto, recv-q, send-q in
  bytes, local, remote, state);
- ``stats``: ``-------------------- ci_netif_stats: N ---------------------`` then
  ``name: value`` per counter;
- ``filters``: the filters Onload *would* install (:mod:`refstack.tools.filters`),
  in ``oof_manager_dump`` / ``oof_local_port_dump`` form, under a header saying they
  are derived;
- ``opts``: the EF_* options (:meth:`refstack.config.Config.describe`);
- ``lots``: everything above for one stack, plus timers and the process environment.

Sockets are named ``<stack name>:<id>`` (Onload accepts a stack name or number
there); ids come from :func:`refstack.introspect.socket_id`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .. import introspect
from ..introspect import SocketView, fmt_addr
from ..udp import UdpEndpoint
from .filters import Filter, derive_filters

if TYPE_CHECKING:
    from ..stack import Stack
    from ..tcp.endpoint import TcpEndpoint

VERSION = "refstack-0.1.0"
SEQ = 0xFFFFFFFF


@dataclass(frozen=True)
class ProcessInfo:
    """The process a stack lives in, as ``lots`` and ``env`` print it."""

    pid: int
    cmdline: Sequence[str]
    created: float  # wall-clock time the stack started being served
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StackRow:
    """One line of ``stacks`` / ``processes``: a stack and the process holding it."""

    stack_id: int
    name: str
    pid: int
    cmdline: Sequence[str]


def _banner(title: str) -> str:
    return f"{'-' * 20} {title} {'-' * 21}"


# --- misc commands: all stacks ------------------------------------------------------------------
def render_stacks(rows: Sequence[StackRow]) -> str:
    """``onload_stackdump stacks``: one row per stack with the pids holding it."""
    pids: dict[tuple[int, str], list[int]] = {}
    for row in rows:
        pids.setdefault((row.stack_id, row.name), []).append(row.pid)
    lines = ["#stack-id stack-name      pids"]
    for (stack_id, name), holders in sorted(pids.items()):
        lines.append(f"{stack_id:<9d} {name or '-':<16s} {','.join(map(str, sorted(holders)))}")
    return "\n".join(lines)


def render_processes(rows: Sequence[StackRow]) -> str:
    """``onload_stackdump processes``: ``#pid      stack-id cmdline``."""
    lines = ["#pid      stack-id cmdline"]
    for row in sorted(rows, key=lambda r: (r.pid, r.stack_id)):
        lines.append(f"{row.pid:<9d} {row.stack_id:<8d} {' '.join(row.cmdline)}")
    return "\n".join(lines)


# --- per-stack commands --------------------------------------------------------------------------
def render_netif(stack: Stack, *, stack_id: int = 0, process: ProcessInfo | None = None,
                 wall: float | None = None) -> str:  # fmt: skip
    """``netif``: the core per-stack state, then one block per interface."""
    cfg = stack.config
    views = introspect.sockets(stack)
    lines = [f"ci_netif_dump_to_logger: stack={stack_id} name={stack.name}"]
    if process is not None:
        now = wall if wall is not None else time.time()
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(process.created))
        lines.append(f"  ver={VERSION} pid={process.pid}")
        lines.append(f"  creation_time={created} (delta={now - process.created:.0f}secs)")
    else:
        lines.append(f"  ver={VERSION}")
    deadline = stack.next_deadline()
    timers = len(introspect.armed_timers(stack))
    lines.append(f"  time: netif={stack.now:.6f} next_deadline={_t(deadline)} timers={timers}")
    tcp = sum(1 for v in views if v.proto == "TCP")
    lines.append(
        f"  sock_bufs: max={cfg.max_endpoints} n_allocated={len(views)} tcp={tcp} udp={len(views) - tcp}"
    )
    lines += render_pkt_bufs(stack)
    r = introspect.reassembly(stack)
    lines.append(
        f"  reassembly: queues={r.queues} mem={r.memory} high_thresh={r.high_thresh}"
        f" low_thresh={r.low_thresh} timeout={r.timeout:g}s (kernel path)"
    )
    lines.append(f"  drops: recent={len(stack.drops)}")
    for at, reason in list(stack.drops)[-5:]:
        lines.append(f"    {at:.6f} {reason}")
    arp = introspect.arp_entries(stack)
    for intf, iface in enumerate(stack.interfaces.values()):
        hw = iface.mac.hex(":") if iface.mac is not None else "none"
        lines.append(
            f"ci_netif_dump_vi: stack={stack_id} intf={intf} dev={iface.name} hw={hw}"
            f" addr={fmt_addr((iface.address, 0))[:-2]}/{iface.prefix_len} mtu={iface.mtu}"
        )
        if iface.name == "lo":
            lines.append("  loopback: not accelerated (Onload hands it to the kernel)")
            continue
        lines.append(f"  rxq: cap={cfg.effective_rxq_size} (EF_RXQ_SIZE)")
        lines.append(f"  txq: cap={cfg.effective_txq_size} level={len(iface.tx)} (EF_TXQ_SIZE)")
        for addr, mac in arp.get(iface.name, []):
            lines.append(f"  arp: {addr} at {mac}")
    for route in stack.routes:
        lines.append(f"route: {route}")
    return "\n".join(lines)


def render_socket(stack: Stack, view: SocketView) -> str:
    """One socket: ``TCP b:3 lcl=... rmt=... STATE`` and its details."""
    head = (
        f"{view.proto} {stack.name}:{view.id} lcl={fmt_addr(view.local)}"
        f" rmt={fmt_addr(view.remote)} {view.state}"
    )
    ep = view.endpoint
    if isinstance(ep, UdpEndpoint):
        return "\n".join([head, *_udp_lines(stack, ep)])
    return "\n".join([head, *_tcp_lines(view, ep)])


def _tcp_lines(view: SocketView, ep: TcpEndpoint) -> list[str]:
    if view.state == "LISTEN":
        return [
            f"  listenq: max={ep.backlog} n={len(ep.syn_queue)}",
            f"  acceptq: max={ep.backlog} n={len(ep.accept_queue)}",
        ]
    info = ep.tcp_info()
    flags = [name for name, on in (("TS", ep.ts_ok), ("SACK", ep.sack_ok), ("WSCALE", ep.ws_ok)) if on]
    mss = info["tcpi_snd_mss"]
    cong = "RECOVERY" if ep.cc.in_recovery else "OPEN"
    lines = [
        f"  tcpflags: {' '.join(flags) or '-'} passive={int(view.passive)} nodelay={int(ep.nodelay)}",
        f"  snd: una-nxt-max={ep.snd_una & SEQ:08x}-{ep.snd_nxt & SEQ:08x}-{ep.snd_max & SEQ:08x}"
        f" isn={ep.iss & SEQ:08x}",
        f"  snd: send+inflight={len(ep.snd_buf)} inflight={ep.snd_max - ep.snd_una} wnd={ep.snd_wnd}"
        f" sndbuf={ep.sndbuf} fin_queued={int(ep.fin_queued)}",
        f"  snd: cwnd={ep.cc.cwnd} ssthresh={_ssthresh(ep.cc.ssthresh)} {cong}",
        f"  rcv: nxt-max={ep.rcv_nxt & SEQ:08x}-{ep.rcv_adv & SEQ:08x} wnd adv={ep.rcv_adv - ep.rcv_nxt}"
        f" cur={info['tcpi_rcv_space']}",
        f"  rcv: isn={ep.irs & SEQ:08x} usr={len(ep.rcv_buf)} rob_bytes={ep.ooo.bytes_queued}"
        f" rob_pieces={len(ep.ooo)} rcvbuf={ep.rcvbuf} fin={int(ep.fin_received)}",
        f"  eff_mss={mss} smss={ep.peer_mss} amss={ep.mss_advertised}"
        f" wscl s={ep.snd_wscale} r={ep.rcv_wscale}",
        f"  srtt={info['tcpi_rtt'] // 1000:02d} rttvar={info['tcpi_rttvar'] // 1000:03d}"
        f" rto={info['tcpi_rto'] // 1000}",
        f"  curr_retrans={ep.retransmits} total_retrans={ep.total_retrans} dupacks={ep.dupacks}"
        f" error={ep.error}",
    ]
    now = ep.layer.stack.now
    timers = " ".join(
        f"{name}({(at - now) * 1000:.0f}ms[{at:.6f}])" for name, at in introspect.tcp_timers(ep).items()
    )
    lines.append(f"  timers: {timers}")
    return lines


def _ssthresh(value: int) -> str:
    return "inf" if value >= 0x7FFFFFFF else str(value)


def _udp_lines(stack: Stack, ep: UdpEndpoint) -> list[str]:
    lines = [
        f"  rcv: q_bytes={ep.rx_bytes} q_pkts={len(ep.rx)} rcvbuf={ep.rcvbuf} error={ep.error}",
        f"  snd: sndbuf={ep.sndbuf} ttl={ep.ttl if ep.ttl is not None else '-'} tos={ep.tos}",
        f"  mcast: ttl={ep.mc_ttl} loop={int(ep.mc_loop)} if={fmt_addr((ep.mc_if, 0))[:-2]}"
        f" all={int(ep.mc_all)}",
    ]
    for iface, group in introspect.memberships(stack, ep):
        lines.append(f"  mcast: member of {group} on {iface}")
    return lines


def render_pkt_bufs(stack: Stack) -> list[str]:
    """The packet-buffer pool as ``ci_netif_dump`` prints it (netif_debug.c): the whole
    pool, then the receive path (buffers held by payload queued on sockets; rx_ring
    counts the frames in the RX ring since the last poll, already handled), then the
    transmit path (frames in the TX ring and the overflow queue)."""
    model = stack.onload
    pool = model.buffers
    rx, tx = model.rx_held(), model.tx_held()
    pool.set_rx(rx)
    pool.set_tx(tx)
    ring = min(tx, model.txq_size)
    pressure = model.counters["memory_pressure_pool_used"]
    return [
        f"  pkt_bufs: max={pool.max_packets} alloc={pool.allocated} free={pool.free} async=0",
        f"  pkt_bufs: rx={rx} rx_ring={model.rx_fill} rx_queued={rx} pressure_pool={pressure}"
        f" max_rx={pool.max_rx} high_water={pool.rx_high_water}",
        f"  pkt_bufs: tx={tx} tx_ring={ring} tx_oflow={tx - ring} max_tx={pool.max_tx}"
        f" high_water={pool.tx_high_water}",
    ]


def render_sockets(stack: Stack) -> str:
    return "\n".join(render_socket(stack, v) for v in introspect.sockets(stack))


def render_dump(stack: Stack, **kw: object) -> str:
    """``dump``: the netif state then every socket."""
    return "\n".join(filter(None, [render_netif(stack, **kw), render_sockets(stack)]))  # type: ignore[arg-type]


def render_netstat(stack: Stack) -> str:
    """``netstat``: proto, recv-q, send-q (bytes), local, remote, state."""
    lines = []
    for v in introspect.sockets(stack):
        ep = v.endpoint
        if isinstance(ep, UdpEndpoint):
            recv_q, send_q, state = ep.rx_bytes, 0, ""
        else:
            recv_q, send_q, state = len(ep.rcv_buf), len(ep.snd_buf), v.state
            if v.state == "LISTEN":
                recv_q, send_q = len(ep.accept_queue), ep.backlog  # as Linux's ss shows listeners
        lines.append(f"{v.proto} {recv_q} {send_q} {fmt_addr(v.local)} {fmt_addr(v.remote)} {state}".rstrip())
    return "\n".join(lines)


def render_stats(stack: Stack, *, stack_id: int = 0) -> str:
    """``stats``: the banner then ``name: value`` for every counter."""
    lines = [f"{'-' * 20} ci_netif_stats: {stack_id} {'-' * 21}"]
    lines += [f"{name}: {value}" for name, value in sorted(stack.counters.items())]
    lines += [f"{name}: {value}" for name, value in sorted(stack.onload.counters.items())]
    return "\n".join(lines)


DERIVED = (
    "# The filters Onload would install for these sockets, derived from socket state\n"
    "# (FILTERS_AND_HANDOVER.md); the table refstack.nic installed follows, as a cross-check"
)


def render_installed(stack: Stack) -> list[str]:
    """The filter table the Onload model installed, endpoints, and handed-over sockets."""
    model = stack.onload
    table = model.filters
    lines = [
        f"installed: n_filters={len(table)} max={table.capacity} high_water={table.high_water}"
        f" endpoints={model.endpoints_used}/{model.max_endpoints}"
    ]
    lines += [f"  HW {f} owners={','.join(str(o) for o in sorted(owners))}" for f, owners in table]
    for record in sorted(model.sockets.values(), key=lambda r: r.owner):
        if not record.accelerated:
            proto = "TCP" if record.protocol == 6 else "UDP"
            lines.append(f"  handed over: {proto} owner {record.owner}: {record.reason}")
    return lines


def render_filters(stack: Stack, *, stack_id: int = 0) -> str:
    """``filters``: ``oof_manager_dump`` and one ``oof_local_port_dump`` per port."""
    table = derive_filters(stack)
    accelerated = [i for i in stack.interfaces.values() if i.name in table.interfaces]
    lines = [
        DERIVED,
        f"oof_manager_dump: hwports up={len(table.interfaces)} down=0 unavailable=0"
        f" local_addr_n={len(accelerated)} n_filters={len(table.filters)}"
        f" max={table.capacity} (EF_MAX_FILTERS)",
    ]
    if table.over_capacity:
        lines.append(
            f"  OVER CAPACITY: {len(table.filters)} filters > {table.capacity}; Onload would hand"
            " new sockets over (EF_NO_FAIL=1) or fail them (EF_NO_FAIL=0)"
        )
    for iface in accelerated:
        users = len({i for f in table.filters if f.interface == iface.name for i in f.sockets})
        lines.append(f"  {fmt_addr((iface.address, 0))[:-2]} dev={iface.name} active=1 sockets={users}")
    ports: dict[tuple[str, int], list[str]] = {}
    rows_by_port: dict[tuple[str, int], list[str]] = {}
    for row in table.sockets:
        v = row.socket
        assert v.local is not None
        kind = _section(row.state, v)
        rows_by_port.setdefault((v.proto, v.local[1]), []).append(
            f"    {kind}: {v.proto} {stack.name}:{v.id} lcl={fmt_addr(v.local)} rmt={fmt_addr(v.remote)}"
            f" {v.state}: {row.state}"
        )
    for f in table.filters:
        ports.setdefault((f.proto, f.lport), []).append(_filter_line(f, stack.name))
    for key in sorted(set(rows_by_port) | set(ports)):
        proto, port = key
        sockets = rows_by_port.get(key, [])
        lines.append(f"oof_local_port_dump: {proto}:{port} n_refs={len(sockets)}")
        lines += sockets
        lines += ports.get(key, [])
    lines += render_installed(stack)
    return "\n".join(lines)


def _section(state: str, v: SocketView) -> str:
    if "sharing" in state or "full" in state:
        return "full"
    if v.local is not None and v.local[0] != introspect.ANY:
        return "semi-wild"
    return "wild"


def _filter_line(f: Filter, stack: str) -> str:
    ids = ",".join(f"{stack}:{i}" for i in f.sockets)
    if f.kind == "mcast":
        return f"  mcast filter: maddr={f.laddr}:{f.lport} stack={stack} hwports={f.interface} sockets={ids}"
    if f.kind == "full":
        return (
            f"  FILTER {f.laddr}:{f.lport} {f.raddr}:{f.rport} full hwports={f.interface}"
            f" stack={stack} sockets={ids}"
        )
    return f"  FILTER {f.laddr}:{f.lport} {f.kind} hwports={f.interface} stack={stack} sockets={ids}"


def render_opts(stack: Stack) -> str:
    """``opts``: the stack's EF_* options as ``onload_stackdump opts`` prints them."""
    return "\n".join([_banner("config opts"), stack.config.describe()])


def render_timers(stack: Stack) -> str:
    """``timers``: the stack clock and every armed timer."""
    lines = [_banner("stack time"), f"time: now={stack.now:.6f} next_deadline={_t(stack.next_deadline())}"]
    for at, name in introspect.armed_timers(stack):
        lines.append(f"  {name:<16s} at {at:.6f} (in {(at - stack.now) * 1000:.0f}ms)")
    return "\n".join(lines)


def render_env(process: ProcessInfo | None) -> str:
    """``env``: the process's pid, command line and EF_* / REFSTACK_* environment."""
    lines = [_banner("process env")]
    if process is None:
        return "\n".join([*lines, "(in-process: no process information)"])
    lines.append(f"pid={process.pid} cmdline={' '.join(process.cmdline)}")
    for key in sorted(process.env):
        if key.startswith(("EF_", "REFSTACK_")):
            lines.append(f"env: {key}={process.env[key]}")
    return "\n".join(lines)


def render_lots(stack: Stack, *, stack_id: int = 0, process: ProcessInfo | None = None,
                wall: float | None = None) -> str:  # fmt: skip
    """``lots``: netif, sockets, netstat, stats, filters, opts, timers and env."""
    parts = [
        render_netif(stack, stack_id=stack_id, process=process, wall=wall),
        _banner("sockets"),
        render_sockets(stack),
        _banner("netstat"),
        render_netstat(stack),
        render_stats(stack, stack_id=stack_id),
        _banner("filters"),
        render_filters(stack, stack_id=stack_id),
        render_opts(stack),
        render_timers(stack),
        render_env(process),
    ]
    return "\n".join(p for p in parts if p)


def _t(value: float | None) -> str:
    return "-" if value is None else f"{value:.6f}"


Renderer = Callable[..., str]

STACK_COMMANDS: dict[str, tuple[str, Renderer]] = {
    "lots": ("dump state, sockets, stats, filters, opts, timers and env", render_lots),
    "dump": ("show core state of stack and sockets", render_dump),
    "netif": ("show core per-stack state", render_netif),
    "netstat": ("show netstat like output for sockets", lambda s, **_: render_netstat(s)),
    "stats": ("show stack statistics", lambda s, stack_id=0, **_: render_stats(s, stack_id=stack_id)),
    "filters": (
        "show the hardware filters Onload would install (derived)",
        lambda s, stack_id=0, **_: render_filters(s, stack_id=stack_id),
    ),
    "opts": ("show configuration options", lambda s, **_: render_opts(s)),
    "timers": ("show stack time and timers", lambda s, **_: render_timers(s)),
    "env": ("show the environment of the stack's process", lambda s, process=None, **_: render_env(process)),
}
"""Per-stack commands: name -> (description, renderer)."""

MISC_COMMANDS: dict[str, str] = {
    "stacks": "list stacks and the processes holding them (default)",
    "processes": "list processes and the stacks they hold",
}


def render(stack: Stack, what: str, *, stack_id: int = 0, process: ProcessInfo | None = None,
           wall: float | None = None) -> str:  # fmt: skip
    """The text of per-stack command ``what`` (a key of :data:`STACK_COMMANDS`)."""
    try:
        _, renderer = STACK_COMMANDS[what]
    except KeyError:
        raise ValueError(f"unknown stackdump command {what!r}") from None
    return renderer(stack, stack_id=stack_id, process=process, wall=wall)
