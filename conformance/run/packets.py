"""Script packets <-> live packets, with scapy (GRAMMAR.md §3, §3.1, §3.2).

The oracle builds and parses with scapy only.  A :class:`Flow` keeps the
script-space/live-space mapping of the socket under test: ports, both ISNs and the
timestamp map (script TS val -> live TS val of outbound packets).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from scapy.layers.inet import ICMP, IP, TCP, UDP, in4_chksum
from scapy.packet import Raw
from scapy.utils import checksum

from ..results import FieldDiff
from ..script import syntax as sx
from .fragments import fragment
from .igmp import build_igmp
from .options import RunOptions

MASK = 0xFFFFFFFF


class ScriptRuntimeError(Exception):
    """The script asks for something impossible at run time (an error verdict)."""


@dataclass
class Flow:
    """The socket under test's mapping between script space and live space."""

    local_port: int | None = None
    remote_port: int = 40000
    local_isn: int | None = None
    # packetdrill keeps the remote end's numbers as the script writes them (its live
    # ISN is the script's), so inbound seq and outbound ack are absolute.  A SYN from
    # the script starts a new connection (the next bench port) only when the flow has
    # none yet or its connection was reset; otherwise it belongs to the connection
    # (a SYN retransmission, a simultaneous open, a SYN in a synchronized state).
    syn_seen: bool = False
    reset_seen: bool = False
    remote_next: int = 0  # live sequence number after the last inbound octet
    ts_map: dict[int, int] = field(default_factory=dict)
    ip_ids: dict[int, int] = field(default_factory=dict)  # script IP ID -> live ID (outbound)

    def live_ack(self, script_ack: int) -> int:
        """The live number for a script ack: relative to the stack's ISN once a SYN from
        it was seen, absolute before (as packetdrill, whose unknown ISN counts as 0):
        segments to a closed port or a listener carry whatever ACK the script says."""
        if self.local_isn is None:
            return script_ack & MASK
        return (script_ack + self.local_isn) & MASK


def _ip_fields(info: sx.IpInfo | None) -> dict[str, int]:
    fields: dict[str, int] = {}
    if info is None:
        return fields
    if info.tos is not None:
        fields["tos"] = info.tos
    if info.ecn is not None and info.ecn.codepoint is not None:
        fields["tos"] = (fields.get("tos", 0) & ~3) | info.ecn.codepoint
    if info.ttl is not None:
        fields["ttl"] = info.ttl
    return fields


def _tcp_options_in(opts: tuple[sx.TcpOptionSpec, ...], flow: Flow) -> list[tuple[object, object]]:
    out: list[tuple[object, object]] = []
    for o in opts:
        if isinstance(o, sx.NopOption):
            out.append(("NOP", None))
        elif isinstance(o, sx.EolOption):
            out.append(("EOL", None))
        elif isinstance(o, sx.MssOption):
            out.append(("MSS", o.mss))
        elif isinstance(o, sx.WscaleOption):
            out.append(("WScale", o.shift))
        elif isinstance(o, sx.SackOkOption):
            out.append(("SAckOK", b""))
        elif isinstance(o, sx.SackOption):
            edges: list[int] = []
            for b in o.blocks:
                edges += [flow.live_ack(b.left), flow.live_ack(b.right)]
            out.append(("SAck", tuple(edges)))
        elif isinstance(o, sx.TimestampOption):
            ecr = o.ecr
            if ecr != 0:
                if ecr not in flow.ts_map:
                    raise ScriptRuntimeError(f"TS ecr {ecr} echoes no TS val of an earlier outbound packet")
                ecr = flow.ts_map[ecr]
            out.append(("Timestamp", (o.val, ecr)))
        elif isinstance(o, sx.FastOpenOption):
            out.append((34, o.cookie))
        elif isinstance(o, sx.FastOpenExpOption):
            out.append((254, b"\xf9\x89" + o.cookie))
        else:
            raise ScriptRuntimeError(f"inbound option {type(o).__name__} is not supported by the injector")
    return out


def build_inbound(event: sx.PacketEvent, flow: Flow, opts: RunOptions) -> bytes:
    """The live IPv4 datagram (or fragment of one) for an inbound (``<``) packet line."""
    info = event.ip_info
    packet = _build_datagram(event, flow, opts)
    if info is not None and info.is_fragment:
        packet = fragment(packet, info)
    return packet


def _build_datagram(event: sx.PacketEvent, flow: Flow, opts: RunOptions) -> bytes:
    info = event.ip_info
    body = event.body
    if isinstance(body, sx.IgmpBody):
        packet = build_igmp(body, info, opts)
        return packet if info is None or info.ip_id is None else _with_id(packet, info.ip_id)
    src = info.src if info is not None and info.src else opts.remote_ip
    dst = info.dst if info is not None and info.dst else opts.local_ip
    ip = IP(src=src, dst=dst)
    for name, value in _ip_fields(info).items():
        setattr(ip, name, value)
    if info is not None and info.ip_id is not None:
        ip.id = info.ip_id
    if info is not None and info.df:
        ip.flags = "DF"
    if isinstance(body, sx.TcpBody):
        return _build_tcp(event, body, flow, opts, ip)
    if isinstance(body, sx.UdpBody):
        sport, dport = (
            (event.ports.src, event.ports.dst) if event.ports else (flow.remote_port, opts.bind_port)
        )
        return bytes(ip / UDP(sport=sport, dport=dport) / Raw(bytes(body.length)))
    if isinstance(body, sx.IcmpBody):
        return _build_icmp(body, flow, opts, ip)
    raise ScriptRuntimeError(f"inbound {type(body).__name__} packets are not supported")


def _build_tcp(event: sx.PacketEvent, body: sx.TcpBody, flow: Flow, opts: RunOptions, ip: IP) -> bytes:
    flags = body.flag_bits
    if body.win is None:
        raise ScriptRuntimeError("an inbound packet needs its window (win N)")
    if isinstance(body.options, sx.AnyOptions):
        raise ScriptRuntimeError("<...> is only allowed on outbound packets")
    seq = body.seq_start & MASK
    if flags & 0x02 and not flags & 0x10:  # a SYN without ACK
        if event.ports is not None:
            flow.remote_port = event.ports.src
            flow.syn_seen, flow.reset_seen = True, False
        elif not flow.syn_seen or flow.reset_seen:
            flow.remote_port += 1  # a new connection from the next bench port
            flow.syn_seen, flow.reset_seen = True, False
    if flags & 0x04 and event.ports is None:
        flow.reset_seen = True
    ack = flow.live_ack(body.ack) if body.ack is not None else 0
    sport, dport = (
        (event.ports.src, event.ports.dst)
        if event.ports
        else (
            flow.remote_port,
            flow.local_port if flow.local_port is not None else opts.bind_port,
        )
    )
    tcp = TCP(
        sport=sport,
        dport=dport,
        flags=flags & 0x1FF,
        seq=seq,
        ack=ack,
        window=body.win,
        urgptr=body.urg or 0,
        options=_tcp_options_in(body.options or (), flow),
    )
    packet = ip / tcp
    if body.seq_len:
        packet = packet / Raw(bytes(body.seq_len))
    if event.ports is None:
        flow.remote_next = max(flow.remote_next, (seq + body.seq_len + (1 if flags & 3 else 0)) & MASK)
    return bytes(packet)


def _build_icmp(body: sx.IcmpBody, flow: Flow, opts: RunOptions, ip: IP) -> bytes:
    """An ICMP error about the socket under test: the quoted datagram is a packet the
    stack could have sent (our local address and ports, the echoed sequence range)."""
    icmp = ICMP(type=body.type_num, code=body.code_num if body.code is not None else 0)
    if body.mtu is not None:
        icmp.nexthopmtu = body.mtu
    quoted_ip = IP(src=opts.local_ip, dst=opts.remote_ip)
    echoed = body.echoed
    local_port = flow.local_port if flow.local_port is not None else opts.bind_port
    if isinstance(echoed, sx.EchoedTcp):
        seq = flow.live_ack(echoed.seq_start)
        quoted = (
            quoted_ip
            / TCP(sport=local_port, dport=flow.remote_port, seq=seq, flags="A")
            / Raw(bytes(echoed.seq_len))
        )
    elif isinstance(echoed, sx.EchoedUdp):
        quoted = quoted_ip / UDP(sport=local_port, dport=flow.remote_port) / Raw(bytes(echoed.length))
    else:
        length = echoed.length if isinstance(echoed, sx.EchoedRaw) else 0
        quoted = quoted_ip / TCP(sport=local_port, dport=flow.remote_port, flags="A") / Raw(bytes(length))
    return bytes(ip / icmp / bytes(quoted))


def _with_id(packet: bytes, ip_id: int) -> bytes:
    ip = IP(packet)
    ip.id = ip_id
    ip.chksum = None
    return bytes(ip)


# --- outbound ----------------------------------------------------------------------------


def accepts(packet: bytes, action: sx.PacketEvent, flow: Flow, opts: RunOptions) -> bool:
    """Whether a sniffed packet is a candidate for an outbound line (others are ignored).

    A line that names its addresses (``(dst 239.1.2.3)``) or expects IGMP takes
    packets from the DUT to that address (any address for IGMP without ``dst``);
    other lines take the socket under test's packets (:func:`is_flow_packet`)."""
    info = action.ip_info
    explicit_dst = info.dst if info is not None else None
    if isinstance(action.body, sx.IgmpBody) or explicit_dst is not None:
        ip = IP(packet)
        src = info.src if info is not None and info.src else opts.local_ip
        if ip.src != src or (explicit_dst is not None and ip.dst != explicit_dst):
            return False
        return not isinstance(action.body, sx.IgmpBody) or ip.proto == 2
    return is_flow_packet(packet, flow, opts)


def checksum_diffs(packet: bytes) -> list[FieldDiff]:
    """RFC 791 §3.1 / RFC 9293 §3.1 (MUST-2) / RFC 768: the checksums a sender must
    compute, verified on every packet a line matches.  The transport checksum of a
    fragment covers the whole datagram, so only the IP header's is checked there;
    a UDP checksum of 0 means "none" (RFC 768)."""
    ip = IP(packet)
    header_len = ip.ihl * 4
    diffs: list[FieldDiff] = []
    if checksum(packet[:header_len]) != 0:
        diffs.append(FieldDiff("ip.checksum", "valid", f"0x{ip.chksum:04x} (invalid)"))
    if int(ip.flags) & 0x1 or int(ip.frag):
        return diffs
    segment = packet[header_len : ip.len]
    if ip.proto in (6, 17):
        if ip.proto == 17 and len(segment) >= 8 and segment[6:8] == b"\0\0":
            return diffs
        if in4_chksum(ip.proto, ip, segment) != 0:
            name = "tcp.checksum" if ip.proto == 6 else "udp.checksum"
            diffs.append(FieldDiff(name, "valid", "invalid"))
    elif ip.proto == 1 and checksum(segment) != 0:
        diffs.append(FieldDiff("icmp.checksum", "valid", "invalid"))
    return diffs


def ip_diffs(action: sx.PacketEvent, packet: bytes, flow: Flow) -> list[FieldDiff]:
    """The IP-level checks an outbound line asks for (extension fields, plus TOS and
    TTL for non-TCP lines: TCP lines check those in :func:`match_tcp`)."""
    info = action.ip_info
    ip = IP(packet)
    diffs: list[FieldDiff] = []
    is_fragment = bool(int(ip.flags) & 0x1) or int(ip.frag) != 0
    if (info is None or not info.is_fragment) and is_fragment:
        diffs.append(FieldDiff("ip.fragment", "a whole datagram", f"a fragment at offset {int(ip.frag) * 8}"))
    if info is None:
        return diffs
    if info.src is not None and ip.src != info.src:
        diffs.append(FieldDiff("ip.src", info.src, str(ip.src)))
    if info.dst is not None and ip.dst != info.dst:
        diffs.append(FieldDiff("ip.dst", info.dst, str(ip.dst)))
    if info.df is not None and bool(int(ip.flags) & 0x2) != info.df:
        diffs.append(FieldDiff("ip.df", "1" if info.df else "0", "0" if info.df else "1"))
    if info.ip_id is not None:
        taken = {v: k for k, v in flow.ip_ids.items()}
        if info.ip_id not in flow.ip_ids and int(ip.id) in taken:
            # Different script IDs name different datagrams: their live IDs differ too.
            diffs.append(
                FieldDiff("ip.id", f"{info.ip_id} (a new ID)", f"{ip.id} (script id {taken[int(ip.id)]})")
            )
        live = flow.ip_ids.setdefault(info.ip_id, int(ip.id))
        if int(ip.id) != live:
            diffs.append(FieldDiff("ip.id", f"{info.ip_id} (live {live})", str(ip.id)))
    if not isinstance(action.body, sx.TcpBody):
        fields = _ip_fields(info)
        if "tos" in fields and ip.tos != fields["tos"]:
            diffs.append(FieldDiff("ip.tos", hex(fields["tos"]), hex(ip.tos)))
        if "ttl" in fields and ip.ttl != fields["ttl"]:
            diffs.append(FieldDiff("ip.ttl", str(fields["ttl"]), str(ip.ttl)))
    return diffs


def is_flow_packet(packet: bytes, flow: Flow, opts: RunOptions) -> bool:
    """Whether a sniffed packet belongs to the socket under test (others are ignored)."""
    ip = IP(packet)
    if ip.src != opts.local_ip or ip.dst != opts.remote_ip:
        return False
    if TCP not in ip:
        return True
    tcp = ip[TCP]
    if flow.local_port is not None and tcp.sport != flow.local_port:
        return False
    return bool(tcp.dport == flow.remote_port or flow.local_port is None)


def _option_diffs(
    expected: tuple[sx.TcpOptionSpec, ...], actual: list[tuple[object, object]], flow: Flow, opts: RunOptions
) -> list[FieldDiff]:
    names = {
        sx.NopOption: "NOP",
        sx.EolOption: "EOL",
        sx.MssOption: "MSS",
        sx.WscaleOption: "WScale",
        sx.SackOkOption: "SAckOK",
        sx.SackOption: "SAck",
        sx.TimestampOption: "Timestamp",
    }
    want = [names.get(type(o), type(o).__name__) for o in expected]
    got = [str(k) for k, _ in actual]
    if want != got:
        return [FieldDiff("tcp.options", ",".join(want) or "(none)", ",".join(got) or "(none)")]
    diffs: list[FieldDiff] = []
    for spec, (_name, value) in zip(expected, actual, strict=True):
        if isinstance(spec, sx.MssOption) and value != spec.mss:
            diffs.append(FieldDiff("tcp.options.mss", str(spec.mss), str(value)))
        elif isinstance(spec, sx.WscaleOption) and value != spec.shift:
            diffs.append(FieldDiff("tcp.options.wscale", str(spec.shift), str(value)))
        elif isinstance(spec, sx.SackOption):
            live = tuple(value) if isinstance(value, tuple) else ()
            script = tuple(e & MASK for e in live)
            want_edges = tuple(x for b in spec.blocks for x in (b.left, b.right))
            if script != want_edges:
                diffs.append(FieldDiff("tcp.options.sack", str(want_edges), str(script)))
        elif isinstance(spec, sx.TimestampOption):
            assert isinstance(value, tuple)
            tsval, tsecr = int(value[0]), int(value[1])
            if tsecr != spec.ecr & MASK:  # the echo is the peer's TS val, as the script sent it
                diffs.append(FieldDiff("tcp.options.ts_ecr", str(spec.ecr), str(tsecr)))
            if not flow.ts_map:
                flow.ts_map[spec.val] = tsval
            elif opts.tcp_ts_tick_usecs:
                first_script, first_live = next(iter(flow.ts_map.items()))
                expect = (first_live + spec.val - first_script) & MASK
                if abs(((tsval - expect + (1 << 31)) & MASK) - (1 << 31)) > 1:
                    diffs.append(FieldDiff("tcp.options.ts_val", str(expect), str(tsval)))
            flow.ts_map[spec.val] = tsval
    return diffs


def match_tcp(
    body: sx.TcpBody, segments: list[bytes], flow: Flow, opts: RunOptions, ip_info: sx.IpInfo | None
) -> list[FieldDiff]:
    """Compare one scripted outbound segment with the live segment(s) that make it up
    (several when aggregating TSO-split data, GRAMMAR.md §3.2)."""
    ips = [IP(p) for p in segments]
    tcps = [ip[TCP] for ip in ips]
    first = tcps[0]
    diffs: list[FieldDiff] = []
    flags = int(first.flags) | (first.reserved << 9 if hasattr(first, "reserved") else 0)
    for t in tcps[1:]:
        flags |= int(t.flags) & 0x09  # PSH and FIN may sit on the last piece
    if flags & 0x1FF != body.flag_bits:
        diffs.append(FieldDiff("tcp.flags", body.flags or "-", str(first.flags) or "-"))
    if body.flag_bits & 0x04:
        flow.reset_seen = True
    if body.flag_bits & 0x02:
        flow.local_isn = (first.seq - body.seq_start) & MASK
        flow.local_port = first.sport
        flow.remote_port = first.dport
        flow.syn_seen = True
    elif flow.local_isn is None:
        # A reset for a connection that never existed (§3.10.7.1: <SEQ=0> or
        # <SEQ=SEG.ACK>) comes before any SYN from the stack: its numbers are absolute.
        if not body.flag_bits & 0x04:
            raise ScriptRuntimeError("an outbound non-SYN segment before the stack's ISN is known")
        if first.seq != body.seq_start & MASK:
            diffs.append(FieldDiff("tcp.seq", str(body.seq_start), str(first.seq)))
    else:
        expect = (body.seq_start + flow.local_isn) & MASK
        # RFC 9293 §3.10.7.1 <SEQ=0><ACK=..><RST,ACK> (R0) carries an absolute 0,
        # whatever the ISN: a reset scripted at seq 0 also matches a live 0.
        absolute_zero = body.flag_bits & 0x04 and body.seq_start == 0 and first.seq == 0
        if first.seq != expect and not absolute_zero:
            diffs.append(FieldDiff("tcp.seq", str(body.seq_start), str((first.seq - flow.local_isn) & MASK)))
    if body.ack is not None and body.flag_bits & 0x10 and first.ack != body.ack & MASK:
        diffs.append(FieldDiff("tcp.ack", str(body.ack), str(first.ack)))
    if body.win is not None and first.window != body.win:
        diffs.append(FieldDiff("tcp.win", str(body.win), str(first.window)))
    if body.urg is not None and first.urgptr != body.urg:
        diffs.append(FieldDiff("tcp.urg", str(body.urg), str(first.urgptr)))
    length = sum(len(bytes(t.payload)) for t in tcps)
    if length != body.seq_len:
        diffs.append(FieldDiff("tcp.payload_length", str(body.seq_len), str(length)))
    if not isinstance(body.options, sx.AnyOptions):
        diffs += _option_diffs(body.options or (), list(first.options), flow, opts)
    fields = _ip_fields(ip_info)
    if "tos" in fields and ips[0].tos != fields["tos"]:
        diffs.append(FieldDiff("ip.tos", hex(fields["tos"]), hex(ips[0].tos)))
    if "ttl" in fields and ips[0].ttl != fields["ttl"]:
        diffs.append(FieldDiff("ip.ttl", str(fields["ttl"]), str(ips[0].ttl)))
    return diffs


def match_udp(body: sx.UdpBody, packet: bytes, ports: sx.Ports | None) -> list[FieldDiff]:
    """An outbound ``udp(N)`` line: protocol, payload length, ports when written."""
    ip = IP(packet)
    if UDP not in ip:
        return [FieldDiff("ip.protocol", "udp", str(ip.proto))]
    udp = ip[UDP]
    diffs = []
    if len(bytes(udp.payload)) != body.length:
        diffs.append(FieldDiff("udp.length", str(body.length), str(len(bytes(udp.payload)))))
    if ports is not None and (udp.sport, udp.dport) != (ports.src, ports.dst):
        diffs.append(FieldDiff("udp.ports", f"{ports.src}>{ports.dst}", f"{udp.sport}>{udp.dport}"))
    return diffs


def match_icmp(body: sx.IcmpBody, packet: bytes) -> list[FieldDiff]:
    """An outbound ``icmp TYPE [CODE] [mtu N]`` line: type, code and MTU as written."""
    ip = IP(packet)
    if ICMP not in ip:
        return [FieldDiff("ip.protocol", "icmp", str(ip.proto))]
    icmp = ip[ICMP]
    diffs = []
    if icmp.type != body.type_num:
        diffs.append(FieldDiff("icmp.type", str(body.type_num), str(icmp.type)))
    if body.code is not None and icmp.code != body.code_num:
        diffs.append(FieldDiff("icmp.code", str(body.code_num), str(icmp.code)))
    if body.mtu is not None and icmp.nexthopmtu != body.mtu:
        diffs.append(FieldDiff("icmp.mtu", str(body.mtu), str(icmp.nexthopmtu)))
    return diffs


def describe(packet: bytes) -> str:
    """A one-line, tcpdump-like rendering of a live packet."""
    ip = IP(packet)
    if TCP in ip:
        t = ip[TCP]
        opts = ",".join(f"{k} {v}" if v not in (None, b"") else str(k) for k, v in t.options)
        return (
            f"{ip.src}:{t.sport} > {ip.dst}:{t.dport} {t.flags} seq {t.seq} ack {t.ack} "
            f"win {t.window} len {len(bytes(t.payload))}" + (f" <{opts}>" if opts else "")
        )
    return ip.summary()
