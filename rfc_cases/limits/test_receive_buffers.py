"""A full UDP receive buffer (SO_RCVBUF): datagrams that do not fit are dropped.

RFC 768 promises no delivery, so UDP may drop what it cannot hold; Linux drops a datagram that
arrives while the socket's receive queue is over SO_RCVBUF.  How many fit depends on
how each stack charges a datagram (Linux charges the whole skb, refstack the payload),
so the case checks the shape, not a count: the first datagrams are kept in order, the
rest dropped, and reading makes room again.
"""

from __future__ import annotations

import errno
import socket

from conformance.case_api import Case, Dut, DutError, case

PORT = 8080
COUNT = 40
SIZE = 1000


def drain(dut: Dut, fd: int) -> list[int]:
    """The sequence numbers of every datagram queued on ``fd`` (non-blocking)."""
    got = []
    while True:
        try:
            got.append(int.from_bytes(dut.recv(fd, 2000)[:2], "big"))
        except DutError as e:
            assert e.errno == errno.EAGAIN
            return got


# req: RFC768-Interface
@case("RFC768-Interface")
def test_udp_receive_buffer_full_drops_datagrams(case: Case, dut: Dut) -> None:
    """SO_RCVBUF 4000 (8000 once doubled, as Linux): of 40 datagrams of 1000 bytes
    sent before the application reads, only the first few are queued, in order, the
    rest are dropped; once read, the buffer takes datagrams again."""
    fd = dut.bind_udp(PORT)
    dut.setsockopt(fd, socket.SOL_SOCKET, socket.SO_RCVBUF, 4000)
    assert dut.getsockopt(fd, socket.SOL_SOCKET, socket.SO_RCVBUF) == 8000
    dut.set_nonblocking(fd)
    flow = case.udp(dut_port=PORT)
    for i in range(COUNT):
        flow.send(i.to_bytes(2, "big") + bytes(SIZE - 2))
    kept = drain(dut, fd)
    assert 0 < len(kept) < COUNT
    assert kept == list(range(len(kept)))
    flow.send(b"\xff\xff after the reads")
    assert drain(dut, fd) == [0xFFFF]
