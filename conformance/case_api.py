"""Python conformance cases, in the spirit of gVisor's packetimpact testbench.

A case is a plain pytest function that drives the device under test (the *DUT*: a
target's stack, through :class:`Dut`) and plays the remote peer (the *test bench*:
:class:`TcpConnection`, :class:`UdpFlow`, raw :meth:`Case.inject`/:meth:`Case.sniff_any`)::

    def test_rst_in_window_draws_challenge_ack(dut: Dut, conn: TcpConnection) -> None:
        fd, _ = dut.establish(conn)
        conn.send("R", seq=conn.seq + 10)                       # in window, not exact
        conn.expect(flags="A", seq=conn.ack, ack=conn.seq)      # RFC 5961 §3.2

The fixtures (``target``, ``case_config``, ``session``, ``case``, ``dut``, ``conn``,
``udp``) run every such function once per target (refstack, linux); see
``conformance/CASE_API.md``.  Everything runs in *session time*: virtual and exact on
refstack, real on Linux.  Packets are built and parsed with scapy only.

Templates (:func:`match`) are partial specifications: a dict of field names
(``{"flags": "SA", "ack": 1001}``) or a scapy layer stack whose explicitly set fields
count (``TCP(flags="SA")``, ``IP(ttl=64) / TCP(flags="A") / Raw(b"hi")``).  Only the
given fields are compared; ``flags`` compare exactly (``"A"`` does not match ``"PA"``).
"""

from __future__ import annotations

import contextlib
import errno as errno_mod
import fcntl as fcntl_mod
import json
import os
import socket as socket_mod
import struct
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, SupportsInt, TypeVar, cast

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.packet import NoPayload, Packet, Raw

from .results import CaseResult, FieldDiff, Mismatch, TraceEntry, Verdict
from .target import Call, CallResult, Captured, CaseConfig, Session, Target, UnsupportedSettingError
from .targets import TARGET_NAMES, get_target

__all__ = [
    "AF_INET",
    "DEFAULT_TIMEOUT",
    "SOCK_DGRAM",
    "SOCK_STREAM",
    "Case",
    "CaseSpec",
    "Dut",
    "DutError",
    "DutTimeoutError",
    "ExpectationFailed",
    "TcpConnection",
    "Template",
    "UdpFlow",
    "case",
    "describe",
    "match",
    "open_case",
]

AF_INET = socket_mod.AF_INET
SOCK_STREAM = socket_mod.SOCK_STREAM
SOCK_DGRAM = socket_mod.SOCK_DGRAM
MASK = 0xFFFFFFFF
DEFAULT_TIMEOUT = 1.0  # session seconds an expect() waits by default
CALL_TIMEOUT = 2.0  # session seconds a blocking DUT call may take by default
FIRST_BENCH_PORT = 40000
DEFAULT_SYN_OPTIONS: tuple[tuple[str, object], ...] = (("MSS", 1460),)

Template = Mapping[str, object] | Packet | None
"""A dict of field names (see :func:`match`), a scapy layer stack, or None (anything)."""

_F = TypeVar("_F", bound=Callable[..., object])


# --- errors -----------------------------------------------------------------------------


class DutError(OSError):
    """A socket call on the DUT returned -1: ``errno`` and ``call`` (its name) as the C
    call would report them; ``call_args`` holds the arguments it was given."""

    def __init__(self, errno: int, call: str, call_args: tuple[object, ...] = ()) -> None:
        name = errno_mod.errorcode.get(errno, str(errno))
        shown = ", ".join(_short(a) for a in call_args)
        super().__init__(errno, f"{call}({shown}) failed: {name} ({os.strerror(errno)})")
        self.call = call
        self.call_args = call_args

    def __str__(self) -> str:
        return str(self.strerror)


class DutTimeoutError(AssertionError):
    """A blocking DUT call did not return within its timeout (session seconds)."""

    def __init__(self, call: str, call_args: tuple[object, ...], timeout: float) -> None:
        shown = ", ".join(_short(a) for a in call_args)
        super().__init__(f"{call}({shown}) did not return within {timeout:g} s of session time")
        self.call = call
        self.timeout = timeout


class ExpectationFailed(AssertionError):  # noqa: N818 -- packetimpact's name for it
    """An expectation on the wire was not met.  ``expected`` renders the template,
    ``diffs`` is the field-by-field difference of the closest candidate (``closest``,
    None when nothing of the flow arrived); ``candidates`` every packet of the flow
    that was looked at."""

    def __init__(
        self,
        message: str,
        *,
        expected: str = "",
        closest: Packet | None = None,
        diffs: Sequence[FieldDiff] = (),
        candidates: Sequence[Packet] = (),
    ) -> None:
        super().__init__(message)
        self.expected = expected
        self.closest = closest
        self.diffs = list(diffs)
        self.candidates = list(candidates)


def _short(value: object) -> str:
    if isinstance(value, bytes) and len(value) > 16:
        return f"<{len(value)} bytes>"
    return repr(value)


# --- templates ------------------------------------------------------------------------

_LAYERS: dict[str, type[Packet]] = {"ip": IP, "tcp": TCP, "udp": UDP, "icmp": ICMP}
_PSEUDO = ("payload", "payload_len")


def _field_names(layer: type[Packet]) -> set[str]:
    return {f.name for f in layer.fields_desc}


def _field(layer: type[Packet], name: str) -> Any:
    for f in layer.fields_desc:
        if f.name == name:
            return f
    return None


def _internal(layer: type[Packet] | None, name: str, value: object, inst: Packet | None = None) -> object:
    """``value`` as scapy holds it internally: ``"SA"`` -> 18 for flags, ``"tcp"`` -> 6
    for ip.proto, ``"dest-unreach"`` -> 3 for icmp.type (``inst``, the packet's layer,
    resolves names that depend on other fields, like icmp.code); unchanged when not
    convertible."""
    fld = _field(layer, name) if layer is not None and name not in _PSEUDO else None
    if fld is None or name == "options":
        return value
    try:
        converted = fld.any2i(inst, value)
    except (TypeError, ValueError, KeyError, AttributeError):
        return value
    return int(converted) if name == "flags" else converted


def _strip_padding(options: object) -> list[tuple[object, object]]:
    """A parsed option list without the trailing EOL/NOP padding scapy reports."""
    items = [tuple(o) for o in options] if isinstance(options, list | tuple) else []
    while items and items[-1][0] in ("EOL", "NOP"):
        items.pop()
    return [(o[0], o[1] if len(o) > 1 else None) for o in items]


def _render(layer: type[Packet] | None, name: str, value: object, inst: Packet | None = None) -> str:
    if callable(value) and not isinstance(value, type):
        return str(getattr(value, "__doc__", None) or getattr(value, "__name__", "<predicate>"))
    if isinstance(value, bytes):
        return repr(value) if len(value) <= 24 else f"<{len(value)} bytes {value[:8]!r}...>"
    fld = _field(layer, name) if layer is not None and name not in _PSEUDO else None
    if fld is not None and name != "options":
        value = _internal(layer, name, value, inst)
        try:
            shown = str(fld.i2repr(inst, value))
        except (TypeError, ValueError, KeyError, AttributeError):
            shown = str(value)
        return shown or ("-" if name == "flags" else shown)
    return str(value)


def _payload_of(pkt: Packet, layer: type[Packet]) -> bytes:
    inner = pkt.getlayer(layer)
    return bytes((pkt if inner is None else inner).payload)


def _compare(layer: type[Packet], name: str, want: object, got: object, inst: Packet | None = None) -> bool:
    if callable(want) and not isinstance(want, type):
        return bool(want(got))
    if name == "options" and layer is TCP:
        have = _strip_padding(got)
        if isinstance(want, Mapping):  # partial: these options, with these values (None: any)
            present = dict(have)
            return all(k in present and (v is None or present[k] == v) for k, v in want.items())
        return have == _strip_padding(want)
    want = _internal(layer, name, want, inst)
    if name == "flags":
        return isinstance(want, int) and want == int(cast(SupportsInt, got))  # a scapy FlagValue
    return bool(got == want)


def _diff_one(pkt: Packet, row: tuple[type[Packet], str, object, str], render: _Renderer) -> FieldDiff | None:
    layer, name, want, label = row
    if name in _PSEUDO:
        payload = _payload_of(pkt, layer)
        got: object = payload if name == "payload" else len(payload)
        if _compare(layer, name, want, got):
            return None
        return FieldDiff(label, render(layer, name, want, None), render(layer, name, got, None))
    if layer not in pkt:
        return FieldDiff(label, render(layer, name, want, None), f"(no {layer.__name__} layer)")
    inst = pkt[layer]
    got = inst.getfieldval(name)
    if _compare(layer, name, want, got, inst):
        return None
    if name == "options":
        got = _strip_padding(got)
    return FieldDiff(label, render(layer, name, want, inst), render(layer, name, got, inst))


_Renderer = Callable[[type[Packet] | None, str, object, Packet | None], str]


def _normalise(template: Template, default: type[Packet]) -> list[tuple[type[Packet], str, object, str]]:
    """A template as (layer, field, wanted value, label) rows; a ValueError for a field
    that does not exist (a typo must not silently match everything)."""
    rows: list[tuple[type[Packet], str, object, str]] = []
    if template is None:
        return rows
    if isinstance(template, Packet):
        layer: Packet = template
        while not isinstance(layer, NoPayload):
            cls = type(layer)
            if cls is Raw:
                rows.append((default, "payload", bytes(layer.load), "payload"))
                break
            for name, value in layer.fields.items():
                if cls is IP and name == "options" and value == []:
                    continue  # IP() always sets options=[]; not a constraint
                label = name if cls is default else f"{cls.__name__.lower()}.{name}"
                rows.append((cls, name, value, label))
            layer = layer.payload
        return rows
    if not isinstance(template, Mapping):
        raise TypeError(f"a template is a dict or a scapy packet, not {type(template).__name__}")
    for key, value in template.items():
        prefix, dot, name = key.rpartition(".")
        layer_cls = _LAYERS.get(prefix, default) if dot else default
        if dot and prefix not in _LAYERS:
            raise ValueError(f"template field {key!r}: unknown layer {prefix!r} (ip, tcp, udp, icmp)")
        if name not in _PSEUDO and name not in _field_names(layer_cls):
            known = ", ".join(sorted(_field_names(layer_cls) | set(_PSEUDO)))
            raise ValueError(f"template field {key!r} is not a {layer_cls.__name__} field ({known})")
        rows.append((layer_cls, name, value, key))
    return rows


def match(template: Template, packet: Packet, *, layer: type[Packet] = TCP) -> list[FieldDiff]:
    """The fields of ``template`` that ``packet`` (a scapy IP packet) does not match;
    empty when it matches.

    Dict keys are fields of ``layer`` (TCP by default: ``sport dport seq ack dataofs
    reserved flags window chksum urgptr options``), ``"ip.<field>"`` (or another layer
    prefix: ``tcp. udp. icmp.``), ``"payload"`` (bytes after ``layer``, exact) and
    ``"payload_len"``.  A value may be a predicate (``lambda w: w > 0``).  ``flags``
    compare exactly; ``options`` as a list compare exactly (ignoring trailing padding),
    as a dict only the options named (``{"MSS": 1460, "SAckOK": None}``).
    """
    diffs: list[FieldDiff] = []
    for row in _normalise(template, layer):
        d = _diff_one(packet, row, _render)
        if d is not None:
            diffs.append(d)
    return diffs


def describe(packet: Packet) -> str:
    """A one-line, tcpdump-like rendering of a scapy IP packet."""
    if TCP in packet:
        t = packet[TCP]
        opts = ",".join(f"{k} {v}" if v not in (None, b"") else str(k) for k, v in _strip_padding(t.options))
        return (
            f"{packet.src}:{t.sport} > {packet.dst}:{t.dport} {t.flags or '-'} seq {t.seq} ack {t.ack} "
            f"win {t.window} len {len(bytes(t.payload))}" + (f" <{opts}>" if opts else "")
        )
    if UDP in packet:
        u = packet[UDP]
        return f"{packet.src}:{u.sport} > {packet.dst}:{u.dport} udp len {len(bytes(u.payload))}"
    return str(packet.summary())


# --- the case: session, clock, capture log, trace -------------------------------------


class Case:
    """One case on one target: the session, the addresses, the log of every packet the
    DUT sent (shared by all flows, each reading it from its own cursor) and the trace.

    ``local_ip`` is the DUT's address, ``remote_ip`` the test bench's."""

    def __init__(self, session: Session, config: CaseConfig, target: str = "") -> None:
        self.session = session
        self.config = config
        self.target = target
        self.local_ip = config.local_ip
        self.remote_ip = config.remote_ip
        self.log: list[Captured] = []
        self.trace: list[TraceEntry] = []
        self._any_cursor = 0
        self._next_port = FIRST_BENCH_PORT
        self._next_isn = 1_000_000

    # -- time --
    def now(self) -> float:
        """Session seconds (virtual on refstack, real on Linux)."""
        return self.session.now()

    def sleep(self, seconds: float) -> None:
        """Let ``seconds`` of session time pass (the DUT's timers run)."""
        self.session.sleep_until(self.now() + seconds)

    def sleep_until(self, t: float) -> None:
        self.session.sleep_until(t)

    # -- packets --
    def inject(self, packet: bytes | Packet) -> Packet:
        """Deliver an IPv4 datagram from the bench to the DUT (raw escape hatch)."""
        raw = bytes(packet)
        self.session.inject(raw)
        parsed = IP(raw)
        self.note("in", describe(parsed), raw)
        return parsed

    def capture(self, deadline: float) -> bool:
        """Sniff one more packet into the log; False when none came by ``deadline``."""
        got = self.session.sniff(deadline)
        if got is None:
            return False
        self.log.append(got)
        self.trace.append(TraceEntry(got.time, "out", describe(IP(got.packet)), 0, got.packet))
        return True

    def sniff_any(self, timeout: float = DEFAULT_TIMEOUT) -> Packet | None:
        """The next packet the DUT sent, of any flow (each packet once through this
        call; flows see it too), or None after ``timeout`` session seconds."""
        deadline = self.now() + timeout
        if self._any_cursor >= len(self.log) and not self.capture(deadline):
            return None
        got = self.log[self._any_cursor]
        self._any_cursor += 1
        return _parse(got)

    def note(self, kind: str, text: str, packet: bytes | None = None) -> None:
        self.trace.append(TraceEntry(self.now(), kind, text, 0, packet))

    # -- flows --
    def allocate_port(self) -> int:
        port = self._next_port
        self._next_port += 1
        return port

    def allocate_isn(self) -> int:
        isn = self._next_isn
        self._next_isn += 1_000_000
        return isn

    def tcp(self, dut_port: int | None = None, **kwargs: Any) -> TcpConnection:
        return TcpConnection(self, dut_port=dut_port, **kwargs)

    def udp(self, dut_port: int | None = None, **kwargs: Any) -> UdpFlow:
        return UdpFlow(self, dut_port=dut_port, **kwargs)

    # -- results --
    def result(self, verdict: Verdict, reason: str = "", duration: float = 0.0) -> CaseResult:
        """This run as a :class:`CaseResult` (JSON results, pcaps)."""
        return CaseResult(
            self.config.name,
            self.target,
            verdict,
            reason,
            duration,
            self.now(),
            None,
            sorted(self.trace, key=lambda e: e.time),
        )


def _ip(src: str, dst: str, fields: Mapping[str, object] | None) -> Packet:
    """An IP header from the bench, with extra IP fields (``ttl``, ``tos``, ``flags``...)."""
    header = IP(src=src, dst=dst)
    for name, value in (fields or {}).items():
        header.setfieldval(name, value)
    return header


def _parse(got: Captured) -> Packet:
    pkt = IP(got.packet)
    pkt.time = got.time  # session time of capture
    return pkt


# --- flows of the bench ---------------------------------------------------------------


class _Flow:
    """What TCP and UDP flows share: membership, a cursor in the case's capture log and
    the expect family."""

    layer: type[Packet] = TCP

    def __init__(self, case: Case, dut_port: int | None, bench_port: int | None) -> None:
        self.case = case
        self.dut_port = dut_port
        self.bench_port = bench_port if bench_port is not None else case.allocate_port()
        self.dut_ip = case.local_ip
        self.bench_ip = case.remote_ip
        self.received: list[Packet] = []  # every packet of the flow looked at, in order
        self._cursor = 0

    # -- membership and state --
    def _belongs(self, pkt: Packet) -> bool:
        if pkt.src != self.dut_ip or pkt.dst != self.bench_ip or self.layer not in pkt:
            return False
        seg = pkt[self.layer]
        return bool(seg.dport == self.bench_port and (self.dut_port is None or seg.sport == self.dut_port))

    def _observe(self, pkt: Packet) -> None:
        if self.dut_port is None:
            self.dut_port = pkt[self.layer].sport
        self.received.append(pkt)

    def _next(self, deadline: float) -> Packet | None:
        """The next packet of this flow from the log (sniffing more as needed)."""
        log = self.case.log
        while True:
            while self._cursor < len(log):
                got = log[self._cursor]
                self._cursor += 1
                pkt = _parse(got)
                if self._belongs(pkt):
                    self._observe(pkt)
                    return pkt
            if not self.case.capture(deadline):
                return None

    def _render(
        self, layer: type[Packet] | None, name: str, value: object, inst: Packet | None = None
    ) -> str:
        return _render(layer, name, value, inst)

    def _diff(self, template: Template, pkt: Packet) -> list[FieldDiff]:
        out = []
        for row in _normalise(template, self.layer):
            d = _diff_one(pkt, row, self._render)
            if d is not None:
                out.append(d)
        return out

    def _template(self, template: Template, fields: Mapping[str, object]) -> Template:
        if not fields:
            return template
        if template is None:
            return dict(fields)
        if isinstance(template, Mapping):
            return {**template, **fields}
        raise TypeError("give either a scapy template or keyword fields, not both")

    def _name(self) -> str:
        port = "*" if self.dut_port is None else str(self.dut_port)
        return f"{self.dut_ip}:{port} > {self.bench_ip}:{self.bench_port}"

    # -- expectations --
    def expect(self, template: Template = None, timeout: float = DEFAULT_TIMEOUT, **fields: object) -> Packet:
        """Sniff until a packet of this flow matches ``template`` (packets that do not
        match are looked at and passed over); return it (a scapy IP packet whose
        ``.time`` is its session capture time) or raise :class:`ExpectationFailed`
        with the field-by-field diff of the closest candidate after ``timeout``."""
        __tracebackhide__ = True  # pytest shows the case's line, not ours
        tpl = self._template(template, fields)
        rows = _normalise(tpl, self.layer)  # validates the template before waiting
        start = self.case.now()
        deadline = start + timeout
        seen: list[tuple[Packet, list[FieldDiff]]] = []
        while (pkt := self._next(deadline)) is not None:
            diffs = self._diff(tpl, pkt)
            if not diffs:
                return pkt
            seen.append((pkt, diffs))
        raise self._failure("expected", self._describe(rows), timeout, seen)

    def expect_next(
        self, template: Template = None, timeout: float = DEFAULT_TIMEOUT, **fields: object
    ) -> Packet:
        """The very next packet of this flow must arrive within ``timeout`` and match."""
        __tracebackhide__ = True  # pytest shows the case's line, not ours
        tpl = self._template(template, fields)
        rows = _normalise(tpl, self.layer)
        pkt = self._next(self.case.now() + timeout)
        diffs = [] if pkt is None else self._diff(tpl, pkt)
        if pkt is None or diffs:
            seen = [] if pkt is None else [(pkt, diffs)]
            raise self._failure("expected next", self._describe(rows), timeout, seen)
        return pkt

    def expect_none(self, for_seconds: float, template: Template = None, **fields: object) -> None:
        """No packet of this flow (matching ``template``, if given) for ``for_seconds``
        of session time; packets that do not match are passed over."""
        __tracebackhide__ = True  # pytest shows the case's line, not ours
        tpl = self._template(template, fields)
        rows = _normalise(tpl, self.layer)
        deadline = self.case.now() + for_seconds
        while (pkt := self._next(deadline)) is not None:
            if not self._diff(tpl, pkt):
                what = "no packet" if not rows else f"no packet matching {self._describe(rows)}"
                at = f"{pkt.time:.6f}"
                raise ExpectationFailed(
                    f"expected {what} on {self._name()} for {for_seconds:g} s, got at {at}: "
                    + self._line(pkt),
                    expected=what,
                    closest=pkt,
                    candidates=[pkt],
                )
        if self.case.now() < deadline:
            self.case.sleep_until(deadline)

    def drain(self, for_seconds: float = 0.0) -> list[Packet]:
        """Pass over every packet of the flow captured so far and for ``for_seconds``
        more; return them."""
        deadline = self.case.now() + for_seconds
        out = []
        while (pkt := self._next(deadline)) is not None:
            out.append(pkt)
        return out

    def _describe(self, rows: list[tuple[type[Packet], str, object, str]]) -> str:
        if not rows:
            return "a packet"
        shown = ", ".join(f"{label}={self._render(cls, name, v)}" for cls, name, v, label in rows)
        return "{" + shown + "}"

    def _line(self, pkt: Packet) -> str:
        return describe(pkt)

    def _failure(
        self, verb: str, expected: str, timeout: float, seen: list[tuple[Packet, list[FieldDiff]]]
    ) -> ExpectationFailed:
        head = f"{verb} {expected} on {self._name()} within {timeout:g} s"
        if not seen:
            others = sum(1 for c in self.case.log if not self._belongs(IP(c.packet)))
            return ExpectationFailed(
                f"{head}: no packet of the flow arrived ({others} packets of other flows in the log)",
                expected=expected,
            )
        best_pkt, best = min(seen, key=lambda s: len(s[1]))  # first among equals
        width = max(len("field"), *(len(d.name) for d in best))
        ewidth = max(len("expected"), *(len(d.expected) for d in best))
        lines = [
            f"{head}: {len(seen)} packet(s) of the flow, none matched",
            f"closest (t={best_pkt.time:.6f}): {self._line(best_pkt)}",
            f"  {'field':<{width}}  {'expected':<{ewidth}}  actual",
        ]
        lines += [f"  {d.name:<{width}}  {d.expected:<{ewidth}}  {d.actual}" for d in best]
        if len(seen) > 1:
            lines.append("all candidates:")
            lines += [
                f"  t={p.time:.6f} {self._line(p)}  [{', '.join(d.name for d in ds)}]" for p, ds in seen[:20]
            ]
        return ExpectationFailed(
            "\n".join(lines), expected=expected, closest=best_pkt, diffs=best, candidates=[p for p, _ in seen]
        )


def _seq_len(flags: int, payload_len: int) -> int:
    """Sequence space a segment occupies: its data, plus one for SYN and for FIN."""
    return payload_len + (1 if flags & 0x02 else 0) + (1 if flags & 0x01 else 0)


def _flag_bits(flags: str | int) -> int:
    return int(TCP(flags=flags).flags)


def _seq_after(a: int, b: int) -> bool:
    """a > b in sequence space."""
    return 0 < ((a - b) & MASK) < (1 << 31)


class TcpConnection(_Flow):
    """The bench's side of one TCP flow (packetimpact's ``TCPIPv4``).

    State: ``seq`` is the bench's next sequence number, ``ack`` the next sequence
    number it expects from the DUT (the default acknowledgment: the end of the
    highest data, SYN or FIN the DUT was seen to send), ``bench_isn``/``dut_isn``,
    ``dut_window`` and ``dut_ack`` (from the DUT's last segment).  A segment sent at
    ``seq`` (the default) advances ``seq`` by its length (FIN counts one, and so does
    SYN, but only the flow's opening SYN); a segment with an explicit other ``seq``, or
    an RST, leaves it alone.
    """

    layer = TCP

    def __init__(
        self,
        case: Case,
        *,
        dut_port: int | None = None,
        bench_port: int | None = None,
        isn: int | None = None,
        window: int = 65535,
    ) -> None:
        super().__init__(case, dut_port, bench_port)
        self.bench_isn = case.allocate_isn() if isn is None else isn & MASK
        self.seq = self.bench_isn
        self.ack: int | None = None
        self.dut_isn: int | None = None
        self.dut_window: int | None = None
        self.dut_ack: int | None = None
        self.window = window
        self._syn_sent = False

    # -- state from the DUT --
    def _observe(self, pkt: Packet) -> None:
        super()._observe(pkt)
        tcp = pkt[TCP]
        flags = int(tcp.flags)
        if flags & 0x04:  # RST: occupies no sequence space, carries no window
            return
        if flags & 0x02:
            self.dut_isn = tcp.seq
        end = (tcp.seq + _seq_len(flags, len(bytes(tcp.payload)))) & MASK
        if self.ack is None or _seq_after(end, self.ack):
            self.ack = end
        self.dut_window = tcp.window
        if flags & 0x10:
            self.dut_ack = tcp.ack

    def _render(
        self, layer: type[Packet] | None, name: str, value: object, inst: Packet | None = None
    ) -> str:
        text = _render(layer, name, value, inst)
        if layer is TCP and isinstance(value, int) and not isinstance(value, bool):
            base = self.dut_isn if name == "seq" else self.bench_isn if name == "ack" else None
            if base is not None:
                text += f" (rel {(value - base) & MASK})"
        return text

    # -- sending --
    def send(
        self,
        flags: str | int = "A",
        payload: bytes = b"",
        *,
        seq: int | None = None,
        ack: int | None = None,
        options: Sequence[tuple[str | int, object]] | None = None,
        window: int | None = None,
        urgptr: int = 0,
        ip: Mapping[str, object] | None = None,
        advance: bool | None = None,
    ) -> Packet:
        """Inject one segment of this flow, filling in addresses, ports, ``seq``
        (``self.seq``), ``ack`` (``self.ack``, when the ACK bit is set) and ``window``
        (``self.window``) unless given; return it as sent (scapy).  ``advance``:
        whether ``self.seq`` moves past it (default: when it starts at ``self.seq`` and
        is no RST); False for a segment the DUT is expected to drop."""
        if self.dut_port is None:
            raise RuntimeError("the flow's DUT port is unknown: connect_to() it or pass dut_port=")
        bits = _flag_bits(flags)
        if ack is None:
            if bits & 0x10 and self.ack is None:
                raise RuntimeError("nothing from the DUT seen yet to acknowledge; pass ack=")
            ack = self.ack if bits & 0x10 and self.ack is not None else 0
        at = self.seq if seq is None else seq & MASK
        segment = TCP(
            sport=self.bench_port,
            dport=self.dut_port,
            flags=bits,
            seq=at,
            ack=ack & MASK,
            window=self.window if window is None else window,
            urgptr=urgptr,
            options=list(options or []),
        )
        packet = _ip(self.bench_ip, self.dut_ip, ip) / segment
        if payload:
            packet = packet / Raw(payload)
        sent = self.case.inject(packet)
        if advance is None:
            advance = at == self.seq and not bits & 0x04
        if advance:
            opening = bits & 0x02 and not self._syn_sent
            self._syn_sent = self._syn_sent or bool(bits & 0x02)
            self.seq = (at + _seq_len(bits if opening else bits & ~0x02, len(payload))) & MASK
        return sent

    # -- handshakes --
    def connect_to(
        self,
        dut_port: int,
        *,
        options: Sequence[tuple[str | int, object]] | None = DEFAULT_SYN_OPTIONS,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Packet:
        """The bench opens: SYN (with ``options``), expect the SYN-ACK acknowledging
        it, ACK it.  Returns the SYN-ACK."""
        __tracebackhide__ = True  # pytest shows the case's line, not ours
        self.dut_port = dut_port
        self.send("S", options=options)
        synack = self.expect({"flags": "SA", "ack": self.seq}, timeout)
        self.send("A")
        return synack

    def accept(
        self,
        *,
        options: Sequence[tuple[str | int, object]] | None = DEFAULT_SYN_OPTIONS,
        timeout: float = DEFAULT_TIMEOUT,
        expect_ack: bool = True,
    ) -> Packet:
        """The DUT opens (start its connect first): expect its SYN to this bench port,
        answer SYN-ACK and, with ``expect_ack``, expect the ACK of it.  Returns the SYN."""
        __tracebackhide__ = True  # pytest shows the case's line, not ours
        syn = self.expect({"flags": "S"}, timeout)
        self.send("SA", options=options)
        if expect_ack:
            self.expect({"flags": "A", "ack": self.seq}, timeout)
        return syn


class UdpFlow(_Flow):
    """The bench's side of a UDP flow; ``dut_port`` None matches any DUT port (and
    learns the first one seen)."""

    layer = UDP

    def __init__(self, case: Case, *, dut_port: int | None = None, bench_port: int | None = None) -> None:
        super().__init__(case, dut_port, bench_port)

    def send(
        self, payload: bytes = b"", *, dut_port: int | None = None, ip: Mapping[str, object] | None = None
    ) -> Packet:
        """Inject one datagram to ``dut_port`` (default: the flow's)."""
        port = self.dut_port if dut_port is None else dut_port
        if port is None:
            raise RuntimeError("the flow's DUT port is unknown; pass dut_port=")
        if self.dut_port is None:
            self.dut_port = port
        packet = _ip(self.bench_ip, self.dut_ip, ip) / UDP(sport=self.bench_port, dport=port)
        return self.case.inject(packet / Raw(payload) if payload else packet)


# --- the DUT ----------------------------------------------------------------------------


def _addr(value: object) -> tuple[str, int]:
    if isinstance(value, tuple | list) and len(value) >= 2:
        return str(value[0]), int(value[1])
    raise ValueError(f"not an (ip, port) address: {value!r}")


class Dut:
    """Socket calls on the device under test, through the session.

    Methods return what the C call returns (``socket -> fd``, ``send -> count``, 0 for
    ``bind``...) or what it fills in (``accept -> (fd, (ip, port))``, ``recv -> bytes``,
    ``getsockopt -> int | bytes``, ``poll -> [(fd, revents)]``), and raise
    :class:`DutError` when it returns -1.  :meth:`call` gives the raw
    :class:`CallResult` instead.  Calls that block wait in session time for at most
    ``timeout`` (default :data:`CALL_TIMEOUT`) and raise :class:`DutTimeoutError`;
    :meth:`start`/:meth:`finish` let a blocking call run while the bench acts."""

    def __init__(self, case: Case, call_timeout: float = CALL_TIMEOUT) -> None:
        self.case = case
        self.call_timeout = call_timeout

    # -- raw calls --
    def start(self, name: str, *args: object) -> Call:
        """Start a call; it may still be running (blocked) when this returns."""
        call = self.case.session.syscall(name, tuple(args))
        shown = f"{name}({', '.join(_short(a) for a in args)})"
        self.case.trace.append(TraceEntry(call.started_at, "call", shown))
        return call

    def finish(self, call: Call, timeout: float | None = None) -> CallResult:
        """Wait (session time) for a started call; :class:`DutTimeoutError` after ``timeout``."""
        __tracebackhide__ = True  # pytest shows the case's line, not ours
        limit = self.call_timeout if timeout is None else timeout
        if not call.done and not self.case.session.wait(call, self.case.now() + limit):
            raise DutTimeoutError(call.name, call.args, limit)
        result = call.result
        assert result is not None
        err = f" errno {errno_mod.errorcode.get(result.errno, result.errno)}" if result.ret < 0 else ""
        self.case.trace.append(
            TraceEntry(call.finished_at or self.case.now(), "call", f"{call.name} = {result.ret}{err}")
        )
        return result

    def call(self, name: str, *args: object, timeout: float | None = None) -> CallResult:
        """Run a call (conventions: :data:`conformance.target.SYSCALLS`); never raises
        :class:`DutError`: the raw result."""
        __tracebackhide__ = True  # pytest shows the case's line, not ours
        return self.finish(self.start(name, *args), timeout)

    def checked(self, name: str, *args: object, timeout: float | None = None) -> CallResult:
        """Run a call; :class:`DutError` if it returned -1."""
        __tracebackhide__ = True  # pytest shows the case's line, not ours
        result = self.call(name, *args, timeout=timeout)
        if result.ret < 0:
            raise DutError(result.errno, name, tuple(args))
        return result

    # -- the C calls --
    def socket(self, domain: int = AF_INET, type: int = SOCK_STREAM, protocol: int = 0) -> int:
        return self.checked("socket", domain, type, protocol).ret

    def bind(self, fd: int, addr: tuple[str, int]) -> int:
        return self.checked("bind", fd, addr).ret

    def listen(self, fd: int, backlog: int = 16) -> int:
        return self.checked("listen", fd, backlog).ret

    def accept(self, fd: int, timeout: float | None = None) -> tuple[int, tuple[str, int]]:
        result = self.checked("accept", fd, timeout=timeout)
        return result.ret, _addr(result.value)

    def connect(self, fd: int, addr: tuple[str, int], timeout: float | None = None) -> int:
        """A connect that must finish within ``timeout`` (a blocking TCP connect needs
        the bench to answer meanwhile: use :meth:`start`/:meth:`finish` or
        :meth:`connect_nonblocking` for that)."""
        return self.checked("connect", fd, addr, timeout=timeout).ret

    def connect_nonblocking(self, fd: int, addr: tuple[str, int]) -> int:
        """Make ``fd`` non-blocking and connect; the errno (0 or EINPROGRESS), any
        other failure raises :class:`DutError`."""
        self.set_nonblocking(fd)
        result = self.call("connect", fd, addr)
        if result.ret < 0 and result.errno != errno_mod.EINPROGRESS:
            raise DutError(result.errno, "connect", (fd, addr))
        return result.errno if result.ret < 0 else 0

    def send(self, fd: int, data: bytes, flags: int = 0, timeout: float | None = None) -> int:
        return self.checked("send", fd, data, flags, timeout=timeout).ret

    def sendto(
        self,
        fd: int,
        data: bytes,
        addr: tuple[str, int] | None = None,
        flags: int = 0,
        timeout: float | None = None,
    ) -> int:
        return self.checked("sendto", fd, data, flags, addr, timeout=timeout).ret

    def recv(self, fd: int, count: int = 65536, flags: int = 0, timeout: float | None = None) -> bytes:
        value = self.checked("recv", fd, count, flags, timeout=timeout).value
        return value if isinstance(value, bytes) else b""

    def recvfrom(
        self, fd: int, count: int = 65536, flags: int = 0, timeout: float | None = None
    ) -> tuple[bytes, tuple[str, int]]:
        value = self.checked("recvfrom", fd, count, flags, timeout=timeout).value
        assert isinstance(value, tuple)
        data, peer = value
        return bytes(data), _addr(peer)

    def setsockopt(self, fd: int, level: int, name: int, value: int | bytes) -> int:
        return self.checked("setsockopt", fd, level, name, value).ret

    def getsockopt(self, fd: int, level: int, name: int, buflen: int = 4) -> int | bytes:
        value = self.checked("getsockopt", fd, level, name, buflen).value
        assert isinstance(value, int | bytes)
        return value

    def fcntl(self, fd: int, cmd: int, arg: int = 0) -> int:
        return self.checked("fcntl", fd, cmd, arg).ret

    def shutdown(self, fd: int, how: int = socket_mod.SHUT_RDWR) -> int:
        return self.checked("shutdown", fd, how).ret

    def close(self, fd: int) -> int:
        return self.checked("close", fd).ret

    def poll(self, fds: Sequence[tuple[int, int]], timeout_ms: int = 0) -> list[tuple[int, int]]:
        """poll(2); waits at most ``timeout_ms`` (plus a grace) of session time."""
        grace = self.call_timeout if timeout_ms < 0 else timeout_ms / 1000.0 + 1.0
        value = self.checked("poll", [tuple(f) for f in fds], timeout_ms, timeout=grace).value
        return [(int(fd), int(rev)) for fd, rev in value] if isinstance(value, list) else []

    # -- conveniences --
    def set_nonblocking(self, fd: int, on: bool = True) -> None:
        flags = self.fcntl(fd, fcntl_mod.F_GETFL)
        flags = flags | os.O_NONBLOCK if on else flags & ~os.O_NONBLOCK
        self.fcntl(fd, fcntl_mod.F_SETFL, flags)

    def listen_tcp(self, port: int = 8080, backlog: int = 16) -> int:
        """A TCP socket bound to ``case.local_ip:port`` and listening; its fd."""
        fd = self.socket(AF_INET, SOCK_STREAM, 0)
        self.bind(fd, (self.case.local_ip, port))
        self.listen(fd, backlog)
        return fd

    def bind_udp(self, port: int = 8080) -> int:
        """A UDP socket bound to ``case.local_ip:port``; its fd."""
        fd = self.socket(AF_INET, SOCK_DGRAM, 0)
        self.bind(fd, (self.case.local_ip, port))
        return fd

    def establish(self, conn: TcpConnection, port: int = 8080) -> tuple[int, int]:
        """Listen on ``port``, let ``conn`` connect, accept: ``(accepted fd, listening fd)``."""
        lfd = self.listen_tcp(port)
        conn.connect_to(port)
        fd, _ = self.accept(lfd)
        return fd, lfd

    def tcp_info(self, fd: int) -> dict[str, int]:
        """struct tcp_info, decoded as far as both targets fill it."""
        from .run.executor import decode_tcp_info  # noqa: PLC0415 -- the executor is heavier

        raw = self.getsockopt(fd, socket_mod.IPPROTO_TCP, socket_mod.TCP_INFO, 104)
        assert isinstance(raw, bytes)
        return decode_tcp_info(raw)

    def so_error(self, fd: int) -> int:
        value = self.getsockopt(fd, socket_mod.SOL_SOCKET, socket_mod.SO_ERROR)
        return value if isinstance(value, int) else struct.unpack("i", value[:4])[0]


# --- case metadata and the pytest fixtures ----------------------------------------------


@dataclass(frozen=True)
class CaseSpec:
    """What a case declares: the requirement it checks, settings, per-target skips
    (the target cannot run it) and xfails (a known divergence; strict, so a fix shows)."""

    rfc: str = ""
    sysctls: tuple[tuple[str, str], ...] = ()
    skip: Mapping[str, str] = field(default_factory=dict)
    xfail: Mapping[str, str] = field(default_factory=dict)
    ef_options: tuple[tuple[str, str], ...] = ()  # Onload options (targets that model Onload)


_SPEC_ATTR = "__conformance_case__"


def case(
    rfc: str = "",
    *,
    sysctls: Mapping[str, str] | None = None,
    skip: Mapping[str, str] | None = None,
    xfail: Mapping[str, str] | None = None,
    ef: Mapping[str, str] | None = None,
) -> Callable[[_F], _F]:
    """Declare a case's requirement and needs (optional; the fixtures run any test
    function once per target)::

        @case("RFC 5961 §4", sysctls={"net.ipv4.tcp_sack": "0"}, xfail={"refstack": "why"})
        def test_syn_in_established(dut, conn): ...

    ``ef`` gives EF_* options (``{"EF_MAX_ENDPOINTS": "4"}``) to targets that model
    Onload; the others run the case without them, as with a script's ``--ef=``.
    """
    for what, table in (("skip", skip), ("xfail", xfail)):
        unknown = set(table or {}) - set(TARGET_NAMES)
        if unknown:
            raise ValueError(f"case({what}=...): unknown target(s) {sorted(unknown)}")
    bad = [name for name in (ef or {}) if not name.startswith("EF_")]
    if bad:
        raise ValueError(f"case(ef=...): {bad} are not EF_* options")
    spec = CaseSpec(
        rfc,
        tuple((sysctls or {}).items()),
        dict(skip or {}),
        dict(xfail or {}),
        tuple((k, str(v)) for k, v in (ef or {}).items()),
    )

    def mark(fn: _F) -> _F:
        setattr(fn, _SPEC_ATTR, spec)
        return fn

    return mark


def spec_of(fn: object) -> CaseSpec:
    spec = getattr(fn, _SPEC_ATTR, None)
    return spec if isinstance(spec, CaseSpec) else CaseSpec()


@contextlib.contextmanager
def open_case(target: Target, config: CaseConfig) -> Iterator[Case]:
    """Open ``config`` on ``target`` as a :class:`Case` (outside pytest); the session
    is always closed::

        with open_case(get_target("refstack"), CaseConfig("try")) as c:
            dut, conn = Dut(c), c.tcp()
    """
    session = target.open(config)
    try:
        yield Case(session, config, target.name)
    finally:
        session.close()


_CASE_KEY = pytest.StashKey[Case]()
_PROPERTY = "conformance_result"  # what conformance.pytest_plugin gathers into its JSON


def _selected(config: pytest.Config) -> list[str] | None:
    try:
        chosen = config.getoption("conformance_targets")
    except ValueError:  # the conformance plugin is not loaded
        return None
    return list(chosen) if chosen else None


@pytest.fixture(params=TARGET_NAMES)
def target(request: pytest.FixtureRequest) -> Target:
    """Each target in turn; skips a target that is not selected (``--target``), that
    the case skips, or that this machine cannot run (with the reason)."""
    name: str = request.param
    spec = spec_of(getattr(request, "function", None))
    chosen = _selected(request.config)
    if chosen is not None and name not in chosen:
        pytest.skip(f"{name} not selected (--target {' '.join(chosen)})")
    if name in spec.skip:
        pytest.skip(f"{name}: {spec.skip[name]}")
    tgt = get_target(name)
    ok, why = tgt.available()
    if not ok:
        pytest.skip(f"{name} unavailable: {why}")
    if name in spec.xfail:
        request.applymarker(pytest.mark.xfail(reason=f"{name}: {spec.xfail[name]}", strict=True))
    else:
        listed = _listed_divergence(request.node, name)
        if listed is not None:
            request.applymarker(pytest.mark.xfail(reason=listed, strict=True))
    return tgt


def _listed_divergence(node: pytest.Item, target: str) -> str | None:
    """The reason the nearest ``expectations/<target>.toml`` gives for this case (its
    node id without the target, relative to the corpus root), as for ``.pkt`` cases.
    A strict xfail: a listed case that passes is reported, as an xpass would be."""
    from .expectations import nearest  # noqa: PLC0415 -- only cases in a corpus need it

    expectations = nearest(node.path, target)
    entry = None if expectations is None else expectations.match(case_name(node), Verdict.FAIL)
    return None if entry is None else entry.reason


@pytest.fixture
def case_config(request: pytest.FixtureRequest) -> CaseConfig:
    """The case's configuration: named by :func:`case_name`, with the case's sysctls."""
    spec = spec_of(getattr(request, "function", None))
    target_name = getattr(getattr(request.node, "callspec", None), "params", {}).get("target", "")
    onload = "onload" in getattr(get_target(target_name), "features", frozenset()) if target_name else False
    return CaseConfig(
        name=case_name(request.node), sysctls=spec.sysctls, ef_options=spec.ef_options if onload else ()
    )


def case_name(node: pytest.Item) -> str:
    """The case's name in results: its node id without the target (so the same case
    on two targets lines up in the parity matrix); other parameters stay."""
    name = node.nodeid
    callspec = getattr(node, "callspec", None)
    if callspec is None or "target" not in callspec.params or not name.endswith("]"):
        return name
    base = name[: name.rfind("[")]
    rest = [part for part in callspec.id.split("-") if part != callspec.params["target"]]
    return f"{base}[{'-'.join(rest)}]" if rest else base


@pytest.fixture
def session(target: Target, case_config: CaseConfig) -> Iterator[Session]:
    """The case's session on ``target``, always closed; a setting the target cannot
    apply skips the case with the reason."""
    from .targets.linux import SettingError  # noqa: PLC0415

    try:
        opened = target.open(case_config)
    except (UnsupportedSettingError, SettingError) as e:
        pytest.skip(f"{target.name}: {e}")
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture(name="case")
def case_fixture(
    request: pytest.FixtureRequest, session: Session, target: Target, case_config: CaseConfig
) -> Case:
    """The :class:`Case` (clock, raw packets, flows, trace) of this test on this target."""
    made = Case(session, case_config, target.name)
    request.node.stash[_CASE_KEY] = made
    return made


@pytest.fixture
def dut(case: Case) -> Dut:
    return Dut(case)


@pytest.fixture
def conn(case: Case) -> TcpConnection:
    """A TCP flow of the bench (not connected yet: ``dut.establish(conn)`` or
    ``conn.connect_to(port)``)."""
    return case.tcp()


@pytest.fixture
def udp(case: Case) -> UdpFlow:
    return case.udp()


@pytest.hookimpl(wrapper=True, tryfirst=True)  # outermost: sees the report after xfail handling
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the case's :class:`CaseResult` to the call report, where
    ``conformance.pytest_plugin`` collects it (``--conformance-json``), and write its
    pcap (``--conformance-pcap-dir``)."""
    report = yield
    made = item.stash.get(_CASE_KEY, None)
    if made is None or report.when != "call":
        return report
    longrepr = "" if report.passed else str(report.longrepr)
    if hasattr(report, "wasxfail"):
        verdict = Verdict.XFAIL if report.skipped else Verdict.XPASS
    elif longrepr.startswith("[XPASS(strict)]"):
        verdict = Verdict.XPASS
    elif report.passed:
        verdict = Verdict.PASS
    elif report.skipped:
        verdict = Verdict.SKIP
    else:
        verdict = Verdict.FAIL
    result = made.result(verdict, longrepr[-2000:], report.duration)
    if call.excinfo is not None and verdict in (Verdict.FAIL, Verdict.XFAIL):
        result.mismatch = _mismatch(item, call.excinfo)
        result.reason = result.mismatch.message
    report.user_properties.append((_PROPERTY, json.dumps(result.to_json())))
    try:
        pcap_dir = item.config.getoption("conformance_pcap_dir")
    except ValueError:
        pcap_dir = None
    if pcap_dir:
        from .pcap import pcap_name, write_pcap  # noqa: PLC0415

        Path(pcap_dir).mkdir(parents=True, exist_ok=True)
        write_pcap(result, Path(pcap_dir) / pcap_name(made.config.name, made.target))
    return report


def _mismatch(item: pytest.Item, excinfo: pytest.ExceptionInfo[BaseException]) -> Mismatch:
    """The first mismatch of a failed case: the line of the case that failed, the
    message, and for a wire expectation the template, the closest packet and its diff."""
    line = 0
    for entry in excinfo.traceback:
        if Path(entry.path) == item.path:
            line = entry.lineno + 1
    exc = excinfo.value
    message = (str(exc).splitlines() or [type(exc).__name__])[0]
    if isinstance(exc, ExpectationFailed):
        actual = None if exc.closest is None else describe(exc.closest)
        return Mismatch(line, 0, message, exc.expected or None, actual, list(exc.diffs))
    return Mismatch(line, 0, f"{type(exc).__name__}: {message}")
