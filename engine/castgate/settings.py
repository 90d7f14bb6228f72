"""Every setting in one place: defaults, ``CASTGATE_*`` environment variables, command-line flags.

Precedence is flag over environment over default. :meth:`Settings.to_env` writes the settings
back as environment variables, which is how ``castgate serve --workers N`` hands the resolved
settings to worker processes that build their app with ``create_app_from_env``.
"""

from __future__ import annotations

import importlib.resources
import ipaddress
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from castgate.lang.values import Secret

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMATS = ("json", "text")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Webhook bodies are a few hundred bytes; anything near this is not a streaming server talking.
DEFAULT_MAX_BODY = 1024 * 1024

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
    #: How long one call to the state backend may take before the decision fails.
    state_deadline: float = 0.25
    #: ``vendor:action`` pairs (``*`` for any) that fail open when a dependency of the decision
    #: (the state backend, a policy function's upstream) fails or misses its deadline; every
    #: other decision is denied then (fail closed).
    fail_open: frozenset[str] = frozenset()
    #: Append every decision as a JSON line to this file (see docs/operating.md).
    decision_log: Path | None = None
    #: Seconds between writes of the decision log; 0 writes each decision as it is made.
    decision_log_flush: float = 1.0
    #: fsync the decision log after each write, so a power cut loses at most one interval.
    decision_log_fsync: bool = False
    #: Rotate the decision log when it reaches this many bytes (0: never; leave it to logrotate).
    decision_log_max_bytes: int = 256 * 1024 * 1024
    #: Rotated decision logs kept; older ones are deleted.
    decision_log_keep: int = 10
    #: Event fields whose values the decision log replaces with ``<redacted>``, in addition to
    #: every param or raw field whose name says it is secret (token, key, sign, pass, ...).
    decision_log_redact: frozenset[str] = frozenset()
    #: Level of the one line per decision on stderr: ``info``, ``debug`` or ``off``.
    log_decisions: str = "info"
    #: Largest request body accepted, in bytes.
    max_body: int = DEFAULT_MAX_BODY
    #: Hook requests must carry this secret (header or path); ``None``: not required.
    hook_secret: Secret | None = None
    #: Hook requests are accepted only from these networks; empty: from anywhere.
    hook_networks: tuple[IPNetwork, ...] = ()
    #: Proxies whose ``X-Forwarded-For`` names the real caller of a hook.
    trusted_proxies: tuple[IPNetwork, ...] = ()
    #: Hook requests per second accepted from one caller address; 0: no limit.
    hook_rate: float = 0.0
    #: Vendor name -> environment variable holding the key its requests are signed with.
    signing_keys: Mapping[str, str] = field(default_factory=dict)

    def fails_open(self, vendor: str, action: str) -> bool:
        """Whether a decision for ``vendor`` and ``action`` is made (or allowed) anyway when a
        dependency of it fails."""
        return bool(
            {f"{vendor}:{action}", f"{vendor}:*", f"*:{action}", "*:*", "*"} & self.fail_open
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


def parse_path(text: str) -> Path | None:
    """A file path; empty text means none."""
    return Path(text.strip()) if text.strip() else None


def parse_interval(text: str) -> float:
    """Like :func:`parse_duration`, but ``0`` is allowed (meaning "at once")."""
    return 0.0 if text.strip() in ("0", "0s") else parse_duration(text)


def parse_size(text: str) -> int:
    """Bytes from ``1048576``, ``512k``, ``64m``, ``1g``; ``0`` is allowed."""
    match = _SIZE.fullmatch(text.strip().lower())
    if match is None:
        raise ValueError(f"expected a size such as 1048576, 512k, 64m or 1g, got {text!r}")
    return int(match[1]) * _UNIT_BYTES[match[2]]


_SIZE = re.compile(r"([0-9]+)([kmg]?)b?")
_UNIT_BYTES = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_keep(text: str) -> int:
    return _integer(text, 1, 10_000)


def parse_decision_level(text: str) -> str:
    return _choice(text, ("info", "debug", "off"))


def parse_hook_secret(text: str) -> Secret | None:
    if not text:
        return None
    # A short secret in a URL is guessable by anyone who can reach the port.
    if len(text) < 16:
        raise ValueError("expected a secret of at least 16 characters")
    if any(not char.isprintable() or char in "/?#%" or char.isspace() for char in text):
        raise ValueError("expected printable characters other than / ? # % and spaces")
    return Secret(text, "env CASTGATE_HOOK_SECRET")


def parse_networks(text: str) -> tuple[IPNetwork, ...]:
    networks = []
    for part in text.split(","):
        if part.strip():
            try:
                networks.append(ipaddress.ip_network(part.strip(), strict=False))
            except ValueError:
                raise ValueError(
                    f"expected addresses or networks such as 10.0.0.0/8 or ::1, got {part!r}"
                ) from None
    return tuple(networks)


def format_networks(networks: tuple[IPNetwork, ...]) -> str:
    return ",".join(str(network) for network in networks)


def parse_rate(text: str) -> float:
    """Requests per second from ``50``, ``50/s`` or ``600/m``; ``0`` means no limit."""
    match = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)(?:/(s|m))?", text.strip())
    if match is None:
        raise ValueError(f"expected a rate such as 50/s or 600/m (0: no limit), got {text!r}")
    return float(match[1]) / (60.0 if match[2] == "m" else 1.0)


def parse_signing_keys(text: str) -> dict[str, str]:
    keys = {}
    for pair in parse_names(text):
        vendor, _, variable = pair.partition("=")
        if not vendor.strip() or not variable.strip():
            raise ValueError(f"expected vendor=VARIABLE pairs such as ome=OME_SECRET, got {pair!r}")
        keys[vendor.strip()] = variable.strip()
    return keys


def format_signing_keys(keys: Mapping[str, str]) -> str:
    return ",".join(f"{vendor}={variable}" for vendor, variable in sorted(keys.items()))


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
    _Setting("state_deadline", "CASTGATE_STATE_DEADLINE", parse_duration, lambda s: f"{s:g}"),
    _Setting(
        "fail_open", "CASTGATE_FAIL_OPEN", parse_fail_open, lambda pairs: ",".join(sorted(pairs))
    ),
    _Setting("decision_log", "CASTGATE_DECISION_LOG", parse_path, lambda p: str(p or "")),
    _Setting(
        "decision_log_flush", "CASTGATE_DECISION_LOG_FLUSH", parse_interval, lambda s: f"{s:g}"
    ),
    _Setting(
        "decision_log_fsync", "CASTGATE_DECISION_LOG_FSYNC", parse_bool, lambda f: str(int(f))
    ),
    _Setting("decision_log_max_bytes", "CASTGATE_DECISION_LOG_MAX_BYTES", parse_size),
    _Setting("decision_log_keep", "CASTGATE_DECISION_LOG_KEEP", parse_keep),
    _Setting(
        "decision_log_redact",
        "CASTGATE_DECISION_LOG_REDACT",
        parse_names,
        lambda names: ",".join(sorted(names)),
    ),
    _Setting("log_decisions", "CASTGATE_LOG_DECISIONS", parse_decision_level),
    _Setting("max_body", "CASTGATE_MAX_BODY", parse_size),
    _Setting(
        "hook_secret",
        "CASTGATE_HOOK_SECRET",
        parse_hook_secret,
        lambda secret: secret.reveal() if secret else "",
    ),
    _Setting("hook_networks", "CASTGATE_HOOK_NETWORKS", parse_networks, format_networks),
    _Setting("trusted_proxies", "CASTGATE_TRUSTED_PROXIES", parse_networks, format_networks),
    _Setting("hook_rate", "CASTGATE_HOOK_RATE", parse_rate, lambda r: f"{r:g}"),
    _Setting("signing_keys", "CASTGATE_SIGNING_KEYS", parse_signing_keys, format_signing_keys),
)

#: The environment variable of each setting, by field name.
VARIABLES: Mapping[str, str] = {setting.field: setting.variable for setting in _SETTINGS}
