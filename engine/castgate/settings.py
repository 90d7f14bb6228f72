"""Every setting in one place: defaults, ``CASTGATE_*`` environment variables, command-line flags.

Precedence is flag over environment over default. :meth:`Settings.to_env` writes the settings
back as environment variables, which is how ``castgate serve --workers N`` hands the resolved
settings to worker processes that build their app with ``create_app_from_env``.
"""

from __future__ import annotations

import importlib.resources
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMATS = ("json", "text")

#: Not 8080: nginx-rtmp set-ups commonly serve HLS and the stat page there on the same host.
DEFAULT_PORT = 8070


class SettingsError(ValueError):
    """An invalid setting; the message names the variable or flag and what it accepts."""


def default_policies() -> tuple[Path, ...]:
    """The safe default policy shipped inside the castgate package."""
    return (Path(str(importlib.resources.files("castgate.default_policy"))),)


def default_log_format() -> str:
    """Text for a person at a terminal, JSON lines for whatever collects a service's stderr."""
    return "text" if sys.stderr.isatty() else "json"


@dataclass(frozen=True, slots=True)
class Settings:
    #: Policy files or directories (a directory means its ``*.policy`` files in name order).
    policies: tuple[Path, ...] = field(default_factory=default_policies)
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    workers: int = 1
    #: Entry-point names of plugins not to load.
    disabled_plugins: frozenset[str] = frozenset()
    log_level: str = "info"
    log_format: str = field(default_factory=default_log_format)
    #: Attach the rule-by-rule trace to every decision (costs time; for debugging).
    explain: bool = False
    #: Seconds after its last update that a session which was receiving updates ends by itself
    #: (its done event was lost).
    session_idle: float = 120.0
    #: Seconds after which a session that never received an update ends by itself, for vendors
    #: that send no updates.
    session_max_age: float = 12 * 3600.0
    #: ``memory`` (this process only, lost on restart) or ``redis://host:port/db`` (shared).
    state: str = "memory"
    #: ``vendor:action`` pairs (``*`` for any) decided without session state when it cannot be
    #: reached; every other decision is denied then (fail closed).
    state_fail_open: frozenset[str] = frozenset()

    def fails_open(self, vendor: str, action: str) -> bool:
        """Whether a decision for ``vendor`` and ``action`` is made without state when the state
        backend is unreachable."""
        return bool(
            {f"{vendor}:{action}", f"{vendor}:*", f"*:{action}", "*:*", "*"} & self.state_fail_open
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``CASTGATE_*`` variables (of ``os.environ`` by default)."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for setting in _SETTINGS:
            if setting.variable in env:
                try:
                    values[setting.field] = setting.parse(env[setting.variable])
                except ValueError as error:
                    raise SettingsError(f"{setting.variable}: {error}") from None
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """These settings as ``CASTGATE_*`` variables; :meth:`from_env` reads them back equal."""
        return {
            setting.variable: setting.format(getattr(self, setting.field)) for setting in _SETTINGS
        }


# Parsers take the text of one variable or flag and raise ValueError saying what is accepted;
# the command line uses the same ones, so a flag and its variable accept exactly the same values.


def parse_paths(text: str) -> tuple[Path, ...]:
    paths = tuple(Path(part) for part in text.split(os.pathsep) if part.strip())
    if not paths:
        raise ValueError("expected one or more policy files or directories")
    return paths


def parse_host(text: str) -> str:
    if not text.strip():
        raise ValueError("expected an address to listen on, e.g. 127.0.0.1 or ::")
    return text.strip()


def parse_port(text: str) -> int:
    return _integer(text, 1, 65535)


def parse_workers(text: str) -> int:
    return _integer(text, 1, 512)


def parse_names(text: str) -> frozenset[str]:
    return frozenset(name.strip() for name in text.split(",") if name.strip())


def parse_log_level(text: str) -> str:
    return _choice(text, LOG_LEVELS)


def parse_log_format(text: str) -> str:
    return _choice(text, LOG_FORMATS)


def parse_bool(text: str) -> bool:
    word = text.strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected true or false (1/0, yes/no, on/off), got {text!r}")


def parse_duration(text: str) -> float:
    """Seconds from ``90``, ``90s``, ``2m``, ``1h30m``, ``1d``."""
    word = text.strip()
    if _SECONDS_ONLY.fullmatch(word):
        seconds = float(word)
    elif _DURATION.fullmatch(word):
        seconds = sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(word))
    else:
        raise ValueError(f"expected a duration such as 90s, 2m or 1h30m, got {text!r}")
    if seconds <= 0:
        raise ValueError(f"expected a duration above zero, got {text!r}")
    return seconds


_SECONDS_ONLY = re.compile(r"[0-9]+(\.[0-9]+)?")
_DURATION = re.compile(r"([0-9]+(ms|s|m|h|d))+")
_DURATION_PART = re.compile(r"([0-9]+)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_state(text: str) -> str:
    word = text.strip()
    if word == "memory" or word.startswith(("redis://", "rediss://", "unix://")):
        return word
    raise ValueError(f"expected memory or redis://host:port/db, got {text!r}")


def parse_fail_open(text: str) -> frozenset[str]:
    pairs = parse_names(text)
    for pair in pairs:
        if pair != "*" and pair.count(":") != 1:
            raise ValueError(f"expected vendor:action pairs such as nginx_rtmp:play, got {pair!r}")
    return pairs


def _integer(text: str, low: int, high: int) -> int:
    problem = f"expected a whole number from {low} to {high}, got {text!r}"
    try:
        number = int(text.strip())
    except ValueError:
        raise ValueError(problem) from None
    if not low <= number <= high:
        raise ValueError(problem)
    return number


def _choice(text: str, choices: tuple[str, ...]) -> str:
    word = text.strip().lower()
    if word not in choices:
        raise ValueError(f"expected one of {', '.join(choices)}, got {text!r}")
    return word


@dataclass(frozen=True, slots=True)
class _Setting:
    field: str
    variable: str
    parse: Callable[[str], Any]
    format: Callable[[Any], str] = str


_SETTINGS = (
    _Setting(
        "policies",
        "CASTGATE_POLICIES",
        parse_paths,
        lambda paths: os.pathsep.join(str(path) for path in paths),
    ),
    _Setting("host", "CASTGATE_HOST", parse_host),
    _Setting("port", "CASTGATE_PORT", parse_port),
    _Setting("workers", "CASTGATE_WORKERS", parse_workers),
    _Setting(
        "disabled_plugins",
        "CASTGATE_DISABLE_PLUGINS",
        parse_names,
        lambda names: ",".join(sorted(names)),
    ),
    _Setting("log_level", "CASTGATE_LOG_LEVEL", parse_log_level),
    _Setting("log_format", "CASTGATE_LOG_FORMAT", parse_log_format),
    _Setting("explain", "CASTGATE_EXPLAIN", parse_bool, lambda flag: "1" if flag else "0"),
    _Setting("session_idle", "CASTGATE_SESSION_IDLE", parse_duration, lambda s: f"{s:g}"),
    _Setting("session_max_age", "CASTGATE_SESSION_MAX_AGE", parse_duration, lambda s: f"{s:g}"),
    _Setting("state", "CASTGATE_STATE", parse_state),
    _Setting(
        "state_fail_open",
        "CASTGATE_STATE_FAIL_OPEN",
        parse_fail_open,
        lambda pairs: ",".join(sorted(pairs)),
    ),
)

#: The environment variable of each setting, by field name.
VARIABLES: Mapping[str, str] = {setting.field: setting.variable for setting in _SETTINGS}
