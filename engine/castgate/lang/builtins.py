"""The functions every policy can call.

Two kinds: *load* functions (``lines``, ``cidrs``, ``pairs``, ``env``, ``secret_file``) run once
when the policy compiles, with constant arguments, and their result is a constant; *event*
functions run per decision and receive the event and the session state first.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from castgate.events import Event
from castgate.lang.addresses import AddressError, IpSet, parse_network
from castgate.lang.errors import Code
from castgate.lang.tokens import secure_link, verify_jwt
from castgate.lang.types import Type
from castgate.lang.values import MISSING, Missing, Secret
from castgate.state import SessionView

#: Text that reads as a number: plain decimal, optional sign and fraction.
DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")


class LoadError(Exception):
    """A load function failed; the checker anchors it at the call."""

    def __init__(self, code: Code, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint


@dataclass(frozen=True, slots=True)
class LoadContext:
    """What load functions may see: the policy's directory and the environment."""

    policy_dir: Path
    root_dir: Path
    env: Mapping[str, str]
    #: ``path:sha256`` of every data file read, so the policy version changes with the data.
    read: list[str] = field(default_factory=list)

    def resolve(self, name: str) -> Path:
        """A data file named relative to the policy; it must stay inside the policy tree."""
        path = (self.policy_dir / name).resolve()
        root = self.root_dir.resolve()
        if not path.is_relative_to(root):
            raise LoadError(
                Code.PATH_ESCAPES,
                f"`{name}` is outside the policy's directory",
                "data files live next to the policies that use them",
            )
        return path

    def read_text(self, name: str) -> str:
        path = self.resolve(name)
        try:
            data = path.read_bytes()
            text = data.decode("utf-8")
        except (OSError, UnicodeDecodeError) as err:
            reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
            raise LoadError(Code.FILE_UNREADABLE, f"cannot read `{name}`: {reason}") from None
        self.read.append(f"{path}:{hashlib.sha256(data).hexdigest()}")
        return text

    def read_lines(self, name: str) -> list[tuple[int, str]]:
        """Non-blank lines without ``#`` comments, with their line numbers."""
        text = self.read_text(name)
        entries = []
        for number, line in enumerate(text.splitlines(), start=1):
            entry = line.split("#", 1)[0].strip()
            if entry:
                entries.append((number, entry))
        return entries


def _lines(ctx: LoadContext, name: str) -> frozenset[str]:
    return frozenset(entry for _, entry in ctx.read_lines(name))


def _cidrs(ctx: LoadContext, name: str) -> IpSet:
    networks = []
    for number, entry in ctx.read_lines(name):
        try:
            networks.append(parse_network(entry))
        except AddressError as err:
            raise LoadError(Code.BAD_LIST_LINE, f"{name}:{number}: {err}") from None
    return IpSet(networks)


def _pairs(ctx: LoadContext, name: str) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for number, entry in ctx.read_lines(name):
        parts = entry.split(None, 1)
        if len(parts) != 2:
            raise LoadError(
                Code.BAD_LIST_LINE,
                f"{name}:{number}: expected `key value`, found `{parts[0]}` alone",
            )
        if parts[0] in mapping:
            raise LoadError(Code.BAD_LIST_LINE, f"{name}:{number}: key `{parts[0]}` repeats")
        mapping[parts[0]] = parts[1].strip()
    return mapping


def _values(ctx: LoadContext, mapping: Mapping[str, str]) -> frozenset[str]:
    return frozenset(mapping.values())


def _env(ctx: LoadContext, name: str) -> Secret:
    value = ctx.env.get(name)
    if not value:
        raise LoadError(
            Code.ENV_UNSET,
            f"environment variable `{name}` is not set or empty",
            "set it in castgate's environment; policy tests can set it under `env:`",
        )
    return Secret(value, f"env {name}")


def _secret_file(ctx: LoadContext, name: str) -> Secret:
    return Secret(ctx.read_text(name).strip(), f"file {name}")


# Event functions: impl(event, state, *args) -------------------------------------------------


def _has(event: Event, state: SessionView, value: object) -> bool:
    return value is not MISSING


def _lower(event: Event, state: SessionView, value: object) -> object:
    return value.lower() if isinstance(value, str) else MISSING


def _upper(event: Event, state: SessionView, value: object) -> object:
    return value.upper() if isinstance(value, str) else MISSING


def _length(event: Event, state: SessionView, value: object) -> object:
    if isinstance(value, str | list | tuple | dict | frozenset):
        return len(value)
    return MISSING


def _number(event: Event, state: SessionView, value: object) -> object:
    if isinstance(value, bool):
        return MISSING
    if isinstance(value, int | float):
        return value
    if isinstance(value, str) and DECIMAL.fullmatch(value):
        return float(value) if "." in value else int(value)
    return MISSING


def _secure_link(
    event: Event, state: SessionView, message: object, expires: object, sig: object, key: Secret
) -> bool:
    if not isinstance(message, str):
        return False
    return secure_link(message, expires, sig, key, event.time)


def _jwt(
    event: Event,
    state: SessionView,
    token: object,
    key: Secret,
    algorithms: object = ("HS256",),
) -> dict[str, Any] | Missing:
    assert isinstance(algorithms, tuple | list)
    return verify_jwt(token, key, [str(a) for a in algorithms], event.time)


def _counter(role: str, scope: str) -> Callable[[Event, SessionView, object], int]:
    def count(event: Event, state: SessionView, key: object) -> int:
        return state.count(role, scope, str(key))

    return count


def _denials(event: Event, state: SessionView, key: object, window: float) -> int:
    return state.rate("deny", str(key), window)


def _returning(event: Event, state: SessionView, grace: float) -> bool:
    return state.returning(event, grace)


@dataclass(frozen=True, slots=True)
class Builtin:
    name: str
    params: tuple[Type, ...]
    returns: Type
    impl: Callable[..., Any]
    doc: str
    #: ``True``: runs once at load with constant arguments; ``False``: runs per decision.
    at_load: bool = False
    #: How many trailing parameters may be left out.
    optional: int = 0
    #: Whether the function wants *missing* arguments (``has``) instead of short-circuiting.
    takes_missing: bool = False


_STRING, _ANY, _SECRET = Type.STRING, Type.ANY, Type.SECRET

BUILTINS: dict[str, Builtin] = {
    b.name: b
    for b in (
        Builtin(
            "lines",
            (_STRING,),
            Type.STRING_SET,
            _lines,
            "a set of the lines of a file next to the policy",
            at_load=True,
        ),
        Builtin(
            "cidrs",
            (_STRING,),
            Type.IP_SET,
            _cidrs,
            "a set of the IP addresses and CIDR blocks in a file",
            at_load=True,
        ),
        Builtin(
            "pairs",
            (_STRING,),
            Type.MAP,
            _pairs,
            "a map from the `key value` lines of a file",
            at_load=True,
        ),
        Builtin(
            "values",
            (Type.MAP,),
            Type.STRING_SET,
            _values,
            "the set of values of a map, e.g. the public names of `pairs`",
            at_load=True,
        ),
        Builtin(
            "env", (_STRING,), _SECRET, _env, "a secret from an environment variable", at_load=True
        ),
        Builtin(
            "secret_file",
            (_STRING,),
            _SECRET,
            _secret_file,
            "a secret (e.g. a PEM public key) from a file",
            at_load=True,
        ),
        Builtin("has", (_ANY,), Type.BOOL, _has, "whether a value is present", takes_missing=True),
        Builtin("lower", (_ANY,), _STRING, _lower, "a string in lower case"),
        Builtin("upper", (_ANY,), _STRING, _upper, "a string in upper case"),
        Builtin("len", (_ANY,), Type.NUMBER, _length, "the length of a string, list or map"),
        Builtin("number", (_ANY,), Type.NUMBER, _number, "a number from a numeric string"),
        Builtin(
            "secure_link",
            (_STRING, _ANY, _ANY, _SECRET),
            Type.BOOL,
            _secure_link,
            "whether a signed expiring link is valid now",
        ),
        Builtin(
            "jwt",
            (_ANY, _SECRET, Type.LIST),
            Type.OBJECT,
            _jwt,
            "the claims of a valid, unexpired JWT",
            optional=1,
        ),
        Builtin(
            "sessions.publishers",
            (_ANY,),
            Type.NUMBER,
            _counter("publisher", "stream"),
            "live publishers of a stream",
        ),
        Builtin(
            "sessions.viewers",
            (_ANY,),
            Type.NUMBER,
            _counter("viewer", "stream"),
            "live viewers of a stream",
        ),
        Builtin(
            "sessions.app_publishers",
            (_ANY,),
            Type.NUMBER,
            _counter("publisher", "app"),
            "live publishers in an app",
        ),
        Builtin(
            "sessions.app_viewers",
            (_ANY,),
            Type.NUMBER,
            _counter("viewer", "app"),
            "live viewers in an app",
        ),
        Builtin(
            "sessions.from_client",
            (_ANY,),
            Type.NUMBER,
            _counter("any", "client"),
            "live sessions from one client address",
        ),
        Builtin(
            "sessions.denials",
            (_ANY, Type.DURATION),
            Type.NUMBER,
            _denials,
            "requests denied for a key (e.g. a client address) within a recent duration",
        ),
        Builtin(
            "sessions.key_publishers",
            (_ANY,),
            Type.NUMBER,
            _counter("publisher", "key"),
            "live publishers using a stream key (the `key` param)",
        ),
        Builtin(
            "sessions.key_viewers",
            (_ANY,),
            Type.NUMBER,
            _counter("viewer", "key"),
            "live viewers using a key (the `key` param)",
        ),
        Builtin(
            "sessions.returning",
            (Type.DURATION,),
            Type.BOOL,
            _returning,
            "whether this publisher (same stream, address and key) was live within a grace time",
        ),
    )
}
