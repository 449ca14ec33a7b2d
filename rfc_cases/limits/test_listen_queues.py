"""Listen queues under load: the accept queue (listen backlog, net.core.somaxconn,
EF_ACCEPTQ_MAX_BACKLOG), the SYN queue (net.ipv4.tcp_max_syn_backlog,
EF_TCP_BACKLOG_MAX) and what happens when they overflow (net.ipv4.tcp_abort_on_overflow).

RFC 9293 §3.10.1 lets an OPEN fail for "insufficient resources" and §3.10.7.2 leaves
a listener free to drop what it cannot queue; Linux drops a SYN it has no room for
(no SYN-ACK: the peer retransmits), and drops the handshake's final ACK when the
accept queue is full (the SYN-ACK is retransmitted later), or answers it with a RST
under tcp_abort_on_overflow=1.  Each case needs several connections at once, so they
are Python cases (conformance/CASE_API.md).  Cases without a Linux equivalent
(EF_* options) run on refstack only.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import TypeVar

import pytest

from conformance.case_api import Case, Dut, TcpConnection, case, case_name, spec_of
from conformance.target import CaseConfig

PORT = 8080
SYN_OPTIONS = [("MSS", 1460)]
ONLOAD_ONLY = {"linux": "Onload EF_* option: no Linux equivalent"}

_F = TypeVar("_F", bound=Callable[..., object])


def ef(**options: int) -> Callable[[_F], _F]:
    """The case's EF_* options (refstack's Onload model)."""

    def mark(fn: _F) -> _F:
        fn.ef_options = tuple((k, str(v)) for k, v in options.items())  # type: ignore[attr-defined]
        return fn

    return mark


@pytest.fixture
def case_config(request: pytest.FixtureRequest) -> CaseConfig:
    """As conformance.case_api's, plus the EF_* options a case declares with @ef."""
    fn = getattr(request, "function", None)
    return CaseConfig(
        name=case_name(request.node),
        sysctls=spec_of(fn).sysctls,
        ef_options=getattr(fn, "ef_options", ()),
    )


def handshake(case: Case) -> TcpConnection:
    """A new bench flow that completes a handshake with the listener on PORT."""
    conn = case.tcp()
    conn.connect_to(PORT, options=SYN_OPTIONS)
    return conn


def syn_dropped(case: Case) -> TcpConnection:
    """A new bench flow whose SYN draws nothing."""
    conn = case.tcp(dut_port=PORT)
    conn.send("S", options=SYN_OPTIONS)
    conn.expect_none(0.3)
    return conn


def syn_again_answered(conn: TcpConnection) -> None:
    """The bench retransmits its SYN; now it is answered and the handshake completes."""
    conn.send("S", seq=conn.bench_isn, options=SYN_OPTIONS)
    conn.expect(flags="SA", ack=conn.seq)
    conn.send("A")


def listener(dut: Dut, backlog: int) -> int:
    fd = dut.socket(socket.AF_INET, socket.SOCK_STREAM)
    dut.setsockopt(fd, socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    dut.bind(fd, ("0.0.0.0", PORT))
    dut.listen(fd, backlog)
    return fd


# req: RFC9293-3.10.7.2 RFC9293-3.10.1
@case("RFC9293-3.10.7.2 RFC9293-3.10.1")
def test_accept_queue_full_syn_dropped(case: Case, dut: Dut) -> None:
    """listen(fd, 1): Linux queues backlog + 1 = 2 established connections
    (sk_acceptq_is_full is "more than the backlog"); a third SYN is dropped without a
    SYN-ACK. Once the application accepts one, the peer's retransmitted SYN is
    answered."""
    fd = listener(dut, 1)
    handshake(case)
    handshake(case)
    third = syn_dropped(case)
    dut.accept(fd)
    syn_again_answered(third)
    dut.accept(fd)
    dut.accept(fd)


# req: RFC9293-3.10.7.2 RFC9293-3.10.1
@case("RFC9293-3.10.7.2 RFC9293-3.10.1", sysctls={"net.core.somaxconn": "1"})
def test_somaxconn_caps_listen_backlog(case: Case, dut: Dut) -> None:
    """net.core.somaxconn=1 caps listen(fd, 100) to a backlog of 1: two connections
    are queued and the third SYN is dropped, as with listen(fd, 1)."""
    fd = listener(dut, 100)
    handshake(case)
    handshake(case)
    third = syn_dropped(case)
    dut.accept(fd)
    syn_again_answered(third)


NO_COOKIES = {"net.ipv4.tcp_syncookies": "0"}


def overflow_third(case: Case) -> TcpConnection:
    """listen(fd, 1) without syncookies: three handshakes interleaved so that all three
    SYNs are answered (the request queue never holds more than the backlog), then the
    first two ACKs fill the accept queue (2 > 1 is full) and the third ACK, sent last,
    finds it full.  Returns the third flow, its ACK just sent."""
    flows = [case.tcp(dut_port=PORT) for _ in range(3)]
    for conn in flows[:2]:
        conn.send("S", options=SYN_OPTIONS)
        conn.expect(flags="SA", ack=conn.seq)
    flows[0].send("A")
    flows[2].send("S", options=SYN_OPTIONS)
    flows[2].expect(flags="SA", ack=flows[2].seq)
    flows[1].send("A")
    flows[2].send("A")
    return flows[2]


# req: RFC9293-3.10.7.2 RFC9293-3.10.1
@case("RFC9293-3.10.7.2 RFC9293-3.10.1", sysctls=NO_COOKIES)
def test_accept_queue_full_final_ack_dropped(case: Case, dut: Dut) -> None:
    """The handshake's final ACK that finds the accept queue full is dropped (no RST:
    tcp_abort_on_overflow=0 by default): the connection stays half-open, and its
    SYN-ACK is retransmitted after the 1 s RTO; once the application accepts one
    connection, ACKing that retransmission completes the third."""
    fd = listener(dut, 1)
    third = overflow_third(case)
    third.expect_none(0.5)
    dut.accept(fd)
    third.expect(flags="SA", ack=third.seq, timeout=1.0)
    third.send("A")
    third.send("PA", b"hello")
    third.expect(flags="A", ack=third.seq)
    dut.accept(fd)
    accepted, _ = dut.accept(fd)
    assert dut.recv(accepted) == b"hello"


# req: RFC9293-3.10.7.2 RFC9293-3.5.2
@case("RFC9293-3.10.7.2 RFC9293-3.5.2", sysctls={**NO_COOKIES, "net.ipv4.tcp_abort_on_overflow": "1"})
def test_abort_on_overflow_resets_final_ack(case: Case, dut: Dut) -> None:
    """net.ipv4.tcp_abort_on_overflow=1: the handshake's final ACK that finds the
    accept queue full is answered with a RST (<SEQ=SEG.ACK><CTL=RST>, RFC 9293
    §3.5.2 for a segment with ACK) and the half-open connection is gone: no SYN-ACK
    is retransmitted."""
    listener(dut, 1)
    third = overflow_third(case)
    assert third.ack is not None
    third.expect_next(flags="R", seq=third.ack)
    third.expect_none(1.3)


# req: RFC9293-3.10.7.2 RFC9293-3.10.1
@case("RFC9293-3.10.7.2 RFC9293-3.10.1", sysctls=NO_COOKIES)
def test_syn_queue_capped_by_listen_backlog(case: Case, dut: Dut) -> None:
    """Without syncookies, the listen backlog caps the SYN queue too: listen(fd, 2)
    answers three SYNs (Linux drops once the queue holds more than the backlog) and
    drops the fourth without a SYN-ACK."""
    listener(dut, 2)
    for _ in range(3):
        conn = case.tcp(dut_port=PORT)
        conn.send("S", options=SYN_OPTIONS)
        conn.expect(flags="SA", ack=conn.seq)
    syn_dropped(case)


# req: RFC9293-3.10.7.2 RFC9293-3.10.1
@case(
    "RFC9293-3.10.7.2 RFC9293-3.10.1",
    sysctls={**NO_COOKIES, "net.ipv4.tcp_max_syn_backlog": "8"},
)
def test_tcp_max_syn_backlog_drops_syns(case: Case, dut: Dut) -> None:
    """Without syncookies, net.ipv4.tcp_max_syn_backlog=8 bounds the half-open
    connections of a listener with a large backlog: Linux drops a SYN once fewer
    than a quarter of the 8 places are left, so 7 SYNs are answered and the eighth
    draws nothing."""
    listener(dut, 64)
    for _ in range(7):
        conn = case.tcp(dut_port=PORT)
        conn.send("S", options=SYN_OPTIONS)
        conn.expect(flags="SA", ack=conn.seq)
    syn_dropped(case)


# req: RFC9293-3.10.7.2
@case("RFC9293-3.10.7.2", skip=ONLOAD_ONLY)
@ef(EF_ACCEPTQ_MAX_BACKLOG=1)
def test_ef_acceptq_max_backlog_caps_listen_backlog(case: Case, dut: Dut) -> None:
    """Onload EF_ACCEPTQ_MAX_BACKLOG=1 clamps listen(fd, 100) as somaxconn does: two
    connections are queued, the third SYN is dropped; after an accept() the
    retransmitted SYN is answered."""
    fd = listener(dut, 100)
    handshake(case)
    handshake(case)
    third = syn_dropped(case)
    dut.accept(fd)
    syn_again_answered(third)


# req: RFC9293-3.10.7.2
@case("RFC9293-3.10.7.2", skip=ONLOAD_ONLY)
@ef(EF_TCP_BACKLOG_MAX=4)
def test_ef_tcp_backlog_max_limits_syn_received(case: Case, dut: Dut) -> None:
    """Onload EF_TCP_BACKLOG_MAX=4: a listener holds at most 4 embryonic
    (SYN-RECEIVED) connections; a fifth SYN is dropped. Completing one handshake
    frees its place, and the fifth peer's retransmitted SYN is answered."""
    listener(dut, 16)
    pending = []
    for _ in range(4):
        conn = case.tcp(dut_port=PORT)
        conn.send("S", options=SYN_OPTIONS)
        conn.expect(flags="SA", ack=conn.seq)
        pending.append(conn)
    fifth = syn_dropped(case)
    pending[0].send("A")
    syn_again_answered(fifth)


# req: RFC9293-3.10.7.2
@case("RFC9293-3.10.7.2", skip=ONLOAD_ONLY)
@ef(EF_TCP_SYNRECV_MAX=2)
def test_ef_tcp_synrecv_max_limits_the_stack(case: Case, dut: Dut) -> None:
    """Onload EF_TCP_SYNRECV_MAX=2 bounds the embryonic connections of the whole
    stack, across listeners: one half-open connection on each of two listeners uses
    it up, and a further SYN to either is dropped; completing a handshake frees a
    place and the retransmitted SYN is answered."""
    listener(dut, 16)
    other = dut.socket(socket.AF_INET, socket.SOCK_STREAM)
    dut.bind(other, ("0.0.0.0", PORT + 1))
    dut.listen(other, 16)
    first = case.tcp(dut_port=PORT)
    second = case.tcp(dut_port=PORT + 1)
    for conn in (first, second):
        conn.send("S", options=SYN_OPTIONS)
        conn.expect(flags="SA", ack=conn.seq)
    third = syn_dropped(case)
    second.send("A")
    syn_again_answered(third)


# req: RFC9293-3.10.7.2 RFC9293-3.10.1
@case("RFC9293-3.10.7.2 RFC9293-3.10.1")
def test_listen_again_raises_backlog(case: Case, dut: Dut) -> None:
    """listen() on a socket that is already listening sets a new backlog (Linux
    inet_listen updates sk_max_ack_backlog): after listen(fd, 0) then listen(fd, 2),
    three connections are queued (2 + 1) before a SYN is dropped."""
    fd = listener(dut, 0)
    dut.listen(fd, 2)
    for _ in range(3):
        handshake(case)
    syn_dropped(case)


# req: RFC4987-3.6 RFC9293-3.10.7.2
@case("RFC4987-3.6 RFC9293-3.10.7.2", sysctls={"net.ipv4.tcp_max_syn_backlog": "4"})
def test_syncookies_answer_beyond_syn_queue(case: Case, dut: Dut) -> None:
    """With syncookies on (Linux's default, RFC 4987 §3.6), tcp_max_syn_backlog=4 does
    not limit the SYN queue: all six SYNs (under the listen backlog of 16, so no
    cookie is needed on either target) are answered, and the handshakes complete and
    carry data."""
    fd = listener(dut, 16)
    flows = []
    for _ in range(6):
        conn = case.tcp(dut_port=PORT)
        conn.send("S", options=SYN_OPTIONS)
        conn.expect(flags="SA", ack=conn.seq)
        flows.append(conn)
    last = flows[-1]
    last.send("A")
    last.send("PA", b"hello")
    last.expect(flags="A", ack=last.seq)
    accepted, _ = dut.accept(fd)
    assert dut.recv(accepted) == b"hello"
