"""EF_* options: Onload's configuration, read from an environment or passed in, validated.

Names, defaults, ranges and the relations between options are Onload's
(``shared/onload/EF_OPTIONS.md``; ``src/include/ci/internal/opts_netif_def.h``,
``opts_citp_def.h`` and ``ci_netif_config_opts_getenv`` in
``src/lib/transport/ip/netif_init.c``)::

    cfg = Config.from_env()                          # os.environ (the stack never reads it itself)
    cfg = Config.from_env({"EF_MAX_ENDPOINTS": "4", "EF_NO_FAIL": "0"})
    cfg = cfg.with_options(EF_RXQ_SIZE=1024, tcp_fin_timeout=5)   # EF name or field name
    cfg.max_endpoints, cfg.no_fail, cfg.explicit, cfg.unknown, cfg.warnings
    print(cfg.describe())                            # onload_stackdump opts style

Where refstack differs from Onload, on purpose:

- A value outside its range, a malformed number, a ring size Onload does not
  offer or an EF_MAX_ENDPOINTS that is not a power of two is a
  :class:`ConfigError` naming the option, the value and what is allowed.  Onload
  parses with ``atoi`` (so ``EF_NO_FAIL=yes`` is 0) and clamps out-of-range
  values with a config warning (``CI_CFG_REDRESS``); a test suite wants the
  mistake reported instead.
- Relations Onload repairs (``ci_netif_config_opts_getenv``) are repaired the same
  way and recorded in :attr:`Config.warnings` (Onload's ``config_warnings``
  log); ``strict=True`` turns each into a :class:`ConfigError` instead:
  EF_MAX_PACKETS is rounded up to a multiple of 1024 (``PKTS_PER_SET``); setting it
  makes EF_MAX_RX_PACKETS and EF_MAX_TX_PACKETS default to 3/4 of it; either
  above EF_MAX_PACKETS is cut to it; EF_TCP_SYNRECV_MAX defaults to
  4 x EF_TCP_BACKLOG_MAX (``CI_CFG_ASSUME_LISTEN_SOCKS``); 4 x EF_TCP_SYNRECV_MAX
  above 7 x EF_MAX_ENDPOINTS is reduced to 7/4 x EF_MAX_ENDPOINTS when none of
  the three was set (Onload logs it at ``more_config_warnings``) and only warned
  about otherwise.  refstack adds one check Onload lacks: EF_RFC_RTO_MIN <=
  EF_RFC_RTO_INITIAL <= EF_RFC_RTO_MAX (a warning).
- Defaults are Onload's compiled ones.  Onload replaces several at start-up with
  the host's ``/proc/sys/net`` values (tcp_fin_timeout, tcp_max_syn_backlog,
  somaxconn...); refstack keeps those in its :class:`~refstack.profile.Profile`,
  and a Config only overrides the profile for options set explicitly
  (:meth:`refstack.profile.Profile.from_config`).
- EF_MAX_FILTERS is refstack's own option: Onload has no EF_* for the hardware
  filter table, whose size is the adapter's (UG1586 "Resources" recommends at
  most 4096 filters per application on pre-X2 adapters; the doc names no
  option, and sapi-ts reads the limit from TE_HW_FILTERS).  Default 4096.

EF_UDP_SEND_NONBLOCK_NO_PACKETS_MODE (0: a UDP send short of packet buffers
waits, so a non-blocking one gets EAGAIN; 1: ENOBUFS) is modelled with the packet
buffers (:mod:`refstack.nic.buffers`); its TCP twin is not (refstack's TCP send
path never waits for packet buffers: a segment without one is dropped and sent
again).

Unknown EF_* names are not an error, as in Onload (EF_VALIDATE_ENV only warns):
:attr:`Config.unknown` lists names that are no Onload option refstack knows of,
:attr:`Config.ignored` Onload options refstack does not model.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Literal

UINT32_MAX = 0xFFFF_FFFF  # Onload's MAX for a ci_uint32 field
SMAX32 = 0x7FFF_FFFF  # Onload's SMAX for a 32-bit field
PKTS_PER_SET = 1024  # Onload: 1 << CI_CFG_PKTS_PER_SET_S with 2 KiB packet buffers
ASSUME_LISTEN_SOCKS = 4  # Onload CI_CFG_ASSUME_LISTEN_SOCKS
RXQ_SIZE_AUTO = 512  # what EF_RXQ_SIZE=-1 resolves to when the NIC gives no default
TXQ_SIZE_AUTO = 512


class McastSend(IntEnum):
    """EF_MCAST_SEND (oneof:none;local;ext;all): where multicast sends loop back."""

    NONE = 0
    LOCAL = 1  # receivers in the same stack
    EXT = 2  # receivers in other Onload stacks (hardware loopback)
    ALL = 3


class McastJoinHandover(IntEnum):
    """EF_MCAST_JOIN_HANDOVER (oneof:off;kernel;always)."""

    OFF = 0
    KERNEL = 1  # hand over a socket joining on a non-accelerated interface
    ALWAYS = 2  # hand over on any join


class ConfigError(ValueError):
    """A bad EF_* value: ``option``, the ``value`` given and what is ``allowed``."""

    def __init__(self, option: str, value: object, allowed: str) -> None:
        super().__init__(f"{option}={value}: {allowed}")
        self.option = option
        self.value = value
        self.allowed = allowed


Kind = Literal["int", "bool", "enum", "str", "names"]


@dataclass(frozen=True, slots=True)
class Option:
    """One EF_* option: its :class:`Config` field, type, Onload default and range."""

    name: str
    field: str
    kind: Kind
    default: object
    doc: str
    lo: int = 0
    hi: int = 0
    choices: tuple[int, ...] = ()  # the only values allowed (ring sizes)
    power_of_two: bool = False
    enum: type[IntEnum] | None = None
    scope: Literal["per-stack", "per-process"] = "per-stack"
    unit: str = ""

    @property
    def allowed(self) -> str:
        """What the option accepts, as an error message says it."""
        if self.kind == "bool":
            return "must be 0 or 1"
        if self.enum is not None:
            names = ", ".join(f"{int(m)} ({m.name.lower()})" for m in self.enum)
            return f"must be one of {names}"
        if self.choices:
            return f"must be one of {', '.join(map(str, self.choices))}"
        if self.power_of_two:
            return f"must be a power of two in {self.lo}..{self.hi}"
        if self.kind == "int":
            return f"must be an integer in {self.lo}..{self.hi}"
        return "must be a string"

    def parse(self, value: object) -> object:
        """A raw environment string or a Python value -> the field's typed value."""
        if self.kind == "str":
            if not isinstance(value, str):
                raise ConfigError(self.name, value, self.allowed)
            return value
        if self.kind == "names":
            if isinstance(value, str):
                return tuple(value.split())
            if isinstance(value, (tuple, list)) and all(isinstance(v, str) for v in value):
                return tuple(value)
            raise ConfigError(self.name, value, "must be space-separated interface names")
        number = self._integer(value)
        if self.enum is not None:
            if number not in {int(m) for m in self.enum}:
                raise ConfigError(self.name, value, self.allowed)
            return self.enum(number)
        if self.kind == "bool":
            if number not in (0, 1):
                raise ConfigError(self.name, value, self.allowed)
            return bool(number)
        if self.choices:
            ok = number in self.choices
        else:
            ok = self.lo <= number <= self.hi and not (self.power_of_two and number & (number - 1))
        if not ok:
            raise ConfigError(self.name, value, self.allowed)
        return number

    def _integer(self, value: object) -> int:
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            text = value.strip()
            if self.enum is not None and text.upper() in self.enum.__members__:
                return int(self.enum[text.upper()])  # Onload's oneof names, as stackdump shows them
            if re.fullmatch(r"[+-]?[0-9]+", text):
                return int(text)
        raise ConfigError(self.name, value, self.allowed)


_O = Option
OPTIONS: tuple[Option, ...] = (
    # --- endpoints and stacks -----------------------------------------------------------
    _O("EF_MAX_ENDPOINTS", "max_endpoints", "int", 8192, "accelerated endpoints (sockets) per stack",
       lo=4, hi=1 << 21, power_of_two=True),
    _O("EF_NO_FAIL", "no_fail", "bool", True,
       "1: hand a socket that cannot get resources to the kernel; 0: fail the call", scope="per-process"),
    _O("EF_NAME", "name", "str", None, "stack name; processes using the same name share a stack",
       scope="per-process"),
    _O("EF_TCP", "tcp", "bool", True, "accelerate new TCP sockets", scope="per-process"),
    _O("EF_UDP", "udp", "bool", True, "accelerate new UDP sockets", scope="per-process"),
    _O("EF_INTERFACE_WHITELIST", "interface_whitelist", "names", (), "interfaces the stack may use"),
    _O("EF_INTERFACE_BLACKLIST", "interface_blacklist", "names", (),
       "interfaces the stack must not use (wins over the whitelist)"),
    _O("EF_MAX_FILTERS", "max_filters", "int", 4096,
       "refstack: hardware filter table capacity (UG1586 guidance 4096)", lo=0, hi=1 << 21),
    # --- rings and packet buffers ---------------------------------------------------------
    _O("EF_RXQ_SIZE", "rxq_size", "int", -1, "RX descriptor ring size; -1: the NIC's default (512)",
       choices=(-1, 512, 1024, 2048, 4096, 8192, 16384, 32768), unit="descriptors"),
    _O("EF_TXQ_SIZE", "txq_size", "int", -1, "TX descriptor ring size; -1: the NIC's default (512)",
       choices=(-1, 512, 1024, 2048, 4096), unit="descriptors"),
    _O("EF_MAX_PACKETS", "max_packets", "int", 32768, "packet buffers (2 KiB) per stack",
       lo=1024, hi=UINT32_MAX),
    _O("EF_MAX_RX_PACKETS", "max_rx_packets", "int", 24576, "packet buffers the receive path may use",
       lo=0, hi=1_000_000_000),
    _O("EF_MAX_TX_PACKETS", "max_tx_packets", "int", 24576, "packet buffers the transmit path may use",
       lo=0, hi=1_000_000_000),
    _O("EF_UDP_SEND_NONBLOCK_NO_PACKETS_MODE", "udp_send_nonblock_no_packets_mode", "bool", False,
       "a UDP send short of packet buffers: 0 waits (EAGAIN when non-blocking), 1 fails with ENOBUFS"),
    # --- TCP --------------------------------------------------------------------------------
    _O("EF_TCP_BACKLOG_MAX", "tcp_backlog_max", "int", 256,
       "embryonic (SYN-RECEIVED) connections per listening socket", lo=0, hi=UINT32_MAX),
    _O("EF_TCP_SYNRECV_MAX", "tcp_synrecv_max", "int", 1024,
       "embryonic connections per stack (default 4 x EF_TCP_BACKLOG_MAX)", lo=0, hi=1 << 21),
    _O("EF_ACCEPTQ_MAX_BACKLOG", "acceptq_max_backlog", "int", 4096,
       "clamp on listen()'s backlog (SOMAXCONN)", lo=0, hi=UINT32_MAX),
    _O("EF_TCP_FIN_TIMEOUT", "tcp_fin_timeout", "int", 60,
       "seconds an orphaned connection may take to close (FIN-WAIT-2)", lo=0, hi=255, unit="s"),
    _O("EF_TCP_TCONST_MSL", "tcp_tconst_msl", "int", 25,
       "maximum segment lifetime; TIME-WAIT lasts 2 x MSL", lo=0, hi=255, unit="s"),
    _O("EF_RFC_RTO_INITIAL", "rfc_rto_initial", "int", 1000, "initial retransmission timeout",
       lo=0, hi=UINT32_MAX, unit="ms"),
    _O("EF_RFC_RTO_MIN", "rfc_rto_min", "int", 200, "minimum retransmission timeout",
       lo=0, hi=UINT32_MAX, unit="ms"),
    _O("EF_RFC_RTO_MAX", "rfc_rto_max", "int", 120000, "maximum retransmission timeout",
       lo=0, hi=UINT32_MAX, unit="ms"),
    _O("EF_TCP_SNDBUF", "tcp_sndbuf", "int", 0, "override SO_SNDBUF for TCP (0: no override)",
       lo=0, hi=SMAX32 // 2, unit="bytes"),
    _O("EF_TCP_RCVBUF", "tcp_rcvbuf", "int", 0, "override SO_RCVBUF for TCP (0: no override)",
       lo=0, hi=SMAX32 // 2, unit="bytes"),
    # --- multicast ----------------------------------------------------------------------------
    _O("EF_MCAST_RECV", "mcast_recv", "bool", True, "accelerate multicast receive"),
    _O("EF_MCAST_SEND", "mcast_send", "enum", McastSend.NONE, "multicast loopback to Onload stacks",
       enum=McastSend),
    _O("EF_MCAST_JOIN_HANDOVER", "mcast_join_handover", "enum", McastJoinHandover.OFF,
       "hand a UDP socket to the kernel when it joins a group", enum=McastJoinHandover),
)  # fmt: skip
BY_NAME: dict[str, Option] = {o.name: o for o in OPTIONS}
BY_FIELD: dict[str, Option] = {o.field: o for o in OPTIONS}

# Onload options named in shared/onload/*.md that refstack does not model: set, they
# are listed in ``Config.ignored`` (not ``unknown``).
_ONLOAD_NAMES = """
    EF_ACCEPTQ_MIN_BACKLOG EF_BINDTODEVICE_HANDOVER EF_BUZZ_USEC EF_CLUSTER_SIZE EF_DELACK_THRESH
    EF_DONT_ACCELERATE EF_DYNAMIC_ACK_THRESH EF_ENDPOINT_PACKET_RESERVE EF_FORCE_SEND_MULTICAST
    EF_FORK_NETIF EF_INT_DRIVEN EF_KEEPALIVE_INTVL EF_KEEPALIVE_PROBES EF_KEEPALIVE_TIME EF_LOG
    EF_MCAST_JOIN_BINDTODEVICE EF_MCAST_RECV_HW_LOOP EF_MIN_FREE_PACKETS EF_MULTICAST_LOOP_OFF
    EF_PIPE EF_POLL_USEC EF_PREFAULT_PACKETS EF_RETRANSMIT_THRESHOLD EF_RETRANSMIT_THRESHOLD_ORPHAN
    EF_RETRANSMIT_THRESHOLD_SYN EF_RETRANSMIT_THRESHOLD_SYNACK EF_RXQ_LIMIT EF_RXQ_MIN
    EF_SCALABLE_FILTERS EF_SHARE_WITH EF_SLEEP_SPIN_USEC EF_SOCKET_CACHE_MAX EF_SPIN_USEC
    EF_STACK_PER_THREAD EF_TCP_ACCEPT_SPIN EF_TCP_ADV_WIN_SCALE_MAX EF_TCP_CLIENT_LOOPBACK
    EF_TCP_COMBINE_SENDS_MODE EF_TCP_CONNECT_HANDOVER EF_TCP_CONNECT_SPIN EF_TCP_EARLY_RETRANSMIT
    EF_TCP_FASTSTART_IDLE EF_TCP_FASTSTART_INIT EF_TCP_FASTSTART_LOSS EF_TCP_FORCE_REUSEPORT
    EF_TCP_INITIAL_CWND EF_TCP_ISN_2MSL EF_TCP_ISN_CACHE_SIZE EF_TCP_ISN_INCLUDE_PASSIVE
    EF_TCP_ISN_MODE EF_TCP_ISN_OFFSET EF_TCP_LISTEN_HANDOVER EF_TCP_LOSS_MIN_CWND
    EF_TCP_MAX_SEQERR_MSGS EF_TCP_MIN_CWND EF_TCP_RCVBUF_ESTABLISHED_DEFAULT EF_TCP_RCVBUF_MODE
    EF_TCP_RCVBUF_STRICT EF_TCP_RECV_SPIN EF_TCP_RST_COOLDOWN EF_TCP_RST_DELAYED_CONN
    EF_TCP_RX_CHECKS EF_TCP_RX_LOG_FLAGS EF_TCP_SEND_NONBLOCK_NO_PACKETS_MODE EF_TCP_SEND_SPIN
    EF_TCP_SERVER_LOOPBACK EF_TCP_SHARED_LOCAL_PORTS EF_TCP_SHARED_LOCAL_PORTS_MAX
    EF_TCP_SHARED_LOCAL_PORTS_NO_FALLBACK EF_TCP_SHARED_LOCAL_PORTS_PER_IP
    EF_TCP_SHARED_LOCAL_PORTS_PER_IP_MAX EF_TCP_SHARED_LOCAL_PORTS_REUSE_FAST
    EF_TCP_SHARED_LOCAL_PORTS_STEP EF_TCP_SNDBUF_ESTABLISHED_DEFAULT EF_TCP_SNDBUF_MODE
    EF_TCP_SOCKBUF_MAX_FRACTION EF_TCP_SYNCOOKIES EF_TCP_SYN_OPTS EF_TCP_TIME_WAIT_ASSASSINATION
    EF_TCP_TSOPT_MODE EF_TCP_URG_MODE EF_UDP_CONNECT_HANDOVER EF_UDP_FORCE_REUSEPORT
    EF_UDP_PORT_HANDOVER2_MAX EF_UDP_PORT_HANDOVER2_MIN EF_UDP_PORT_HANDOVER3_MAX
    EF_UDP_PORT_HANDOVER3_MIN EF_UDP_PORT_HANDOVER_MAX EF_UDP_PORT_HANDOVER_MIN EF_UDP_RCVBUF
    EF_UDP_RECV_SPIN EF_UDP_SEND_SPIN EF_UDP_SEND_UNLOCKED
    EF_UDP_SEND_UNLOCK_THRESH EF_UDP_SNDBUF EF_UL_EPOLL EF_VALIDATE_ENV
"""
ONLOAD_OPTIONS: frozenset[str] = frozenset(_ONLOAD_NAMES.split())


@dataclass(frozen=True, slots=True)
class Config:
    """The EF_* options of one stack.  Immutable; fields are typed and validated.

    Build one with :meth:`from_env` or :meth:`with_options`, which also apply
    Onload's derived defaults and relations; ``Config()`` is Onload's defaults.
    ``explicit`` holds the options that were set (EF name -> value),
    ``unknown``/``ignored`` the EF_* names seen but not modelled, ``warnings``
    what Onload would log as config warnings.  Equality compares option values only.
    """

    max_endpoints: int = 8192
    no_fail: bool = True
    name: str | None = None
    tcp: bool = True
    udp: bool = True
    interface_whitelist: tuple[str, ...] = ()
    interface_blacklist: tuple[str, ...] = ()
    max_filters: int = 4096
    rxq_size: int = -1
    txq_size: int = -1
    max_packets: int = 32768
    max_rx_packets: int = 24576
    max_tx_packets: int = 24576
    udp_send_nonblock_no_packets_mode: bool = False
    tcp_backlog_max: int = 256
    tcp_synrecv_max: int = 1024
    acceptq_max_backlog: int = 4096
    tcp_fin_timeout: int = 60
    tcp_tconst_msl: int = 25
    rfc_rto_initial: int = 1000
    rfc_rto_min: int = 200
    rfc_rto_max: int = 120000
    tcp_sndbuf: int = 0
    tcp_rcvbuf: int = 0
    mcast_recv: bool = True
    mcast_send: McastSend = McastSend.NONE
    mcast_join_handover: McastJoinHandover = McastJoinHandover.OFF
    explicit: Mapping[str, object] = field(default_factory=dict, compare=False)
    unknown: tuple[str, ...] = field(default=(), compare=False)
    ignored: tuple[str, ...] = field(default=(), compare=False)
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        for option in OPTIONS:
            value = getattr(self, option.field)
            if not (option.kind == "str" and value is None):
                object.__setattr__(self, option.field, option.parse(value))  # typed: 1 -> McastSend.LOCAL

    # --- building ---------------------------------------------------------------------
    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, strict: bool = False) -> Config:
        """The options in ``env`` (default ``os.environ``); other variables are ignored."""
        source = os.environ if env is None else env
        return cls._build({k: v for k, v in source.items() if k.startswith("EF_")}, strict=strict)

    def with_options(
        self, mapping: Mapping[str, object] | None = None, /, *, strict: bool = False, **options: object
    ) -> Config:
        """This config with options set, from a dict and/or keywords, by EF name
        (``EF_RXQ_SIZE=1024``) or field name (``rxq_size=1024``), values as strings or
        typed; the relations are derived again from everything set so far."""
        settings: dict[str, object] = dict(self.explicit)
        settings.update({n: None for n in self.unknown + self.ignored})
        for key, value in {**(mapping or {}), **options}.items():
            option = BY_NAME.get(key) or BY_FIELD.get(key)
            settings[option.name if option is not None else key] = value
        return self._build(settings, strict=strict)

    @classmethod
    def _build(cls, settings: Mapping[str, object], *, strict: bool) -> Config:
        values: dict[str, object] = {}
        unknown: list[str] = []
        ignored: list[str] = []
        for key, raw in settings.items():
            option = BY_NAME.get(key)
            if option is None:
                (ignored if key in ONLOAD_OPTIONS else unknown).append(key)
                continue
            values[key] = option.parse(raw)
        explicit = dict(values)
        warnings = _derive(values, strict=strict)
        fields = {o.field: values.get(o.name, o.default) for o in OPTIONS}
        return cls(
            **fields,  # type: ignore[arg-type]
            explicit=explicit,
            unknown=tuple(sorted(unknown)),
            ignored=tuple(sorted(ignored)),
            warnings=tuple(warnings),
        )

    # --- reading -------------------------------------------------------------------------
    def __getitem__(self, name: str) -> object:
        """The value of an option by its EF name: ``cfg["EF_MAX_ENDPOINTS"]``."""
        return getattr(self, BY_NAME[name].field)

    def is_set(self, name: str) -> bool:
        """Whether the option was set explicitly (not a default)."""
        return name in self.explicit

    @property
    def effective_rxq_size(self) -> int:
        """EF_RXQ_SIZE with -1 resolved (the driver's fallback, 512)."""
        return RXQ_SIZE_AUTO if self.rxq_size == -1 else self.rxq_size

    @property
    def effective_txq_size(self) -> int:
        return TXQ_SIZE_AUTO if self.txq_size == -1 else self.txq_size

    def items(self) -> Iterator[tuple[Option, object]]:
        for option in OPTIONS:
            yield option, getattr(self, option.field)

    def describe(self) -> str:
        """The options as ``onload_stackdump opts`` prints them: one per line, the value
        and, where it differs, ``(default: ...)``; then unknown names and warnings."""
        lines = []
        for option, value in self.items():
            text = _show(value)
            if value != option.default:
                text += f" (default: {_show(option.default)})"
            lines.append(f"{option.name:>30}: {text}")
        lines += [f"{'unknown':>30}: {name}" for name in self.unknown]
        lines += [f"{'not modelled':>30}: {name}" for name in self.ignored]
        lines += [f"{'warning':>30}: {w}" for w in self.warnings]
        return "\n".join(lines)

    def replace(self, **changes: object) -> Config:
        """A copy with typed fields changed, validated but not re-derived."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


def _show(value: object) -> str:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, IntEnum):
        return f"{int(value)} ({value.name.lower()})"
    if isinstance(value, tuple):
        return " ".join(value) if value else '""'
    if value is None:
        return "(unset)"
    return str(value)


def _derive(values: dict[str, object], *, strict: bool) -> list[str]:
    """Onload's derived defaults and repairs (``ci_netif_config_opts_getenv``), applied
    to ``values`` (EF name -> parsed value, explicit ones only) in place."""
    warnings: list[str] = []
    explicit = set(values)

    def get(name: str) -> int:
        v = values.get(name, BY_NAME[name].default)
        assert isinstance(v, int)
        return v

    def problem(option: str, value: object, message: str) -> None:
        if strict:
            raise ConfigError(option, value, message)
        warnings.append(f"{option}={value}: {message}")

    if "EF_MAX_PACKETS" in explicit:
        requested = get("EF_MAX_PACKETS")
        rounded = min(-(-requested // PKTS_PER_SET), UINT32_MAX // PKTS_PER_SET) * PKTS_PER_SET
        if rounded != requested:
            problem("EF_MAX_PACKETS", requested, f"not a multiple of {PKTS_PER_SET}; rounded to {rounded}")
            values["EF_MAX_PACKETS"] = rounded
        for name in ("EF_MAX_RX_PACKETS", "EF_MAX_TX_PACKETS"):
            # Onload's range check then cuts a derived value to the option's maximum
            values.setdefault(name, min(rounded * 3 // 4, BY_NAME[name].hi))
    max_packets = get("EF_MAX_PACKETS")
    for name in ("EF_MAX_RX_PACKETS", "EF_MAX_TX_PACKETS"):
        if get(name) > max_packets:
            problem(name, get(name), f"exceeds EF_MAX_PACKETS={max_packets}; reduced to {max_packets}")
            values[name] = max_packets
    if "EF_TCP_BACKLOG_MAX" in explicit and "EF_TCP_SYNRECV_MAX" not in explicit:
        values["EF_TCP_SYNRECV_MAX"] = min(get("EF_TCP_BACKLOG_MAX") * ASSUME_LISTEN_SOCKS, 1 << 21)
    synrecv, endpoints = get("EF_TCP_SYNRECV_MAX"), get("EF_MAX_ENDPOINTS")
    if synrecv * 4 > endpoints * 7:
        message = (
            f"inconsistent with EF_MAX_ENDPOINTS={endpoints}: ~4 syn-receive states consume one endpoint"
        )
        if explicit & {"EF_TCP_SYNRECV_MAX", "EF_MAX_ENDPOINTS", "EF_TCP_BACKLOG_MAX"}:
            problem("EF_TCP_SYNRECV_MAX", synrecv, message)
        else:  # Onload repairs defaults silently (more_config_warnings)
            values["EF_TCP_SYNRECV_MAX"] = endpoints * 7 // 4
            values["EF_TCP_BACKLOG_MAX"] = min(get("EF_TCP_BACKLOG_MAX"), endpoints * 7 // 4)
    rto = (get("EF_RFC_RTO_MIN"), get("EF_RFC_RTO_INITIAL"), get("EF_RFC_RTO_MAX"))
    if not rto[0] <= rto[1] <= rto[2]:
        problem(
            "EF_RFC_RTO_INITIAL",
            rto[1],
            f"must lie in EF_RFC_RTO_MIN..EF_RFC_RTO_MAX = {rto[0]}..{rto[2]}",
        )
    return warnings
