"""The profile: Linux fresh-namespace defaults, the RFC-over-Linux knob, sysctl mapping."""

from __future__ import annotations

import pytest

from refstack.profile import Profile, ProfileError, apply_sysctl


def test_defaults_are_a_fresh_linux_namespace() -> None:
    p = Profile()
    assert p.tcp_rmem == (4096, 131072, 33554432) and p.rmem_max == 4194304
    assert p.rcv_wscale == 10  # max(tcp_rmem[2], rmem_max) = 2**25 fits 16 bits after 10 shifts
    assert (p.tcp_rto_min, p.tcp_rto_initial, p.tcp_initial_cwnd) == (0.2, 1.0, 10)
    assert p.ip_local_port_range == (32768, 60999)


def test_rfc_default_and_linux_knob_for_syn_timeouts() -> None:
    """Linux's linear SYN timer departs from RFC 6298 §5.5: off by default, on in linux()."""
    assert Profile().tcp_syn_linear_timeouts == 0
    assert Profile.linux().tcp_syn_linear_timeouts == 4


def test_window_scale_follows_rmem() -> None:
    p = apply_sysctl(Profile(), "net.ipv4.tcp_rmem", "4096 87380 6291456")
    assert p.rcv_wscale == 7  # 6291456 >> 7 = 49152, the classic Linux value
    assert apply_sysctl(Profile(), "net.ipv4.tcp_window_scaling", "0").rcv_wscale == 0


@pytest.mark.parametrize(
    ("key", "value", "field", "expected"),
    [
        ("net.ipv4.tcp_sack", "0", "tcp_sack", False),
        ("net.ipv4.tcp_timestamps", "0", "tcp_timestamps", False),
        ("net.ipv4.tcp_fin_timeout", "5", "tcp_fin_timeout", 5.0),
        ("net.ipv4.tcp_rto_min_us", "50000", "tcp_rto_min", 0.05),
        ("net.ipv4.tcp_invalid_ratelimit", "0", "tcp_invalid_ratelimit", 0.0),
        ("net.core.somaxconn", "128", "somaxconn", 128),
        ("net.ipv4.ip_local_port_range", "40000 40010", "ip_local_port_range", (40000, 40010)),
        ("net.ipv4.tcp_congestion_control", "reno", "tcp_congestion_control", "reno"),
    ],
)
def test_sysctls_map_to_fields(key: str, value: str, field: str, expected: object) -> None:
    assert getattr(apply_sysctl(Profile(), key, value), field) == expected


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("net.ipv4.tcp_autocorking", "0"),  # not modelled
        ("net.ipv4.tcp_sack", "yes"),  # not a number
        ("net.ipv4.tcp_congestion_control", "cubic"),  # refstack implements reno only
    ],
)
def test_unmodelled_sysctls_are_errors_naming_the_key(key: str, value: str) -> None:
    with pytest.raises(ProfileError, match=key.replace(".", r"\.")):
        apply_sysctl(Profile(), key, value)
