"""What of the EF_* configuration reaches the stack today: ``Stack(config=...)``, EF_NAME,
and the options the profile has a knob for (refstack/profile.py ``with_config``)."""

from __future__ import annotations

import pytest

from refstack.config import Config
from refstack.profile import Profile
from refstack.stack import Stack


def test_stack_keeps_its_config_and_defaults_to_onloads() -> None:
    cfg = Config.from_env({"EF_MAX_ENDPOINTS": "4"})
    assert Stack(config=cfg).config is cfg
    assert Stack().config == Config()


def test_stack_never_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sans-I/O (DESIGN.md): the environment is the caller's to read (Config.from_env)."""
    monkeypatch.setenv("EF_MAX_ENDPOINTS", "4")
    assert Stack().config.max_endpoints == 8192


def test_ef_name_names_the_stack_unless_a_name_is_given() -> None:
    cfg = Config.from_env({"EF_NAME": "shared"})
    assert Stack(config=cfg).name == "shared"
    assert Stack(config=cfg, name="explicit").name == "explicit"
    assert Stack().name == "refstack"


def test_unset_options_leave_the_linux_profile_alone() -> None:
    """Onload takes these defaults from /proc/sys/net too: only explicit options apply."""
    assert Stack(config=Config()).profile == Profile()
    linux = Profile.linux()
    assert Stack(linux, config=Config.from_env({"EF_TCP": "0"})).profile == linux


@pytest.mark.parametrize(
    ("env", "field", "value"),
    [
        ({"EF_RFC_RTO_INITIAL": "3000"}, "tcp_rto_initial", 3.0),
        ({"EF_RFC_RTO_MIN": "50"}, "tcp_rto_min", 0.05),
        ({"EF_RFC_RTO_MAX": "60000"}, "tcp_rto_max", 60.0),
        ({"EF_TCP_FIN_TIMEOUT": "5"}, "tcp_fin_timeout", 5.0),
        ({"EF_TCP_TCONST_MSL": "10"}, "tcp_timewait_len", 20.0),  # TIME-WAIT = 2 MSL
        ({"EF_TCP_BACKLOG_MAX": "16"}, "tcp_max_syn_backlog", 16),
        ({"EF_ACCEPTQ_MAX_BACKLOG": "8"}, "somaxconn", 8),
    ],
)
def test_explicit_options_override_the_matching_profile_field(
    env: dict[str, str], field: str, value: object
) -> None:
    stack = Stack(config=Config.from_env(env))
    assert getattr(stack.profile, field) == value
    assert type(getattr(stack.profile, field)) is type(getattr(Profile(), field))
    assert stack.profile.replace(**{field: getattr(Profile(), field)}) == Profile()  # nothing else moved
