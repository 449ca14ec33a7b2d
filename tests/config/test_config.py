"""EF_* options (refstack/config.py): Onload's defaults, one valid non-default value and
the errors for every option, hypothesis over the integer ranges, Onload's derived
relations, unknown names, and ``describe()``."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from refstack.config import (
    BY_NAME,
    OPTIONS,
    Config,
    ConfigError,
    McastJoinHandover,
    McastSend,
    Option,
)

# Onload's compiled defaults (shared/onload/EF_OPTIONS.md; opts_netif_def.h, opts_citp_def.h).
DEFAULTS: dict[str, object] = {
    "EF_MAX_ENDPOINTS": 8192,
    "EF_NO_FAIL": True,
    "EF_NAME": None,
    "EF_TCP": True,
    "EF_UDP": True,
    "EF_INTERFACE_WHITELIST": (),
    "EF_INTERFACE_BLACKLIST": (),
    "EF_MAX_FILTERS": 4096,
    "EF_RXQ_SIZE": -1,
    "EF_TXQ_SIZE": -1,
    "EF_MAX_PACKETS": 32768,
    "EF_MAX_RX_PACKETS": 24576,
    "EF_MAX_TX_PACKETS": 24576,
    "EF_UDP_SEND_NONBLOCK_NO_PACKETS_MODE": False,
    "EF_TCP_BACKLOG_MAX": 256,
    "EF_TCP_SYNRECV_MAX": 1024,
    "EF_ACCEPTQ_MAX_BACKLOG": 4096,
    "EF_TCP_FIN_TIMEOUT": 60,
    "EF_TCP_TCONST_MSL": 25,
    "EF_RFC_RTO_INITIAL": 1000,
    "EF_RFC_RTO_MIN": 200,
    "EF_RFC_RTO_MAX": 120000,
    "EF_TCP_SNDBUF": 0,
    "EF_TCP_RCVBUF": 0,
    "EF_MCAST_RECV": True,
    "EF_MCAST_SEND": McastSend.NONE,
    "EF_MCAST_JOIN_HANDOVER": McastJoinHandover.OFF,
}

# One valid non-default value per option: (environment string, typed value).
VALID: dict[str, tuple[str, object]] = {
    "EF_MAX_ENDPOINTS": ("4", 4),
    "EF_NO_FAIL": ("0", False),
    "EF_NAME": ("shared-stack", "shared-stack"),
    "EF_TCP": ("0", False),
    "EF_UDP": ("0", False),
    "EF_INTERFACE_WHITELIST": ("eth0 eth1", ("eth0", "eth1")),
    "EF_INTERFACE_BLACKLIST": ("  lo ", ("lo",)),
    "EF_MAX_FILTERS": ("16", 16),
    "EF_RXQ_SIZE": ("2048", 2048),
    "EF_TXQ_SIZE": ("1024", 1024),
    "EF_MAX_PACKETS": ("65536", 65536),
    "EF_MAX_RX_PACKETS": ("1000", 1000),
    "EF_MAX_TX_PACKETS": ("2000", 2000),
    "EF_UDP_SEND_NONBLOCK_NO_PACKETS_MODE": ("1", True),
    "EF_TCP_BACKLOG_MAX": ("128", 128),
    "EF_TCP_SYNRECV_MAX": ("2048", 2048),
    "EF_ACCEPTQ_MAX_BACKLOG": ("8", 8),
    "EF_TCP_FIN_TIMEOUT": ("5", 5),
    "EF_TCP_TCONST_MSL": ("1", 1),
    "EF_RFC_RTO_INITIAL": ("500", 500),
    "EF_RFC_RTO_MIN": ("100", 100),
    "EF_RFC_RTO_MAX": ("60000", 60000),
    "EF_TCP_SNDBUF": ("65536", 65536),
    "EF_TCP_RCVBUF": ("131072", 131072),
    "EF_MCAST_RECV": ("0", False),
    "EF_MCAST_SEND": ("3", McastSend.ALL),
    "EF_MCAST_JOIN_HANDOVER": ("kernel", McastJoinHandover.KERNEL),
}

# Values each option refuses, and what the error must say is allowed.
BAD: dict[str, tuple[list[str], str]] = {
    "EF_MAX_ENDPOINTS": (["0", "3", "5", "6000", "4194304", "-8"], "must be a power of two in 4..2097152"),
    "EF_NO_FAIL": (["2", "-1", "yes", ""], "must be 0 or 1"),
    "EF_TCP": (["2", "true"], "must be 0 or 1"),
    "EF_UDP": (["10"], "must be 0 or 1"),
    "EF_MAX_FILTERS": (["-1", "2097153"], "must be an integer in 0..2097152"),
    "EF_RXQ_SIZE": (
        ["0", "256", "513", "65536", "-2"],
        "must be one of -1, 512, 1024, 2048, 4096, 8192, 16384, 32768",
    ),
    "EF_TXQ_SIZE": (["8192", "100", "0"], "must be one of -1, 512, 1024, 2048, 4096"),
    "EF_MAX_PACKETS": (["1023", "0", "4294967296"], "must be an integer in 1024..4294967295"),
    "EF_MAX_RX_PACKETS": (["-1", "1000000001"], "must be an integer in 0..1000000000"),
    "EF_MAX_TX_PACKETS": (["-5", "2000000000"], "must be an integer in 0..1000000000"),
    "EF_UDP_SEND_NONBLOCK_NO_PACKETS_MODE": (["2", "-1"], "must be 0 or 1"),
    "EF_TCP_BACKLOG_MAX": (["-1", "4294967296"], "must be an integer in 0..4294967295"),
    "EF_TCP_SYNRECV_MAX": (["2097153", "-1"], "must be an integer in 0..2097152"),
    "EF_ACCEPTQ_MAX_BACKLOG": (["-1"], "must be an integer in 0..4294967295"),
    "EF_TCP_FIN_TIMEOUT": (["256", "-1"], "must be an integer in 0..255"),
    "EF_TCP_TCONST_MSL": (["300"], "must be an integer in 0..255"),
    "EF_RFC_RTO_INITIAL": (["-1", "1e3"], "must be an integer in 0..4294967295"),
    "EF_RFC_RTO_MIN": (["0.2"], "must be an integer in 0..4294967295"),
    "EF_RFC_RTO_MAX": (["4294967296"], "must be an integer in 0..4294967295"),
    "EF_TCP_SNDBUF": (["1073741824", "-1"], "must be an integer in 0..1073741823"),
    "EF_TCP_RCVBUF": (["2147483647"], "must be an integer in 0..1073741823"),
    "EF_MCAST_RECV": (["2"], "must be 0 or 1"),
    "EF_MCAST_SEND": (["4", "loop"], "must be one of 0 (none), 1 (local), 2 (ext), 3 (all)"),
    "EF_MCAST_JOIN_HANDOVER": (["3", "-1", "on"], "must be one of 0 (off), 1 (kernel), 2 (always)"),
}
BAD_CASES = [(name, raw, allowed) for name, (raws, allowed) in BAD.items() for raw in raws]

INT_RANGES = [o for o in OPTIONS if o.kind == "int" and not o.choices and not o.power_of_two]


def test_tables_cover_every_option() -> None:
    names = {o.name for o in OPTIONS}
    assert set(DEFAULTS) == names and set(VALID) == names
    assert set(BAD) == names - {"EF_NAME", "EF_INTERFACE_WHITELIST", "EF_INTERFACE_BLACKLIST"}


# --- defaults -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", DEFAULTS)
def test_default_is_onloads(name: str) -> None:
    option = BY_NAME[name]
    assert option.default == DEFAULTS[name]
    assert Config()[name] == DEFAULTS[name]
    assert Config.from_env({})[name] == DEFAULTS[name]
    field = next(f for f in dataclasses.fields(Config) if f.name == option.field)
    assert field.default == DEFAULTS[name]  # the dataclass default agrees with the table


def test_defaults_are_consistent_and_nothing_is_set() -> None:
    cfg = Config.from_env({})
    assert cfg == Config()
    assert (dict(cfg.explicit), cfg.unknown, cfg.ignored, cfg.warnings) == ({}, (), (), ())
    assert (cfg.effective_rxq_size, cfg.effective_txq_size) == (512, 512)


# --- one valid non-default value ----------------------------------------------------------------
@pytest.mark.parametrize("name", VALID)
def test_valid_non_default_value(name: str) -> None:
    raw, typed = VALID[name]
    assert typed != DEFAULTS[name]
    cfg = Config.from_env({name: raw})
    assert cfg[name] == typed and type(cfg[name]) is type(typed)
    assert cfg.is_set(name) and dict(cfg.explicit) == {name: typed}
    assert Config().with_options({name: typed})[name] == typed  # typed values too
    assert Config().with_options({BY_NAME[name].field: raw})[name] == typed  # field names too


# --- errors --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "raw", "allowed"), BAD_CASES)
def test_bad_value_is_an_error_naming_option_value_and_range(name: str, raw: str, allowed: str) -> None:
    with pytest.raises(ConfigError) as err:
        Config.from_env({name: raw})
    assert str(err.value) == f"{name}={raw}: {allowed}"
    assert (err.value.option, err.value.value, err.value.allowed) == (name, raw, allowed)


@pytest.mark.parametrize("raw", ["", " ", "12abc", "0x10", "1.5", "1_000", "ten", "--1"])
def test_malformed_integers_are_errors(raw: str) -> None:
    with pytest.raises(ConfigError, match=r"^EF_TCP_FIN_TIMEOUT=.*: must be an integer in 0\.\.255$"):
        Config.from_env({"EF_TCP_FIN_TIMEOUT": raw})


def test_surrounding_whitespace_and_sign_are_accepted() -> None:
    assert Config.from_env({"EF_TCP_FIN_TIMEOUT": " +7\n"}).tcp_fin_timeout == 7


def test_direct_construction_is_validated_and_typed() -> None:
    with pytest.raises(ConfigError, match="EF_MAX_ENDPOINTS=3: must be a power of two"):
        Config(max_endpoints=3)
    assert Config(mcast_send=1).mcast_send is McastSend.LOCAL  # type: ignore[arg-type]


def test_config_is_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Config().max_endpoints = 16  # type: ignore[misc]


# --- hypothesis over the integer ranges -------------------------------------------------------
@pytest.mark.parametrize("option", INT_RANGES, ids=lambda o: o.name)
@given(data=st.data())
def test_integer_range_is_exactly_onloads(option: Option, data: st.DataObject) -> None:
    inside = data.draw(st.integers(option.lo, option.hi), label="inside")
    assert Config.from_env({option.name: str(inside)}).explicit[option.name] == inside  # before any repair
    outside = data.draw(
        st.one_of(st.integers(max_value=option.lo - 1), st.integers(min_value=option.hi + 1)), label="outside"
    )
    with pytest.raises(ConfigError) as err:
        Config.from_env({option.name: str(outside)})
    assert str(err.value) == f"{option.name}={outside}: must be an integer in {option.lo}..{option.hi}"


@given(st.integers(2, 21))
def test_max_endpoints_takes_every_power_of_two_in_range(shift: int) -> None:
    assert Config.from_env({"EF_MAX_ENDPOINTS": str(1 << shift)}).max_endpoints == 1 << shift


@given(st.integers(4, 1 << 21).filter(lambda n: n & (n - 1)))
def test_max_endpoints_refuses_other_numbers(n: int) -> None:
    with pytest.raises(ConfigError, match=rf"^EF_MAX_ENDPOINTS={n}: must be a power of two in 4\.\.2097152$"):
        Config.from_env({"EF_MAX_ENDPOINTS": str(n)})


# --- names Onload would warn about -------------------------------------------------------------
def test_unknown_and_unmodelled_names_are_listed_not_errors() -> None:
    cfg = Config.from_env(
        {"EF_NOT_AN_OPTION": "1", "EF_POLL_USEC": "50", "PATH": "/bin", "EF_TCP_RTO_MIN": "1"}
    )
    assert cfg.unknown == ("EF_NOT_AN_OPTION", "EF_TCP_RTO_MIN")  # the real name is EF_RFC_RTO_MIN
    assert cfg.ignored == ("EF_POLL_USEC",)
    assert cfg == Config()
    assert cfg.with_options(EF_TCP="0").unknown == ("EF_NOT_AN_OPTION", "EF_TCP_RTO_MIN")


def test_from_env_defaults_to_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EF_MAX_ENDPOINTS", "64")
    assert Config.from_env().max_endpoints == 64


# --- Onload's derived relations (ci_netif_config_opts_getenv) -----------------------------------
def test_max_packets_sets_rx_and_tx_limits_to_three_quarters() -> None:
    cfg = Config.from_env({"EF_MAX_PACKETS": "8192"})
    assert (cfg.max_packets, cfg.max_rx_packets, cfg.max_tx_packets, cfg.warnings) == (8192, 6144, 6144, ())
    cfg = Config.from_env({"EF_MAX_PACKETS": "8192", "EF_MAX_RX_PACKETS": "100"})
    assert (cfg.max_rx_packets, cfg.max_tx_packets) == (100, 6144)


def test_max_packets_is_rounded_up_to_a_packet_set() -> None:
    cfg = Config.from_env({"EF_MAX_PACKETS": "2000"})
    assert cfg.max_packets == 2048
    assert cfg.warnings == ("EF_MAX_PACKETS=2000: not a multiple of 1024; rounded to 2048",)
    with pytest.raises(ConfigError, match=r"^EF_MAX_PACKETS=2000: not a multiple of 1024"):
        Config.from_env({"EF_MAX_PACKETS": "2000"}, strict=True)


@pytest.mark.parametrize("name", ["EF_MAX_RX_PACKETS", "EF_MAX_TX_PACKETS"])
def test_rx_or_tx_limit_above_max_packets_is_cut_with_a_clear_message(name: str) -> None:
    cfg = Config.from_env({name: "40000"})
    assert cfg[name] == 32768
    assert cfg.warnings == (f"{name}=40000: exceeds EF_MAX_PACKETS=32768; reduced to 32768",)
    with pytest.raises(ConfigError) as err:
        Config.from_env({name: "40000"}, strict=True)
    assert str(err.value) == f"{name}=40000: exceeds EF_MAX_PACKETS=32768; reduced to 32768"


def test_backlog_max_sets_synrecv_max_unless_given() -> None:
    assert Config.from_env({"EF_TCP_BACKLOG_MAX": "64"}).tcp_synrecv_max == 256
    assert Config.from_env({"EF_TCP_BACKLOG_MAX": "64", "EF_TCP_SYNRECV_MAX": "10"}).tcp_synrecv_max == 10


def test_synrecv_inconsistent_with_endpoints_is_reported() -> None:
    """~4 SYN-RECEIVED states use one endpoint: 4 x synrecv > 7 x endpoints is an error
    Onload logs but keeps when the user set either (EF_MAX_ENDPOINTS=4 is legal)."""
    cfg = Config.from_env({"EF_MAX_ENDPOINTS": "4"})
    assert (cfg.max_endpoints, cfg.tcp_synrecv_max) == (4, 1024)
    assert cfg.warnings == (
        "EF_TCP_SYNRECV_MAX=1024: inconsistent with EF_MAX_ENDPOINTS=4:"
        " ~4 syn-receive states consume one endpoint",
    )
    with pytest.raises(ConfigError, match=r"^EF_TCP_SYNRECV_MAX=1024: inconsistent"):
        Config.from_env({"EF_MAX_ENDPOINTS": "4"}, strict=True)
    assert (
        Config.from_env({"EF_MAX_ENDPOINTS": "1024", "EF_TCP_SYNRECV_MAX": "1792"}, strict=True).warnings
        == ()
    )


def test_rto_initial_outside_min_max_is_reported() -> None:
    cfg = Config.from_env({"EF_RFC_RTO_MIN": "2000"})
    assert cfg.warnings == (
        "EF_RFC_RTO_INITIAL=1000: must lie in EF_RFC_RTO_MIN..EF_RFC_RTO_MAX = 2000..120000",
    )
    with pytest.raises(ConfigError):
        Config.from_env({"EF_RFC_RTO_MAX": "10"}, strict=True)


# --- with_options ---------------------------------------------------------------------------------
def test_with_options_keeps_what_was_set_and_rederives() -> None:
    base = Config.from_env({"EF_MAX_PACKETS": "8192", "EF_NAME": "a"})
    cfg = base.with_options(EF_MAX_PACKETS=4096, rxq_size="1024")
    assert (cfg.name, cfg.max_packets, cfg.max_rx_packets, cfg.rxq_size) == ("a", 4096, 3072, 1024)
    assert dict(cfg.explicit) == {"EF_MAX_PACKETS": 4096, "EF_NAME": "a", "EF_RXQ_SIZE": 1024}
    assert base.max_packets == 8192  # unchanged
    with pytest.raises(ConfigError, match=r"^EF_TXQ_SIZE=3: must be one of"):
        base.with_options(txq_size=3)


# --- describe() ----------------------------------------------------------------------------------
def test_describe_lists_every_option_with_its_default_when_different() -> None:
    cfg = Config.from_env({"EF_MAX_ENDPOINTS": "16", "EF_MCAST_SEND": "1", "EF_BOGUS": "x"})
    lines = cfg.describe().splitlines()
    assert len([line for line in lines if line.lstrip().startswith("EF_")]) == len(OPTIONS)
    assert "              EF_MAX_ENDPOINTS: 16 (default: 8192)" in lines
    assert "                 EF_MCAST_SEND: 1 (local) (default: 0 (none))" in lines
    assert "                    EF_NO_FAIL: 1" in lines
    assert "                       unknown: EF_BOGUS" in lines
