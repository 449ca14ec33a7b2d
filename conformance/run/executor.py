"""The script executor: packetdrill's semantics against any target (GRAMMAR.md §2-§6).

- Time: every event has a scripted time; relative times are anchored on the
  previous event's *actual* completion time, except that an inbound packet after an
  inbound packet is anchored on the previous *scripted* time (§2).  An event is late
  or early when ``|actual - expected| > tol`` with ``tol = max(tolerance_usecs,
  tolerance_percent x (this script time - previous script time))``; ranges widen the
  window, ``*`` is not checked.
- Inbound packets and syscalls are scheduled (the session runs until their time);
  outbound packets are sniffed from the previous event on (to catch early ones),
  with a timeout of the expected delay + 2 s.
- One socket under test at a time (§3.1): an inbound SYN or a connect() defines it.
- Blocking calls (``...`` end time) run while later events proceed and must return
  at their end time.
- At the end an RST tears the connection down, as packetdrill does.

The result is a :class:`~conformance.results.CaseResult`: the first mismatch fails
the case; a script that asks for the impossible is an error; a setting the target
cannot apply is a skip.
"""

from __future__ import annotations

import contextlib
import gc
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from scapy.layers.inet import IP, TCP

from ..results import CaseResult, FieldDiff, Mismatch, TraceEntry, Verdict
from ..script import ScriptError, parse_file
from ..script import syntax as sx
from ..target import Call, CaseConfig, InvalidSettingError, Session, Setting, Target, UnsupportedSettingError
from .fragments import match_fragment
from .igmp import match_igmp
from .options import OptionError, RunOptions, merge
from .packets import (
    Flow,
    ScriptRuntimeError,
    accepts,
    build_inbound,
    checksum_diffs,
    describe,
    ip_diffs,
    match_icmp,
    match_tcp,
    match_udp,
)
from .symbols import UnknownSymbolError, lookup

SNIFF_GRACE = 2.0  # packetdrill sniffs for the expected delay + 2 s
ELLIPSIS = object()


class _CaseFailedError(Exception):
    def __init__(self, mismatch: Mismatch) -> None:
        super().__init__(mismatch.message)
        self.mismatch = mismatch


@dataclass
class _Blocking:
    call: Call
    event: sx.SyscallEvent
    line: int
    end: float  # expected return (session seconds)
    tol: float


TCP_INFO_U8 = (
    "tcpi_state",
    "tcpi_ca_state",
    "tcpi_retransmits",
    "tcpi_probes",
    "tcpi_backoff",
    "tcpi_options",
    "_wscale",
    "_flags",
)
TCP_INFO_U32 = (
    "tcpi_rto",
    "tcpi_ato",
    "tcpi_snd_mss",
    "tcpi_rcv_mss",
    "tcpi_unacked",
    "tcpi_sacked",
    "tcpi_lost",
    "tcpi_retrans",
    "tcpi_fackets",
    "tcpi_last_data_sent",
    "tcpi_last_ack_sent",
    "tcpi_last_data_recv",
    "tcpi_last_ack_recv",
    "tcpi_pmtu",
    "tcpi_rcv_ssthresh",
    "tcpi_rtt",
    "tcpi_rttvar",
    "tcpi_snd_ssthresh",
    "tcpi_snd_cwnd",
    "tcpi_advmss",
    "tcpi_reordering",
    "tcpi_rcv_rtt",
    "tcpi_rcv_space",
    "tcpi_total_retrans",
)
TCP_STATES = {
    "TCP_ESTABLISHED": 1,
    "TCP_SYN_SENT": 2,
    "TCP_SYN_RECV": 3,
    "TCP_FIN_WAIT1": 4,
    "TCP_FIN_WAIT2": 5,
    "TCP_TIME_WAIT": 6,
    "TCP_CLOSE": 7,
    "TCP_CLOSE_WAIT": 8,
    "TCP_LAST_ACK": 9,
    "TCP_LISTEN": 10,
    "TCP_CLOSING": 11,
}


def decode_tcp_info(raw: bytes) -> dict[str, int]:
    """Linux's struct tcp_info, as far as both targets fill it (up to total_retrans)."""
    need = 8 + 4 * len(TCP_INFO_U32)
    raw = raw[:need].ljust(need, b"\0")
    u8 = struct.unpack_from("8B", raw)
    u32 = struct.unpack_from(f"={len(TCP_INFO_U32)}I", raw, 8)
    info = dict(zip(TCP_INFO_U8, u8, strict=True)) | dict(zip(TCP_INFO_U32, u32, strict=True))
    info["tcpi_snd_wscale"] = info["_wscale"] & 0x0F
    info["tcpi_rcv_wscale"] = info["_wscale"] >> 4
    return {k: v for k, v in info.items() if not k.startswith("_")}


class Executor:
    def __init__(self, script: sx.Script, session: Session, opts: RunOptions, result: CaseResult) -> None:
        self.script = script
        self.session = session
        self.opts = opts
        self.result = result
        self.flow = Flow()
        # Extension: TCP lines with explicit ports on another bench port than the
        # default flow's are connections of their own, each with its own mapping.
        self.flows: dict[int, Flow] = {}
        self.fds: dict[int, int] = {}  # script fd -> live fd
        self.sut_fd: int | None = None  # the socket under test's live fd (for code blocks)
        self.connect_fd: int | None = None  # the live fd of the last connect()
        self.blocking: list[_Blocking] = []
        self.base = 0.0  # session time of script time 0
        self.prev_script = 0.0
        self.prev_actual = 0.0
        self.prev_inbound = False

    # --- trace and mismatches ------------------------------------------------------------
    def note(
        self, kind: str, text: str, line: int = 0, packet: bytes | None = None, at: float | None = None
    ) -> None:
        t = self.session.now() if at is None else at
        self.result.trace.append(TraceEntry(t, kind, text, line, packet))

    def fail(
        self,
        node: sx.Node,
        message: str,
        *,
        expected: str | None = None,
        actual: str | None = None,
        fields: list[FieldDiff] | None = None,
    ) -> _CaseFailedError:
        return _CaseFailedError(Mismatch(node.line, node.col, message, expected, actual, fields or []))

    # --- time --------------------------------------------------------------------------
    def script_time(self, spec: sx.TimeSpec, *, inbound: bool) -> tuple[float, float]:
        """(expected start, expected end) in session seconds for this event."""
        start_off = spec.start_usecs / 1e6
        end_off = (spec.end_usecs / 1e6) if spec.end_usecs is not None else start_off
        if spec.kind is sx.TimeKind.ANY:
            return self.prev_actual, float("inf")
        if spec.is_relative:
            anchor = self.prev_script if (inbound and self.prev_inbound) else self.prev_actual
            return anchor + start_off, anchor + end_off
        return self.base + start_off, self.base + end_off

    def tolerance(self, expected: float) -> float:
        return max(
            self.opts.tolerance_usecs / 1e6,
            self.opts.tolerance_percent / 100.0 * max(0.0, expected - self.prev_script),
        )

    def check_time(self, node: sx.Node, actual: float, start: float, end: float, tol: float) -> None:
        if end == float("inf"):
            return
        if actual < start - tol or actual > end + tol:
            when = f"{start:.6f}" if start == end else f"{start:.6f}~{end:.6f}"
            raise self.fail(
                node, f"timing error: expected at {when} (+/- {tol:.6f}), happened at {actual:.6f}"
            )

    # --- run ----------------------------------------------------------------------------
    def run(self) -> None:
        # The clock starts after the init command (GRAMMAR.md §5): script time 0 is now.
        self.base = self.prev_script = self.prev_actual = self.session.now()
        for event in self.script.events:
            self.check_blocking()
            action = event.action
            inbound = isinstance(action, sx.PacketEvent) and action.direction is sx.Direction.INBOUND
            start, end = self.script_time(event.time, inbound=inbound)
            tol = self.tolerance(start)
            if isinstance(action, sx.PacketEvent) and action.direction is sx.Direction.OUTBOUND:
                actual = self.outbound(event, action, start, end, tol)
            else:
                self.session.sleep_until(start)
                actual = self.session.now()
                if not isinstance(action, (sx.ShellEvent, sx.CodeEvent)):
                    # Set-up commands and code blocks run when their time comes; only
                    # packets and system calls are held to the script's timing (a slow
                    # `sysctl` before time 0 must not fail the case).
                    self.check_time(event, actual, start, start, tol)
                if isinstance(action, sx.PacketEvent):
                    self.inbound(action)
                elif isinstance(action, sx.SyscallEvent):
                    self.syscall(event, action, start, tol)
                elif isinstance(action, sx.ShellEvent):
                    self.shell(action)
                    actual = self.session.now()  # the next relative time counts from its end
                elif isinstance(action, sx.CodeEvent):
                    self.code(action)
            self.prev_script = start
            self.prev_actual = actual if not inbound else max(actual, start)
            self.prev_inbound = inbound
        for pending in list(self.blocking):
            self.session.wait(pending.call, pending.end + pending.tol)
        self.check_blocking(final=True)

    def finish(self) -> None:
        """packetdrill's final RST, so the connections do not linger."""
        for flow in [self.flow, *self.flows.values()]:
            if flow.local_port is not None and flow.local_isn is not None:
                reset = IP(src=self.opts.remote_ip, dst=self.opts.local_ip) / TCP(
                    sport=flow.remote_port, dport=flow.local_port, flags="R", seq=flow.remote_next
                )
                self.session.inject(bytes(reset))

    def drain(self) -> None:
        """Record what the DUT sent that no line consumed, so the trace and the pcap
        show every packet (a retransmission nobody expected is worth seeing)."""
        try:
            while (got := self.session.sniff(self.session.now())) is not None:
                self.note("out", describe(got.packet), 0, got.packet, at=got.time)
        except Exception as e:  # a broken session must not hide the verdict
            self.note("note", f"could not drain the capture: {e}")

    def flow_for(self, action: sx.PacketEvent) -> Flow:
        """The connection a line belongs to: the default flow, or, for a TCP line whose
        explicit ports name another bench port, that port's own flow."""
        if action.ports is None or not isinstance(action.body, sx.TcpBody):
            return self.flow
        inbound = action.direction is sx.Direction.INBOUND
        bench, dut = (action.ports.src, action.ports.dst) if inbound else (action.ports.dst, action.ports.src)
        if bench == self.flow.remote_port or not self.flow.syn_seen:
            return self.flow
        flow = self.flows.get(bench)
        if flow is None:
            flow = self.flows[bench] = Flow(local_port=dut, remote_port=bench)
        return flow

    # --- packets ------------------------------------------------------------------------
    def inbound(self, action: sx.PacketEvent) -> None:
        packet = build_inbound(action, self.flow_for(action), self.opts)
        self.session.inject(packet)
        self.note("in", describe(packet), action.line, packet)

    def outbound(
        self, event: sx.Event, action: sx.PacketEvent, start: float, end: float, tol: float
    ) -> float:
        body = action.body
        if isinstance(body, sx.SilenceBody):
            return self.silence(action, end)
        flow = self.flow_for(action)
        deadline = end + tol + SNIFF_GRACE if end != float("inf") else self.session.now() + 600.0
        got = self.next_flow_packet(deadline, action)
        if got is None:
            raise self.fail(action, "expected an outbound packet, none arrived", expected=_render(action))
        when, packet = got
        self.check_time(event, when, start, end, tol)
        segments = [packet]
        info = action.ip_info
        if info is not None and info.is_fragment:
            diffs = match_fragment(action, packet, flow.ip_ids)
        elif isinstance(body, sx.TcpBody):
            if TCP not in IP(packet):
                raise self.fail(
                    action,
                    "expected TCP, got another protocol",
                    expected=_render(action),
                    actual=describe(packet),
                )
            have = len(bytes(IP(packet)[TCP].payload))
            while not self.opts.strict_segments and have < body.seq_len:
                more = self.next_flow_packet(self.session.now() + tol, action)
                if more is None:
                    break
                segments.append(more[1])
                have += len(bytes(IP(more[1])[TCP].payload))
            diffs = match_tcp(body, segments, flow, self.opts, action.ip_info)
        elif isinstance(body, sx.UdpBody):
            diffs = match_udp(body, packet, action.ports)
        elif isinstance(body, sx.IcmpBody):
            diffs = match_icmp(body, packet)
        elif isinstance(body, sx.IgmpBody):
            diffs = match_igmp(body, packet)
        else:
            raise ScriptRuntimeError(f"outbound {type(body).__name__} packets are not supported")
        diffs += [d for d in ip_diffs(action, packet, flow) if d not in diffs]
        for segment in segments:
            diffs += checksum_diffs(segment)
        if diffs:
            raise self.fail(
                action,
                "outbound packet differs: " + ", ".join(d.name for d in diffs),
                expected=_render(action),
                actual=describe(packet),
                fields=diffs,
            )
        return when

    def silence(self, action: sx.PacketEvent, end: float) -> float:
        """``> none``: nothing may leave the DUT until ``end`` (no tolerance added, so a
        packet due just after the window is not caught by mistake)."""
        if end == float("inf"):
            raise ScriptRuntimeError("'> none' needs a time that ends: '*' never does")
        got = self.session.sniff(end)
        if got is not None:
            self.note("out", describe(got.packet), 0, got.packet, at=got.time)
            raise self.fail(
                action,
                f"expected no packet until {end:.6f}, one left at {got.time:.6f}",
                expected="none",
                actual=describe(got.packet),
            )
        self.session.sleep_until(end)
        return self.session.now()

    def next_flow_packet(self, deadline: float, action: sx.PacketEvent) -> tuple[float, bytes] | None:
        while True:
            got = self.session.sniff(deadline)
            if got is None:
                return None
            self.note("out", describe(got.packet), 0, got.packet, at=got.time)
            if accepts(got.packet, action, self.flow_for(action), self.opts):
                return got.time, got.packet

    # --- syscalls -----------------------------------------------------------------------
    def value(self, expr: sx.Expr) -> object:
        if isinstance(expr, sx.IntExpr):
            return expr.value
        if isinstance(expr, sx.SymbolExpr):
            try:
                return lookup(expr.name)
            except UnknownSymbolError:
                raise ScriptRuntimeError(f"unknown symbol {expr.name}") from None
        if isinstance(expr, sx.BitOrExpr):
            bits = 0
            for operand in expr.operands:
                v = self.value(operand)
                assert isinstance(v, int)
                bits |= v
            return bits
        if isinstance(expr, sx.StringExpr):
            return expr.value
        if isinstance(expr, sx.EllipsisExpr):
            return ELLIPSIS
        if isinstance(expr, sx.ArrayExpr):
            return [self.value(i) for i in expr.items]
        if isinstance(expr, sx.StructExpr):
            return {
                name if name is not None else str(i): self.value(v) for i, (name, v) in enumerate(expr.fields)
            }
        if isinstance(expr, sx.CallExpr):
            args = [self.value(a) for a in expr.args]
            if expr.func in ("htons", "htonl"):
                return args[0]
            if expr.func == "inet_addr":
                if not isinstance(args[0], str):
                    raise ScriptRuntimeError("inet_addr() takes an address string")
                return InAddr(args[0])
            raise ScriptRuntimeError(f"{expr.func}() is not supported")
        raise ScriptRuntimeError(f"{type(expr).__name__} is not supported here")

    def fd(self, expr: sx.Expr) -> int:
        script_fd = self.value(expr)
        if not isinstance(script_fd, int):
            raise ScriptRuntimeError("a file descriptor must be an integer")
        return self.fds.get(script_fd, 10_000 + script_fd)  # unknown fds fail with EBADF

    def address(self, expr: sx.Expr, default: tuple[str, int]) -> tuple[str, int]:
        v = self.value(expr)
        if v is ELLIPSIS:
            return default
        if isinstance(v, dict):
            return (str(v.get("sin_addr", default[0])), int(v.get("sin_port", default[1])))
        raise ScriptRuntimeError("addresses are ... or {sa_family=..., sin_port=..., sin_addr=...}")

    def args_for(self, ev: sx.SyscallEvent) -> tuple[object, ...]:
        a = ev.args
        name = ev.name
        o = self.opts
        if name == "socket":
            domain = self.value(a[0])
            return (2 if domain is ELLIPSIS else domain, self.value(a[1]), self.value(a[2]))
        if name == "bind":
            return (self.fd(a[0]), self.address(a[1], (o.local_ip, o.bind_port)))
        if name == "connect":
            fd = self.fd(a[0])
            flow = self.flow
            # A new active open gets a new flow; a connect() repeated on the socket
            # whose connection is live (EALREADY, EISCONN, completion) keeps it.
            if not (self.connect_fd == fd and flow.syn_seen and not flow.reset_seen):
                self.flow = Flow()
            self.connect_fd = fd
            return (fd, self.address(a[1], (o.remote_ip, o.connect_port)))
        if name in ("listen", "shutdown"):
            return (self.fd(a[0]), self.value(a[1]))
        if name in ("accept", "close"):
            return (self.fd(a[0]),)
        if name == "write":
            return (self.fd(a[0]), bytes(self._int(a[2])))
        if name == "send":
            return (self.fd(a[0]), bytes(self._int(a[2])), self._int(a[3]))
        if name == "sendto":
            return (
                self.fd(a[0]),
                bytes(self._int(a[2])),
                self._int(a[3]),
                self.address(a[4], (o.remote_ip, o.connect_port)),
            )
        if name == "read":
            return (self.fd(a[0]), self._int(a[2]))
        if name in ("recv", "recvfrom"):
            return (self.fd(a[0]), self._int(a[2]), self._int(a[3]))
        if name == "setsockopt":
            return (self.fd(a[0]), self._int(a[1]), self._int(a[2]), self._optval(self.value(a[3])))
        if name == "getsockopt":
            length = self.value(a[4])
            buflen = length[0] if isinstance(length, list) and length and isinstance(length[0], int) else 4
            return (self.fd(a[0]), self._int(a[1]), self._int(a[2]), buflen)
        if name == "fcntl":
            return (self.fd(a[0]), self._int(a[1]), self._int(a[2]) if len(a) > 2 else 0)
        if name == "poll":
            pollfds = self.value(a[0])
            entries = pollfds if isinstance(pollfds, list) else [pollfds]
            live: list[tuple[int, int]] = []
            for entry in entries:
                if not isinstance(entry, dict) or not isinstance(entry.get("fd"), int):
                    raise ScriptRuntimeError("poll() takes [{fd=N, events=..., revents=...}, ...]")
                live.append((self.fds.get(entry["fd"], -1), int(entry.get("events", 0))))
            return (live, self._int(a[2]))
        raise ScriptRuntimeError(f"syscall {name}() is not supported by this harness")

    def _int(self, expr: sx.Expr) -> int:
        v = self.value(expr)
        if not isinstance(v, int):
            raise ScriptRuntimeError(f"expected an integer, got {v!r}")
        return v

    @staticmethod
    def _optval(v: object) -> int | bytes:
        if isinstance(v, list) and len(v) == 1 and isinstance(v[0], int):
            return v[0]
        if isinstance(v, int):
            return v
        if isinstance(v, dict) and "onoff" in v:
            return struct.pack("ii", int(v["onoff"]), int(v.get("linger", 0)))
        if isinstance(v, dict) and "imr_multiaddr" in v:
            return _mreq(v)
        if isinstance(v, InAddr):  # IP_MULTICAST_IF with a struct in_addr
            return socket.inet_aton(v)
        if isinstance(v, str):
            return v.encode()
        raise ScriptRuntimeError(f"unsupported socket option value {v!r}")

    def syscall(self, event: sx.Event, ev: sx.SyscallEvent, start: float, tol: float) -> None:
        args = self.args_for(ev)
        call = self.session.syscall(ev.name, args)
        self.note("call", f"{ev.name}{args!r}", ev.line)
        if ev.end_time is not None:
            end = ev.end_time.start_usecs / 1e6 + (self.prev_actual if ev.end_time.is_relative else self.base)
            # The return is held to the tolerance of its own interval (packetdrill's
            # formula over the time the call blocked), not the start's.
            end_tol = max(tol, self.opts.tolerance_percent / 100.0 * max(0.0, end - start))
            self.blocking.append(_Blocking(call, ev, ev.line, end, end_tol))
            return
        if not call.done and not self.session.wait(call, self.session.now() + tol):
            raise self.fail(ev, f"{ev.name}() blocked; mark it as blocking with '...' and an end time")
        self.check_result(ev, call)

    def check_blocking(self, *, final: bool = False) -> None:
        for pending in list(self.blocking):
            if not pending.call.done:
                if final:
                    raise self.fail(pending.event, f"blocking {pending.event.name}() never returned")
                continue
            self.blocking.remove(pending)
            assert pending.call.finished_at is not None
            self.check_time(pending.event, pending.call.finished_at, pending.end, pending.end, pending.tol)
            self.check_result(pending.event, pending.call)

    def check_result(self, ev: sx.SyscallEvent, call: Call) -> None:
        res = call.result
        assert res is not None
        self.note(
            "call",
            f"{ev.name} = {res.ret}" + (f" errno {res.errno}" if res.ret < 0 else ""),
            ev.line,
            at=call.finished_at,
        )
        expected = self.value(ev.ret)
        if expected is not ELLIPSIS:
            if ev.name in ("socket", "accept") and isinstance(expected, int) and expected >= 0:
                if res.ret < 0:
                    raise self.fail(ev, f"{ev.name}() failed with errno {res.errno}, expected fd {expected}")
                self.fds[expected] = res.ret
                if ev.name == "accept":
                    self.sut_fd = res.ret
            elif res.ret != expected:
                raise self.fail(
                    ev,
                    f"{ev.name}() returned {res.ret}, expected {expected}"
                    + (f" (errno {res.errno})" if res.ret < 0 else ""),
                )
        if ev.errno is not None:
            want = lookup(ev.errno)
            if res.errno != want:
                raise self.fail(ev, f"{ev.name}() set errno {res.errno}, expected {ev.errno} ({want})")
        if ev.name == "connect":
            self.sut_fd = call.args[0] if isinstance(call.args[0], int) else None
        if ev.name == "getsockopt" and len(ev.args) > 3:
            want_value = self.value(ev.args[3])
            scalar = isinstance(want_value, list) and len(want_value) == 1 and want_value[0] is not ELLIPSIS
            if scalar and isinstance(want_value, list) and res.value != want_value[0]:
                raise self.fail(ev, f"getsockopt() value {res.value!r}, expected {want_value[0]!r}")
        if ev.name == "poll" and isinstance(res.value, list):
            pollfds = self.value(ev.args[0])
            entries = pollfds if isinstance(pollfds, list) else [pollfds]
            for entry, (_, revents) in zip(entries, res.value, strict=False):
                if isinstance(entry, dict) and "revents" in entry and entry["revents"] != revents:
                    raise self.fail(ev, f"poll() revents {revents:#x}, expected {entry['revents']:#x}")

    # --- shell and code -------------------------------------------------------------------
    def shell(self, action: sx.ShellEvent) -> None:
        ok, why = self.session.apply(Setting("shell", action.command))
        self.note("shell", action.command.strip(), action.line)
        if not ok:
            raise self.fail(action, f"command failed: {why}")

    def code(self, action: sx.CodeEvent) -> None:
        if self.sut_fd is None:
            raise ScriptRuntimeError("a code block needs a socket under test")
        call = self.session.syscall("getsockopt", (self.sut_fd, 6, 11, 104))
        self.session.wait(call, self.session.now() + 1.0)
        if call.result is None or call.result.ret < 0 or not isinstance(call.result.value, bytes):
            raise ScriptRuntimeError("TCP_INFO could not be read for the code block")
        names: dict[str, object] = {**decode_tcp_info(call.result.value), **TCP_STATES}
        try:
            exec(compile(action.code, f"{self.script.path}:{action.line}", "exec"), names)
        except AssertionError as e:
            raise self.fail(action, f"code block assertion failed: {e}") from None
        except NameError as e:
            raise ScriptRuntimeError(
                f"code block: {e} (only struct tcp_info up to tcpi_total_retrans)"
            ) from None


class InAddr(str):
    """``inet_addr("A.B.C.D")``: an address that becomes a ``struct in_addr`` where a
    socket option needs bytes."""


def _mreq(v: dict[str, object]) -> bytes:
    """``struct ip_mreq`` {imr_multiaddr, imr_interface}, ``ip_mreqn`` {imr_multiaddr,
    imr_address, imr_ifindex} or ``ip_mreq_source`` {imr_multiaddr, imr_interface,
    imr_sourceaddr}, as Linux lays them out (``<linux/in.h>``)."""

    def addr(name: str) -> bytes:
        value = v.get(name, "0.0.0.0")
        if isinstance(value, int) and 0 <= value <= 0xFFFFFFFF:  # INADDR_ANY and friends
            return struct.pack("!I", value)
        if not isinstance(value, str):
            raise ScriptRuntimeError(f'{name} must be inet_addr("A.B.C.D") or INADDR_ANY')
        return socket.inet_aton(value)

    if "imr_sourceaddr" in v:
        return addr("imr_multiaddr") + addr("imr_interface") + addr("imr_sourceaddr")
    if "imr_ifindex" in v:
        index = v["imr_ifindex"]
        if not isinstance(index, int):
            raise ScriptRuntimeError("imr_ifindex must be an integer")
        return addr("imr_multiaddr") + addr("imr_address") + struct.pack("i", index)
    return addr("imr_multiaddr") + addr("imr_interface")


def _render(action: sx.PacketEvent) -> str:
    body = action.body
    if isinstance(body, sx.TcpBody):
        text = f"{body.flags or '-'} {body.seq_start}:{body.seq_end}({body.seq_len})"
        if body.ack is not None:
            text += f" ack {body.ack}"
        if body.win is not None:
            text += f" win {body.win}"
        return text
    if isinstance(body, sx.SilenceBody):
        return "none"
    return type(body).__name__


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """No garbage-collection pause while a case runs: a full collection in a long
    session can stall the harness tens of milliseconds, which the linux target's
    real-time checks would report as the stack's lateness.  What is alive before
    the case is frozen out of later collections; collection resumes after it."""
    gc.collect()
    gc.freeze()
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
        gc.unfreeze()


def run_case(
    path: str | Path,
    target: Target,
    *,
    cli_options: dict[str, str | None] | None = None,
    defines: dict[str, str] | None = None,
) -> CaseResult:
    """Parse ``path`` and run it on ``target``; never raises for a bad script or target."""
    wall = time.monotonic()
    result = CaseResult(str(path), target.name, Verdict.PASS)
    try:
        script = parse_file(str(path), defines=defines)
        opts = merge(
            script, cli_options, default_tolerance_usecs=getattr(target, "default_tolerance_usecs", 4000)
        )
    except (ScriptError, OptionError, OSError) as e:
        result.verdict, result.reason = Verdict.ERROR, str(e)
        return result
    ok, why = target.available()
    if not ok:
        result.verdict, result.reason = Verdict.SKIP, f"{target.name} unavailable: {why}"
        return result
    features = getattr(target, "features", frozenset({target.name}))
    missing = sorted(opts.require - features)
    if missing:
        result.verdict = Verdict.SKIP
        result.reason = (
            f"the case requires {', '.join(missing)}; {target.name} offers {', '.join(sorted(features))}"
        )
        return result
    case = CaseConfig(
        name=str(path),
        local_ip=opts.local_ip,
        remote_ip=opts.remote_ip,
        gateway_ip=opts.gateway_ip,
        netmask_ip=opts.netmask_ip,
        mtu=opts.mtu,
        ef_options=opts.ef_options if "onload" in features else (),
    )
    try:
        session = target.open(case)
    except UnsupportedSettingError as e:
        result.verdict, result.reason = Verdict.SKIP, str(e)
        return result
    except InvalidSettingError as e:
        result.verdict, result.reason = Verdict.ERROR, f"{path}: {e}"
        return result
    executor = Executor(script, session, opts, result)
    if opts.ef_options and "onload" not in features:
        names = ", ".join(f"{k}={v}" for k, v in opts.ef_options)
        executor.note("note", f"{names}: EF_* options are Onload's; {target.name} runs without them", at=0.0)
    init_ran = False
    try:
        if script.init_command is not None:
            init_ran = True
            executor.shell(script.init_command)
        with _gc_paused():
            executor.run()
            executor.finish()
    except _CaseFailedError as f:
        result.verdict, result.mismatch, result.reason = Verdict.FAIL, f.mismatch, f.mismatch.message
    except UnsupportedSettingError as e:
        result.verdict, result.reason = Verdict.SKIP, str(e)
    except ScriptRuntimeError as e:
        result.verdict, result.reason = Verdict.ERROR, str(e)
    finally:
        try:
            executor.drain()
            if init_ran and script.cleanup_command is not None:
                session.apply(Setting("shell", script.cleanup_command.command))
        finally:
            result.script_time = session.now()
            session.close()
            result.duration = time.monotonic() - wall
    return result
