"""The stack's profile: every choice the RFCs leave open, in one documented place.

Defaults are those of a fresh network namespace on this project's reference kernel
(Linux 6.18, read with ``sysctl -a`` inside ``ip netns add``), so that packetdrill
scripts written against Linux apply unchanged.  Where Linux departs from an RFC
MUST, the default follows the RFC and the Linux behaviour is a knob:

- ``tcp_syn_linear_timeouts``: Linux retransmits a SYN at linear 1 s intervals for
  the first 4 tries (sysctl ``tcp_syn_linear_timeouts = 4``), against RFC 6298 §5.5's
  exponential backoff.  Default 0 (RFC); :meth:`Profile.linux` sets 4.

Field names are the Linux sysctl names (``net.ipv4.`` / ``net.core.`` dropped) so the
harness can apply a script's ``sysctl -w`` to the profile; see :data:`SYSCTL_FIELDS`.
Times are float seconds even where the sysctl counts milliseconds.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .config import Config


@dataclass(frozen=True, slots=True)
class Profile:
    """Tunables of one stack. Immutable: derive variants with :meth:`replace`."""

    # --- IP (RFC 791, RFC 1122 §3) ------------------------------------------------
    ip_default_ttl: int = 64
    ip_local_port_range: tuple[int, int] = (32768, 60999)
    ip_no_pmtu_disc: bool = False
    min_pmtu: int = 552  # Linux route/min_pmtu; RFC 1191 §3 allows down to 68
    # RFC 1191 §5/§7: guess the next plateau below the quoted length when a router
    # reports Next-Hop MTU 0.  Linux dropped its plateau table (v3.x): it falls to
    # min_pmtu instead, which the RFC also allows.
    pmtu_plateau_guess: bool = False
    mtu_expires: float = 600.0  # RFC 1191 §6.3 aging of a reduced PMTU (Linux route/mtu_expires)
    # --- reassembly (RFC 1122 §3.3.2; the kernel path, refstack/net/reassembly.py) -----
    ipfrag_time: float = 30.0  # Linux; RFC 1122 §3.3.2 recommends 60..120 s
    ipfrag_high_thresh: int = 4194304  # bytes of queued fragments (modelled skb truesize)
    ipfrag_low_thresh: int = 3145728  # used only with ipfrag_evict_oldest
    ipfrag_evict_oldest: bool = False  # Linux < 4.17 evicted LRU queues; >= 4.17 refuses fragments
    # --- ICMP (RFC 1812 §4.3.2.8 rate limiting; Linux icmp_ratelimit/ratemask) --------
    icmp_echo_ignore_all: bool = False
    icmp_ratelimit: float = 1.0  # seconds of token refill per destination
    icmp_ratemask: int = 6168  # types 3, 4, 11, 12
    icmp_burst: int = 6  # Linux XRLIM_BURST_FACTOR
    # --- socket buffers (net.core) ------------------------------------------------
    rmem_default: int = 212992
    wmem_default: int = 212992
    rmem_max: int = 4194304
    wmem_max: int = 4194304
    somaxconn: int = 4096
    # --- TCP ----------------------------------------------------------------------
    tcp_rmem: tuple[int, int, int] = (4096, 131072, 33554432)
    tcp_wmem: tuple[int, int, int] = (4096, 16384, 4194304)
    tcp_timestamps: bool = True
    tcp_sack: bool = True
    tcp_dsack: bool = True
    tcp_window_scaling: bool = True
    tcp_adv_win_scale: int = 1
    tcp_moderate_rcvbuf: bool = True  # receive-buffer autotuning (Linux DRS)
    tcp_syn_retries: int = 6
    tcp_synack_retries: int = 5
    tcp_syn_linear_timeouts: int = 0  # RFC 6298 §5.5; Linux 4 (see module docstring)
    tcp_retries2: int = 15
    tcp_fin_timeout: float = 60.0
    tcp_timewait_len: float = 60.0  # Linux TCP_TIMEWAIT_LEN (2MSL with MSL 30 s)
    tcp_rfc1337: bool = False  # RFC 1337 §3: TIME-WAIT ignores an RST (Linux default off)
    tcp_keepalive_time: float = 7200.0
    tcp_keepalive_intvl: float = 75.0
    tcp_keepalive_probes: int = 9
    tcp_max_syn_backlog: int = 2048
    tcp_syncookies: int = 1  # Linux default: cookies beyond a full SYN queue; 2 always, 0 off
    tcp_rto_initial: float = 1.0  # RFC 6298 §2.1
    tcp_rto_min: float = 0.2  # Linux TCP_RTO_MIN; RFC 6298 §2.4 says SHOULD 1 s
    tcp_rto_max: float = 120.0
    tcp_rto_linux_style: bool = True  # RTO = SRTT + max(4*RTTVAR, rto_min), as Linux computes it
    tcp_initial_cwnd: int = 10  # segments, RFC 6928 (Linux TCP_INIT_CWND)
    tcp_delack_min: float = 0.04  # Linux TCP_DELACK_MIN
    tcp_delack_max: float = 0.2  # Linux TCP_DELACK_MAX; RFC 1122 §4.2.3.2 MUST be < 0.5 s
    tcp_ato_min: float = 0.04  # Linux TCP_ATO_MIN
    tcp_quickack_segments: int = 16  # segments ACKed at once after connection start (Linux quick-ack)
    tcp_base_mss: int = 1024
    tcp_min_snd_mss: int = 48
    tcp_default_mss: int = 536  # RFC 9293 §3.7.1: assumed when the peer sends no MSS option
    tcp_challenge_ack_limit: int = 2147483647
    tcp_invalid_ratelimit: float = 0.5  # Linux: min gap between ACKs to out-of-window segments
    tcp_slow_start_after_idle: bool = True
    tcp_abort_on_overflow: bool = False
    # The urgent pointer names the octet after the urgent data (RFC 6093 §2, RFC 9293
    # MUST-62, Linux's default); True reads it as RFC 1122 §4.2.2.4 did, as the last one.
    tcp_stdurg: bool = False
    tcp_ecn: int = 2  # 2: accept ECN when the peer asks, never ask (RFC 3168)
    tcp_reordering: int = 3  # DupThresh, RFC 5681 §3.2 / RFC 6675
    tcp_congestion_control: str = "reno"  # NewReno (RFC 5681/6582/6675); the only one implemented
    # Loss-detection extensions refstack does not implement, so only "off" is accepted:
    # F-RTO (RFC 5682; Linux default 2), RACK (RFC 8985; Linux tcp_recovery 1) and
    # tail loss probes (Linux tcp_early_retrans 3).
    tcp_frto: int = 0
    tcp_recovery: int = 0
    tcp_early_retrans: int = 0

    def replace(self, **changes: object) -> Profile:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def with_config(self, config: Config) -> Profile:
        """This profile with the EF_* options ``config`` sets explicitly applied where
        the profile has the same knob (Onload takes the others' defaults from
        ``/proc/sys/net`` too, so unset options leave the profile's Linux values):
        EF_RFC_RTO_INITIAL/MIN/MAX (ms), EF_TCP_FIN_TIMEOUT, EF_TCP_TCONST_MSL
        (TIME-WAIT = 2 x MSL, RFC 9293 §3.4.2), EF_TCP_BACKLOG_MAX (SYN queue per
        listener) and EF_ACCEPTQ_MAX_BACKLOG (listen() backlog clamp)."""
        changes: dict[str, object] = {}
        for name, (field, scale) in _CONFIG_FIELDS.items():
            if config.is_set(name):
                value = config[name]
                assert isinstance(value, int)
                changes[field] = value * scale  # an int factor keeps an int field int
        return self.replace(**changes) if changes else self

    @classmethod
    def linux(cls) -> Profile:
        """Linux exactly, including where it departs from an RFC MUST."""
        return cls(tcp_syn_linear_timeouts=4)

    @property
    def rcv_wscale(self) -> int:
        """The window scale a SYN offers (RFC 7323 §2.2), chosen as Linux's
        ``tcp_select_initial_window``: the smallest shift for which the largest
        receive buffer fits 16 bits, at most 14 (RFC 7323 §2.3)."""
        if not self.tcp_window_scaling:
            return 0
        space = max(self.tcp_rmem[2], self.rmem_max)
        shift = 0
        while space > 0xFFFF and shift < 14:
            space >>= 1
            shift += 1
        return shift


def _time_ms(value: str) -> float:
    return int(value) / 1000.0


def _time_us(value: str) -> float:
    return int(value) / 1_000_000.0


def _triple(value: str) -> tuple[int, ...]:
    return tuple(int(v) for v in value.split())


def _flag(value: str) -> bool:
    return int(value) != 0


def _seconds(value: str) -> float:
    return float(int(value))


# EF_* option -> (profile field, factor from the option's unit to the field's)
_CONFIG_FIELDS: dict[str, tuple[str, float]] = {
    "EF_RFC_RTO_INITIAL": ("tcp_rto_initial", 0.001),
    "EF_RFC_RTO_MIN": ("tcp_rto_min", 0.001),
    "EF_RFC_RTO_MAX": ("tcp_rto_max", 0.001),
    "EF_TCP_FIN_TIMEOUT": ("tcp_fin_timeout", 1.0),
    "EF_TCP_TCONST_MSL": ("tcp_timewait_len", 2.0),
    "EF_TCP_BACKLOG_MAX": ("tcp_max_syn_backlog", 1),
    "EF_ACCEPTQ_MAX_BACKLOG": ("somaxconn", 1),
}

# sysctl key (as written after ``net.ipv4.`` or ``net.core.``) -> (field, parser)
SYSCTL_FIELDS: dict[str, tuple[str, object]] = {
    "ip_default_ttl": ("ip_default_ttl", int),
    "ip_local_port_range": ("ip_local_port_range", _triple),
    "ip_no_pmtu_disc": ("ip_no_pmtu_disc", _flag),
    "ipfrag_time": ("ipfrag_time", _seconds),
    "ipfrag_high_thresh": ("ipfrag_high_thresh", int),
    "ipfrag_low_thresh": ("ipfrag_low_thresh", int),
    "icmp_echo_ignore_all": ("icmp_echo_ignore_all", _flag),
    "icmp_ratelimit": ("icmp_ratelimit", _time_ms),
    "icmp_ratemask": ("icmp_ratemask", int),
    "rmem_default": ("rmem_default", int),
    "wmem_default": ("wmem_default", int),
    "rmem_max": ("rmem_max", int),
    "wmem_max": ("wmem_max", int),
    "somaxconn": ("somaxconn", int),
    "tcp_rmem": ("tcp_rmem", _triple),
    "tcp_wmem": ("tcp_wmem", _triple),
    "tcp_timestamps": ("tcp_timestamps", _flag),
    "tcp_sack": ("tcp_sack", _flag),
    "tcp_dsack": ("tcp_dsack", _flag),
    "tcp_window_scaling": ("tcp_window_scaling", _flag),
    "tcp_adv_win_scale": ("tcp_adv_win_scale", int),
    "tcp_moderate_rcvbuf": ("tcp_moderate_rcvbuf", _flag),
    "tcp_syn_retries": ("tcp_syn_retries", int),
    "tcp_synack_retries": ("tcp_synack_retries", int),
    "tcp_syn_linear_timeouts": ("tcp_syn_linear_timeouts", int),
    "tcp_retries2": ("tcp_retries2", int),
    "tcp_fin_timeout": ("tcp_fin_timeout", _seconds),
    "tcp_rfc1337": ("tcp_rfc1337", _flag),
    "tcp_keepalive_time": ("tcp_keepalive_time", _seconds),
    "tcp_keepalive_intvl": ("tcp_keepalive_intvl", _seconds),
    "tcp_keepalive_probes": ("tcp_keepalive_probes", int),
    "tcp_max_syn_backlog": ("tcp_max_syn_backlog", int),
    "tcp_syncookies": ("tcp_syncookies", int),
    "tcp_rto_min_us": ("tcp_rto_min", _time_us),
    "tcp_rto_max_ms": ("tcp_rto_max", _time_ms),
    "tcp_base_mss": ("tcp_base_mss", int),
    "tcp_min_snd_mss": ("tcp_min_snd_mss", int),
    "tcp_challenge_ack_limit": ("tcp_challenge_ack_limit", int),
    "tcp_invalid_ratelimit": ("tcp_invalid_ratelimit", _time_ms),
    "tcp_slow_start_after_idle": ("tcp_slow_start_after_idle", _flag),
    "tcp_abort_on_overflow": ("tcp_abort_on_overflow", _flag),
    "tcp_stdurg": ("tcp_stdurg", _flag),
    "tcp_ecn": ("tcp_ecn", int),
    "tcp_reordering": ("tcp_reordering", int),
    "tcp_congestion_control": ("tcp_congestion_control", lambda v: _only(v, "reno")),
    "tcp_frto": ("tcp_frto", lambda v: int(_only(v, "0"))),
    "tcp_recovery": ("tcp_recovery", lambda v: int(_only(v, "0"))),
    "tcp_early_retrans": ("tcp_early_retrans", lambda v: int(_only(v, "0"))),
}


def _only(value: str, supported: str) -> str:
    if value != supported:
        raise ValueError(f"refstack implements only {supported!r}, not {value!r}")
    return value


class ProfileError(ValueError):
    """A sysctl the profile does not model, or a value it cannot take."""


def apply_sysctl(profile: Profile, key: str, value: str) -> Profile:
    """``apply_sysctl(p, "net.ipv4.tcp_sack", "0")`` -> a profile with SACK off.

    Raises :class:`ProfileError` naming the key for keys refstack does not model,
    so that a caller can skip a case instead of silently ignoring a setting.
    """
    short = key.removeprefix("net.ipv4.").removeprefix("net.core.")
    if short not in SYSCTL_FIELDS:
        raise ProfileError(f"{key}: not modelled by refstack")
    field, parse = SYSCTL_FIELDS[short]
    try:
        parsed = parse(value.strip())  # type: ignore[operator]
    except ValueError as e:
        raise ProfileError(f"{key}: not modelled by refstack for {value!r}: {e}") from None
    return profile.replace(**{field: parsed})
