"""Functions that policies call: the :class:`PolicyFunction` description plugins register."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: The value types a policy function may take or return (see docs/policy-language.md, "Types").
TYPE_NAMES: frozenset[str] = frozenset(
    {"string", "number", "bool", "ip", "duration", "time", "list", "object", "any"}
)


@dataclass(frozen=True, slots=True)
class PolicyFunction:
    """A function callable from policies, such as ``geoip.country(client.ip)``.

    ``impl`` receives the evaluated arguments positionally. It is never called with a missing
    argument: a call with a missing argument yields *missing* without calling ``impl``. Whatever
    ``impl`` raises becomes an evaluation error, which denies the request and names the rule.
    """

    name: str
    params: tuple[str, ...]
    returns: str
    impl: Callable[..., Any]
    doc: str = ""

    def __post_init__(self) -> None:
        for type_name in (*self.params, self.returns):
            if type_name not in TYPE_NAMES:
                raise ValueError(
                    f"policy function {self.name!r}: unknown type {type_name!r} "
                    f"(one of {', '.join(sorted(TYPE_NAMES))})"
                )
