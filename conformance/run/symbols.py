"""Linux's symbolic constants as scripts name them (packetdrill's symbols_linux.c role).

Values come from Python's own modules on Linux (socket, errno, fcntl, os, select)
plus the few those do not export.  An unknown symbol is a script error.
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import socket

_EXTRA: dict[str, int] = {
    "SOL_TCP": 6,
    "SOL_IP": 0,
    "SOL_UDP": 17,
    "TCP_INFO": 11,
    "TCP_CONGESTION": 13,
    "TCP_USER_TIMEOUT": 18,
    "TCP_NOTSENT_LOWAT": 25,
    "TCP_FASTOPEN": 23,
    "TCP_DEFER_ACCEPT": 9,
    "TCP_LINGER2": 8,
    "TCP_SYNCNT": 7,
    "TCP_WINDOW_CLAMP": 10,
    "SO_RCVLOWAT": 18,
    "SO_ZEROCOPY": 60,
    "MSG_ZEROCOPY": 0x4000000,
    "MSG_FASTOPEN": 0x20000000,
    "IP_MTU_DISCOVER": 10,
    "IP_PMTUDISC_DONT": 0,
    "IP_PMTUDISC_WANT": 1,
    "IP_PMTUDISC_DO": 2,
    "IP_PMTUDISC_PROBE": 3,
    "IP_RECVERR": 11,
    # <linux/in.h> multicast source filters, which Python's socket module does not export
    "IP_UNBLOCK_SOURCE": 37,
    "IP_BLOCK_SOURCE": 38,
    "IP_ADD_SOURCE_MEMBERSHIP": 39,
    "IP_DROP_SOURCE_MEMBERSHIP": 40,
    "IP_MSFILTER": 41,
    "IP_MULTICAST_ALL": 49,
    "EPOLL_CTL_ADD": 1,
    "EPOLL_CTL_DEL": 2,
    "EPOLL_CTL_MOD": 3,
    "FIONREAD": 0x541B,
    "SIOCINQ": 0x541B,
    "SIOCOUTQ": 0x5411,
}

_PREFIXES = ("AF_", "PF_", "SOCK_", "SOL_", "SO_", "IPPROTO_", "TCP_", "IP_", "MSG_", "SHUT_", "INADDR_")


def _collect() -> dict[str, int]:
    table: dict[str, int] = {}
    for name in dir(socket):
        if name.startswith(_PREFIXES):
            value = getattr(socket, name)
            if isinstance(value, int):
                table[name] = int(value)
    for name in dir(errno):
        if name.startswith("E") and isinstance(getattr(errno, name), int):
            table[name] = getattr(errno, name)
    for module, prefixes in ((fcntl, ("F_", "FD_")), (os, ("O_",)), (select, ("POLL", "EPOLL"))):
        for name in dir(module):
            if name.startswith(prefixes) and isinstance(getattr(module, name), int):
                table[name] = int(getattr(module, name))
    table.update(_EXTRA)
    return table


SYMBOLS = _collect()


class UnknownSymbolError(KeyError):
    pass


def lookup(name: str) -> int:
    try:
        return SYMBOLS[name]
    except KeyError:
        raise UnknownSymbolError(name) from None
