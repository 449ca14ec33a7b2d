"""Run options: packetdrill's configuration (GRAMMAR.md §7), script and command line.

The same names work at the top of a script (``--tolerance_usecs=10000``) and on the
command line; command-line values win.  Unknown options are kept and reported as
ignored with a warning, as the issue asks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..script.syntax import Script


@dataclass(frozen=True)
class RunOptions:
    ip_version: str = "ipv4"
    local_ip: str = "192.168.0.1"
    remote_ip: str = "192.0.2.1"
    gateway_ip: str = "192.168.0.1"
    netmask_ip: str = "255.255.0.0"
    bind_port: int = 8080
    connect_port: int = 8080
    tolerance_usecs: int = 4000
    tolerance_percent: float = 12.5
    tcp_ts_tick_usecs: int = 0
    strict_segments: bool = False
    mtu: int = 1500
    non_fatal: frozenset[str] = frozenset()
    ignored: tuple[str, ...] = field(default=())  # options accepted but not implemented
    # Extensions (EXTENSIONS.md): what a target must offer to run the case, and the
    # Onload EF_* options the case runs with (refstack; other targets note and ignore them).
    require: frozenset[str] = frozenset()
    ef_options: tuple[tuple[str, str], ...] = ()


_INT = {"bind_port", "connect_port", "tolerance_usecs", "tcp_ts_tick_usecs", "mtu"}
_STR = {"ip_version", "local_ip", "remote_ip", "gateway_ip", "netmask_ip"}
_KNOWN_IGNORED = {"define", "D", "verbose", "v", "debug", "dry_run", "send_omit_free", "init_scripts"}


class OptionError(ValueError):
    pass


def _apply(values: dict[str, object], name: str, value: str | None) -> None:
    name = name.lstrip("-")
    if name in _INT:
        try:
            values[name] = int(value or "")
        except ValueError:
            raise OptionError(f"--{name} needs an integer, got {value!r}") from None
    elif name in _STR:
        if not value:
            raise OptionError(f"--{name} needs a value")
        values[name] = value
    elif name == "tolerance_percent":
        try:
            values[name] = float(value or "")
        except ValueError:
            raise OptionError(f"--tolerance_percent needs a number, got {value!r}") from None
    elif name == "strict_segments":
        values[name] = True
    elif name == "non_fatal":
        values[name] = frozenset((value or "").split(","))
    elif name == "require":
        wanted = frozenset(w.strip() for w in (value or "").split(",") if w.strip())
        if not wanted:
            raise OptionError("--require needs a target name or feature, as in --require=refstack")
        values[name] = values.get(name, frozenset()) | wanted  # type: ignore[operator]
    elif name == "ef":
        key, sep, setting = (value or "").partition("=")
        if not sep or not key.startswith("EF_") or not setting:
            raise OptionError(f"--ef needs EF_NAME=VALUE, as in --ef=EF_MAX_ENDPOINTS=4; got {value!r}")
        kept = [kv for kv in values.get("ef_options", ()) if kv[0] != key]  # type: ignore[attr-defined]
        values["ef_options"] = (*kept, (key, setting))
    elif name not in _KNOWN_IGNORED:
        values["ignored"] = (*values.get("ignored", ()), name)  # type: ignore[misc]


def merge(
    script: Script, cli: dict[str, str | None] | None = None, *, default_tolerance_usecs: int = 4000
) -> RunOptions:
    """Script options first, then the command line's (packetdrill's precedence).
    ``default_tolerance_usecs`` is the target's default when neither sets one."""
    values: dict[str, object] = {"tolerance_usecs": default_tolerance_usecs}
    for opt in script.options:
        _apply(values, opt.name, opt.value)
    for name, value in (cli or {}).items():
        _apply(values, name, value)
    options = RunOptions(**values)  # type: ignore[arg-type]
    if options.ip_version != "ipv4":
        raise OptionError(f"--ip_version={options.ip_version}: only ipv4 is supported by this harness")
    return options
