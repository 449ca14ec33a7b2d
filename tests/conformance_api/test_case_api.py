"""The case API itself: templates and diffs, flow state, the expect family, timeouts
and DUT errors.

The first part runs on a scripted in-memory session (exact packets, exact times);
the second on every target through the fixtures (``dut``, ``conn``, ``case``...).
"""

from __future__ import annotations

import errno
import json
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.packet import Raw

from conformance.case_api import (
    Case,
    CaseSpec,
    Dut,
    DutError,
    DutTimeoutError,
    ExpectationFailed,
    TcpConnection,
    UdpFlow,
    case,
    describe,
    match,
    spec_of,
)
from conformance.pcap import write_pcap
from conformance.results import CaseResult, Verdict
from conformance.target import Call, CallResult, Captured, CaseConfig, Setting

DUT_IP, BENCH_IP = "192.168.0.1", "192.0.2.1"


# --- a scripted session ---------------------------------------------------------------


class ScriptedSession:
    """The Session interface over a fixed list of outbound packets; time jumps."""

    def __init__(self, out: list[Captured] | None = None) -> None:
        self.t = 0.0
        self.out = list(out or [])
        self.injected: list[bytes] = []
        self.results: dict[str, CallResult] = {}

    def now(self) -> float:
        return self.t

    def sleep_until(self, t: float) -> None:
        self.t = max(self.t, t)

    def inject(self, ip_packet: bytes) -> None:
        self.injected.append(ip_packet)

    def sniff(self, deadline: float) -> Captured | None:
        if self.out and self.out[0].time <= deadline:
            got = self.out.pop(0)
            self.t = max(self.t, got.time)
            return got
        self.t = max(self.t, deadline)
        return None

    def syscall(self, name: str, args: tuple[object, ...]) -> Call:
        call = Call(name, args, self.t)
        if name in self.results:
            call.finish(self.results[name], self.t)
        return call

    def wait(self, call: Call, deadline: float) -> bool:
        if not call.done:
            self.t = max(self.t, deadline)
        return call.done

    def apply(self, setting: Setting) -> tuple[bool, str]:
        return True, ""

    def close(self) -> None:
        pass


def seg(t: float, flags: str, seq: int, ack: int = 0, payload: bytes = b"", **kw: object) -> Captured:
    """A segment the DUT (port 8080) sent to the bench (port 40000) at time ``t``."""
    ports = {"sport": 8080, "dport": 40000}
    ports.update({k: v for k, v in kw.items() if k in ("sport", "dport")})
    extra = {k: v for k, v in kw.items() if k not in ("sport", "dport")}
    pkt = IP(src=DUT_IP, dst=BENCH_IP) / TCP(flags=flags, seq=seq, ack=ack, **ports, **extra)  # type: ignore[arg-type]
    return Captured(t, bytes(pkt / Raw(payload) if payload else pkt))


def scripted(*out: Captured) -> tuple[Case, ScriptedSession]:
    s = ScriptedSession(list(out))
    return Case(s, CaseConfig(name="scripted"), "scripted"), s


def established(*out: Captured) -> tuple[TcpConnection, ScriptedSession]:
    """A flow whose state is as after a handshake: DUT ISN 5000, bench ISN 1000000."""
    c, s = scripted(seg(0.0, "SA", 5000, 1_000_001), *out)
    conn = c.tcp(dut_port=8080)
    conn.send("S", options=[])
    conn.expect(flags="SA")
    conn.send("A")
    return conn, s


def parsed(raw: bytes) -> IP:
    return IP(raw)


# --- templates and diffs ----------------------------------------------------------------


def test_dict_templates_compare_only_the_fields_given() -> None:
    pkt = parsed(seg(0, "A", 7, 9, b"hi", window=100).packet)
    assert match({}, pkt) == []
    assert match(None, pkt) == []
    assert match({"seq": 7, "window": 100}, pkt) == []
    diffs = match({"seq": 8, "ack": 9, "window": 101}, pkt)
    assert [(d.name, d.expected, d.actual) for d in diffs] == [("seq", "8", "7"), ("window", "101", "100")]


def test_flags_compare_exactly_and_render_as_letters() -> None:
    pkt = parsed(seg(0, "PA", 1, 1, b"x").packet)
    assert match({"flags": "PA"}, pkt) == []
    assert match({"flags": 0x18}, pkt) == []
    (diff,) = match({"flags": "A"}, pkt)
    assert (diff.name, diff.expected, diff.actual) == ("flags", "A", "PA")


def test_scapy_templates_use_the_fields_set_explicitly() -> None:
    pkt = parsed(seg(0, "SA", 5, 6, options=[("MSS", 1460)]).packet)
    assert match(TCP(flags="SA"), pkt) == []
    assert match(TCP(flags="SA", ack=6), pkt) == []
    assert [d.name for d in match(TCP(flags="S", window=1), pkt)] == ["flags", "window"]
    assert match(IP(src=DUT_IP) / TCP(flags="SA"), pkt) == []
    assert [d.name for d in match(IP(ttl=1) / TCP(), pkt)] == ["ip.ttl"]
    data = parsed(seg(0, "PA", 5, 6, b"abc").packet)
    assert match(TCP(flags="PA") / Raw(b"abc"), data) == []
    assert [d.name for d in match(TCP() / Raw(b"abd"), data)] == ["payload"]


def test_payload_length_predicates_and_layer_prefixes() -> None:
    pkt = parsed(seg(0, "PA", 1, 1, b"x" * 10).packet)
    assert match({"payload": b"x" * 10, "payload_len": 10}, pkt) == []
    assert match({"window": lambda w: w > 0, "ip.ttl": 64, "tcp.sport": 8080}, pkt) == []

    def small(n: int) -> bool:
        """fewer than 5 octets"""
        return n < 5

    (diff,) = match({"payload_len": small}, pkt)
    assert (diff.expected, diff.actual) == ("fewer than 5 octets", "10")


def test_options_as_a_list_are_exact_as_a_dict_partial() -> None:
    pkt = parsed(seg(0, "SA", 1, 1, options=[("MSS", 1460), ("WScale", 7)]).packet)
    assert match({"options": [("MSS", 1460), ("WScale", 7)]}, pkt) == []  # trailing EOL ignored
    assert match({"options": {"MSS": 1460}}, pkt) == []
    assert match({"options": {"WScale": None}}, pkt) == []
    assert [d.name for d in match({"options": [("MSS", 1460)]}, pkt)] == ["options"]
    assert [d.name for d in match({"options": {"SAckOK": None}}, pkt)] == ["options"]


def test_udp_templates() -> None:
    pkt = IP(src=DUT_IP, dst=BENCH_IP) / UDP(sport=53, dport=40000) / Raw(b"dns")
    pkt = IP(bytes(pkt))
    assert match({"sport": 53, "payload": b"dns"}, pkt, layer=UDP) == []
    assert [d.name for d in match({"dport": 1}, pkt, layer=UDP)] == ["dport"]
    assert [d.actual for d in match({"flags": "A"}, pkt)] == ["(no TCP layer)"]


def test_enumerated_fields_take_scapy_names() -> None:
    err = IP(bytes(IP(src=DUT_IP, dst=BENCH_IP) / ICMP(type=3, code=3)))
    unreachable = {"ip.proto": "icmp", "icmp.type": "dest-unreach", "icmp.code": "port-unreachable"}
    assert match(unreachable, err) == []
    diffs = match({"ip.proto": "tcp", "icmp.type": "echo-reply", "ip.flags": "DF"}, err)
    assert [(d.name, d.expected, d.actual) for d in diffs] == [
        ("ip.proto", "tcp", "icmp"),
        ("icmp.type", "echo-reply", "dest-unreach"),
        ("ip.flags", "DF", "-"),
    ]


def test_a_misspelt_field_is_an_error_not_a_wildcard() -> None:
    pkt = parsed(seg(0, "A", 1).packet)
    with pytest.raises(ValueError, match="'flag' is not a TCP field"):
        match({"flag": "A"}, pkt)
    with pytest.raises(ValueError, match="unknown layer 'eth'"):
        match({"eth.src": "x"}, pkt)
    with pytest.raises(TypeError):
        match(42, pkt)  # type: ignore[arg-type]


# --- the expect family on a scripted session --------------------------------------------


def test_expect_passes_over_packets_that_do_not_match() -> None:
    conn, _ = established(seg(0.1, "PA", 5001, 1_000_001, b"one"), seg(0.2, "PA", 5004, 1_000_001, b"two"))
    got = conn.expect(payload=b"two")
    assert got.time == pytest.approx(0.2)
    assert [bytes(p[TCP].payload) for p in conn.received[1:]] == [b"one", b"two"]
    assert conn.ack == 5007  # tracked from both


def test_expect_failure_names_the_closest_candidate_field_by_field() -> None:
    conn, s = established(
        seg(0.1, "R", 5001), seg(0.2, "A", 5001, 1_000_002, window=5), seg(0.3, "FA", 5001, 1_000_001)
    )
    with pytest.raises(ExpectationFailed) as failed:
        conn.expect(flags="A", ack=1_000_001, timeout=0.5)
    err = failed.value
    assert s.t == pytest.approx(0.5)  # waited out the timeout in session time
    assert err.closest is not None and err.closest.time == pytest.approx(0.2)  # one field off; others two
    assert [(d.name, d.expected, d.actual) for d in err.diffs] == [
        ("ack", "1000001 (rel 1)", "1000002 (rel 2)")
    ]
    assert len(err.candidates) == 3
    text = str(err)
    assert "3 packet(s) of the flow, none matched" in text
    assert "closest (t=0.200000)" in text
    assert "all candidates:" in text


def test_expect_with_nothing_of_the_flow_says_so() -> None:
    conn, s = established(seg(0.1, "A", 1, sport=9999))
    with pytest.raises(ExpectationFailed, match=r"no packet of the flow arrived \(1 packets of other flows"):
        conn.expect(flags="F", timeout=0.3)
    assert s.t == pytest.approx(0.3)


def test_other_flows_keep_their_packets() -> None:
    c, _ = scripted(seg(0.1, "PA", 1, 1, b"for b", dport=40001), seg(0.2, "PA", 1, 1, b"for a"))
    a, b = c.tcp(dut_port=8080), c.tcp(dut_port=8080)
    assert (a.bench_port, b.bench_port) == (40000, 40001)
    assert bytes(a.expect()[TCP].payload) == b"for a"  # passed over b's packet...
    assert bytes(b.expect()[TCP].payload) == b"for b"  # ...which b still gets
    first, second = c.sniff_any(0), c.sniff_any(0)
    assert first is not None and second is not None
    assert bytes(first[TCP].payload) == b"for b" and bytes(second[TCP].payload) == b"for a"
    assert c.sniff_any(0.5) is None


def test_expect_next_must_match_the_very_next_packet() -> None:
    conn, _ = established(seg(0.1, "PA", 5001, 1_000_001, b"one"), seg(0.2, "PA", 5004, 1_000_001, b"two"))
    with pytest.raises(ExpectationFailed, match="expected next") as failed:
        conn.expect_next(payload=b"two")
    assert [d.name for d in failed.value.diffs] == ["payload"]
    assert bytes(conn.expect_next(payload=b"two")[TCP].payload) == b"two"  # "one" was consumed
    with pytest.raises(ExpectationFailed, match="no packet of the flow"):
        conn.expect_next(timeout=0.1)


def test_expect_none() -> None:
    conn, s = established(seg(0.5, "A", 5001, 1_000_001), seg(0.7, "PA", 5001, 1_000_001, b"x"))
    conn.expect_none(0.4)
    assert s.t == pytest.approx(0.4)  # silence lasts the whole period
    conn.expect_none(0.2, payload_len=lambda n: n > 0)  # the bare ACK at 0.5 does not count
    with pytest.raises(ExpectationFailed, match=r"got at 0\.700000") as failed:
        conn.expect_none(1.0)
    assert failed.value.closest is not None and bytes(failed.value.closest[TCP].payload) == b"x"


def test_template_and_keyword_fields_combine() -> None:
    conn, _ = established(seg(0.1, "PA", 5001, 1_000_001, b"x"))
    assert conn.expect({"flags": "PA"}, payload=b"x") is not None
    with pytest.raises(TypeError):
        conn.expect(TCP(flags="A"), payload=b"x")


# --- bench state and segments on a scripted session -------------------------------------


def test_send_fills_in_the_flow_and_tracks_the_sequence() -> None:
    conn, s = established()
    assert (conn.bench_isn, conn.seq, conn.dut_isn, conn.ack) == (1_000_000, 1_000_001, 5000, 5001)
    sent = parsed(s.injected[-1])
    assert (sent.src, sent.dst, sent[TCP].sport, sent[TCP].dport) == (BENCH_IP, DUT_IP, 40000, 8080)
    assert (str(sent[TCP].flags), sent[TCP].seq, sent[TCP].ack, sent[TCP].window) == (
        "A",
        1_000_001,
        5001,
        65535,
    )

    conn.send("PA", b"12345", window=100, ip={"ttl": 9})
    last = parsed(s.injected[-1])
    assert (last[TCP].seq, last[TCP].window, last.ttl, bytes(last[TCP].payload)) == (
        1_000_001,
        100,
        9,
        b"12345",
    )
    assert conn.seq == 1_000_006
    conn.send("PA", b"zz", seq=conn.seq + 10)  # out of order: no advance
    conn.send("R", seq=conn.seq)  # RST: no advance
    conn.send("S", seq=conn.seq, advance=None)  # a second SYN occupies nothing
    conn.send("PA", b"dropped", advance=False)
    assert conn.seq == 1_000_006
    conn.send("FA")
    assert conn.seq == 1_000_007


def test_dut_fin_and_data_advance_the_default_ack_rst_does_not() -> None:
    conn, _ = established(
        seg(0.1, "PA", 5001, 1_000_001, b"abc"), seg(0.2, "FA", 5004, 1_000_001), seg(0.3, "R", 9999)
    )
    conn.drain(1.0)
    assert conn.ack == 5005  # 3 octets and a FIN
    assert conn.dut_ack == 1_000_001


def test_send_before_the_dut_spoke_needs_an_explicit_ack() -> None:
    c, _ = scripted()
    conn = c.tcp(dut_port=80)
    with pytest.raises(RuntimeError, match="pass ack="):
        conn.send("A")
    conn.send("A", ack=1)
    with pytest.raises(RuntimeError, match="DUT port is unknown"):
        c.tcp().send("S")


def test_dut_errors_and_raw_results() -> None:
    c, s = scripted()
    dut = Dut(c)
    s.results["connect"] = CallResult(-1, errno.ECONNREFUSED)
    with pytest.raises(DutError) as refused:
        dut.connect(3, (BENCH_IP, 80))
    assert (refused.value.errno, refused.value.call) == (errno.ECONNREFUSED, "connect")
    assert "connect(3, ('192.0.2.1', 80)) failed: ECONNREFUSED" in str(refused.value)
    assert dut.call("connect", 3, (BENCH_IP, 80)) == CallResult(-1, errno.ECONNREFUSED)
    with pytest.raises(DutTimeoutError, match=r"accept\(3\) did not return within 0.25 s"):
        dut.accept(3, timeout=0.25)
    assert s.t == pytest.approx(0.25)


def test_case_decorator_records_the_spec() -> None:
    @case("RFC 5961 §4", sysctls={"net.ipv4.tcp_sack": "0"}, xfail={"refstack": "not yet"})
    def probe() -> None: ...

    spec = spec_of(probe)
    assert spec == CaseSpec("RFC 5961 §4", (("net.ipv4.tcp_sack", "0"),), {}, {"refstack": "not yet"})
    assert spec_of(test_udp_templates) == CaseSpec()
    with pytest.raises(ValueError, match="unknown target"):
        case(skip={"bsd": "no"})


def test_case_result_carries_the_trace_for_json_and_pcap(tmp_path: Path) -> None:
    conn, _ = established(seg(0.1, "PA", 5001, 1_000_001, b"x"))
    conn.expect(payload=b"x")
    result = conn.case.result(Verdict.PASS)
    kinds = [e.kind for e in result.trace]
    assert kinds == ["in", "out", "in", "out"]
    assert CaseResult.from_json(json.loads(json.dumps(result.to_json()))).trace == result.trace
    assert write_pcap(result, tmp_path / "x.pcap") == 4
    assert describe(parsed(result.trace[1].packet or b"")).startswith("192.168.0.1:8080 > 192.0.2.1:40000 SA")


# --- on every target --------------------------------------------------------------------


def test_handshake(case: Case, dut: Dut, conn: TcpConnection) -> None:
    lfd = dut.listen_tcp(8080)
    synack = conn.connect_to(8080)
    assert synack[TCP].ack == conn.bench_isn + 1 == conn.seq
    assert conn.dut_isn == synack[TCP].seq and conn.ack == synack[TCP].seq + 1
    assert match({"options": {"MSS": None}}, synack) == []
    fd, peer = dut.accept(lfd)
    assert peer == (case.remote_ip, conn.bench_port)
    assert fd != lfd
    assert dut.tcp_info(fd)["tcpi_state"] == 1  # ESTABLISHED


def test_active_open(case: Case, dut: Dut, conn: TcpConnection) -> None:
    fd = dut.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
    assert dut.connect_nonblocking(fd, (case.remote_ip, conn.bench_port)) == errno.EINPROGRESS
    syn = conn.accept()
    assert conn.dut_port == syn[TCP].sport and conn.dut_isn == syn[TCP].seq
    assert dut.poll([(fd, select.POLLOUT)], 1000) == [(fd, select.POLLOUT)]
    assert dut.so_error(fd) == 0
    assert dut.send(fd, b"hello") == 5
    conn.expect(flags="PA", seq=syn[TCP].seq + 1, ack=conn.seq, payload=b"hello")


def test_default_ack_acknowledges_what_the_dut_sent(dut: Dut, conn: TcpConnection) -> None:
    fd, _ = dut.establish(conn)
    before = conn.ack
    assert before is not None
    dut.send(fd, b"d" * 300)
    conn.expect(payload_len=300)
    assert conn.ack == before + 300
    conn.send("A")  # acknowledges all of it: nothing is retransmitted
    conn.expect_none(0.3)


def test_expect_on_a_target(case: Case, dut: Dut, conn: TcpConnection) -> None:
    fd, _ = dut.establish(conn)
    dut.setsockopt(fd, socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    dut.send(fd, b"first")
    dut.send(fd, b"second")
    with pytest.raises(ExpectationFailed) as failed:
        conn.expect_next(payload=b"second")
    assert [d.name for d in failed.value.diffs] == ["payload"]
    got = conn.expect_next(payload=b"second")
    assert got[TCP].seq == conn.dut_isn + 1 + 5  # type: ignore[operator]
    conn.send("A")  # (unacknowledged, they would be retransmitted after 200 ms)
    started = case.now()
    with pytest.raises(ExpectationFailed, match="no packet of the flow arrived"):
        conn.expect(flags="F", timeout=0.2)
    assert case.now() - started == pytest.approx(0.2, abs=0.05)


def test_expect_none_on_a_target(case: Case, dut: Dut, conn: TcpConnection, udp: UdpFlow) -> None:
    fd, _ = dut.establish(conn)
    ufd = dut.bind_udp(5000)
    dut.sendto(ufd, b"other flow", (case.remote_ip, udp.bench_port))
    started = case.now()
    conn.expect_none(0.2)  # the datagram belongs to another flow
    assert case.now() - started >= 0.2
    udp.expect(payload=b"other flow")
    dut.send(fd, b"x")
    with pytest.raises(ExpectationFailed, match="expected no packet"):
        conn.expect_none(0.2)


def test_dut_errnos(case: Case, dut: Dut, conn: TcpConnection) -> None:
    lfd = dut.listen_tcp(8080)
    with pytest.raises(DutError) as in_use:
        dut.listen_tcp(8080)
    assert in_use.value.errno == errno.EADDRINUSE and in_use.value.call == "bind"
    with pytest.raises(DutError) as bad:
        dut.close(999)
    assert bad.value.errno == errno.EBADF
    fd = dut.socket()
    assert dut.call("recv", fd, 10, 0).errno == errno.ENOTCONN
    # A connect the bench refuses: start it, answer its SYN with RST, collect the result.
    call = dut.start("connect", fd, (case.remote_ip, conn.bench_port))
    conn.expect(flags="S")
    conn.send("RA")
    refused = dut.finish(call)
    assert (refused.ret, refused.errno) == (-1, errno.ECONNREFUSED)
    nb = dut.socket()
    dut.set_nonblocking(nb)
    assert dut.fcntl(nb, 3) & 0o4000  # F_GETFL has O_NONBLOCK
    assert dut.close(lfd) == 0


def test_accept_times_out_with_a_clear_error(case: Case, dut: Dut) -> None:
    lfd = dut.listen_tcp(8080)
    started = case.now()
    with pytest.raises(DutTimeoutError, match=r"accept\(\d+\) did not return within 0.2 s of session time"):
        dut.accept(lfd, timeout=0.2)
    assert case.now() - started == pytest.approx(0.2, abs=0.05)


def test_nonblocking_recv_says_eagain(dut: Dut, conn: TcpConnection) -> None:
    fd, _ = dut.establish(conn)
    dut.set_nonblocking(fd)
    with pytest.raises(DutError) as empty:
        dut.recv(fd)
    assert empty.value.errno == errno.EAGAIN


def test_recv_dontwait_says_eagain(dut: Dut, conn: TcpConnection) -> None:
    fd, _ = dut.establish(conn)
    assert dut.call("recv", fd, 100, socket.MSG_DONTWAIT, timeout=0.2).errno == errno.EAGAIN


def test_udp_flow_and_raw_escape_hatches(case: Case, dut: Dut) -> None:
    fd = dut.bind_udp(7000)
    flow = case.udp(dut_port=7000)
    flow.send(b"ping")
    assert dut.recvfrom(fd) == (b"ping", (case.remote_ip, flow.bench_port))
    raw = IP(src=case.remote_ip, dst=case.local_ip) / UDP(sport=41000, dport=7000) / Raw(b"raw")
    case.inject(raw)
    assert dut.recvfrom(fd) == (b"raw", (case.remote_ip, 41000))
    dut.sendto(fd, b"pong", (case.remote_ip, 41000))
    got = case.sniff_any(1.0)
    assert got is not None and got[UDP].dport == 41000 and bytes(got[UDP].payload) == b"pong"


@case(skip={"linux": "real time: sleeping 30 s is the point of the refstack check"})
def test_refstack_time_is_virtual(case: Case, dut: Dut, conn: TcpConnection) -> None:
    fd, _ = dut.establish(conn)
    dut.send(fd, b"x")
    wall = time.monotonic()
    case.sleep(30.0)
    assert case.now() == pytest.approx(30.0, abs=1e-6)
    assert time.monotonic() - wall < 2.0
    retransmits = [p for p in conn.drain() if bytes(p[TCP].payload) == b"x"]
    assert len(retransmits) >= 5  # 0.2, 0.6, 1.4, 3.0, 6.2 ... s of exponential backoff


@case(sysctls={"net.ipv4.ip_default_ttl": "33"})
def test_case_sysctls_reach_the_target(dut: Dut, conn: TcpConnection) -> None:
    dut.listen_tcp(8080)
    assert conn.connect_to(8080).ttl == 33


def test_fixtures_give_one_session_per_target(case: Case, target: object) -> None:
    assert case.target == getattr(target, "name", None)
    assert case.config.name.endswith("::test_fixtures_give_one_session_per_target")  # no target
    assert (case.local_ip, case.remote_ip) == (DUT_IP, BENCH_IP)


def test_results_reach_the_conformance_json(tmp_path: Path) -> None:
    """A directory of Python cases with these fixtures feeds the plugin's JSON: one
    result per case and target, named without the target, with the first mismatch."""
    (tmp_path / "conftest.py").write_text(Path(__file__).with_name("conftest.py").read_text())
    (tmp_path / "test_cases.py").write_text(
        "from conformance.case_api import case\n"
        "def test_good(dut, conn):\n"
        "    dut.establish(conn)\n"
        "def test_bad(dut, conn):\n"
        "    fd, _ = dut.establish(conn)\n"
        "    dut.send(fd, b'hello')\n"
        "    conn.expect(flags='A', payload=b'hello', timeout=0.1)\n"
        "@case(xfail={'refstack': 'known'})\n"
        "def test_known(case):\n"
        "    assert False, 'diverges'\n"
    )
    out = tmp_path / "results.json"
    pytest_args = ["-q", "-p", "no:cacheprovider", "-p", "no:xdist", "--target", "refstack"]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", *pytest_args, "--conformance-json", str(out), str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 1, run.stdout + run.stderr  # test_bad fails
    results = {(r["case"], r["target"]): r for r in json.loads(out.read_text())["results"]}
    assert {(c.split("::")[1], t, r["verdict"]) for (c, t), r in results.items()} == {
        ("test_good", "refstack", "pass"),
        ("test_bad", "refstack", "fail"),
        ("test_known", "refstack", "xfail"),
    }
    bad = next(r for (c, _), r in results.items() if c.endswith("test_bad"))
    assert bad["mismatch"]["line"] == 7
    assert bad["mismatch"]["fields"] == [{"name": "flags", "expected": "A", "actual": "PA"}]
    assert any(e["kind"] == "out" and e["packet"] for e in bad["trace"])
