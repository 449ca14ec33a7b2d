"""The ephemeral port range (net.ipv4.ip_local_port_range, RFC 6056 §2) with several
connections at once, which a ``.pkt`` script cannot hold.

RFC 9293 §3.1 and RFC 6056 §2.1: a connection is named by its 4-tuple, so one local
port can serve connections to different remote endpoints; only a 4-tuple already in
use rules a port out.  Linux's connect() reuses a port taken by another connect()
when the 4-tuple differs (__inet_hash_connect), and fails with EADDRNOTAVAIL when no
port gives a unique 4-tuple.
"""

from __future__ import annotations

import errno
import socket

from conformance.case_api import Case, Dut, case

RANGE = {"net.ipv4.ip_local_port_range": "40000 40001"}


def connect(case: Case, dut: Dut, remote_port: int) -> int:
    """An active open to the bench's ``remote_port``; returns the DUT's local port."""
    fd = dut.socket(socket.AF_INET, socket.SOCK_STREAM)
    call = dut.start("connect", fd, (case.remote_ip, remote_port))
    flow = case.tcp(bench_port=remote_port)
    syn = flow.accept()
    dut.finish(call)
    return int(syn["TCP"].sport)


# req: RFC6056-2.1 RFC9293-3.1
@case("RFC6056-2.1 RFC9293-3.1", sysctls=RANGE)
def test_one_ephemeral_port_serves_different_destinations(case: Case, dut: Dut) -> None:
    """With 40001 bound and 40000 the only ephemeral port left, connections to two
    different remote ports both get local port 40000 (their 4-tuples differ); a third
    connect() to the first destination has no unique 4-tuple left: EADDRNOTAVAIL, and
    no SYN leaves."""
    holder = dut.socket(socket.AF_INET, socket.SOCK_STREAM)
    dut.bind(holder, ("0.0.0.0", 40001))
    assert connect(case, dut, 9001) == 40000
    assert connect(case, dut, 9002) == 40000
    fd = dut.socket(socket.AF_INET, socket.SOCK_STREAM)
    result = dut.call("connect", fd, (case.remote_ip, 9001))
    assert (result.ret, result.errno) == (-1, errno.EADDRNOTAVAIL)
    assert not case.capture(case.now() + 0.3), "a packet left after the failed connect()"
