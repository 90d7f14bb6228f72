"""The reference policy of ``benchmarks/policies/reference`` in other policy engines.

One module per engine. Each exposes ``PEER``, a :class:`Peer` whose ``build`` turns a case's
:class:`Facts` into a decide function ``(event, state) -> bool`` (``True``: allowed). The function
takes castgate's normalized :class:`~castgate.events.Event` and pays, inside the timed call, for
everything an integrator would do per request: building the engine's request and precomputing
what the engine cannot express (:mod:`peers.inputs`). ``peer_engines.py`` checks every one
against castgate before timing it.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from castgate.events import Event

# rego-cpp (regopy) has to be loaded before google-re2, castgate's regular expressions: loaded
# after it, the first time.clock or time.weekday aborts the process ("free(): invalid pointer"),
# apparently because google-re2's extension exports the abseil time-zone code rego-cpp also uses.
# So this package, imported before castgate, loads it first.
with contextlib.suppress(ImportError):
    import regopy  # noqa: F401

#: ``(event, state) -> allowed``; ``state`` is castgate's session view, which no peer reads.
PeerDecide = Callable[["Event", Any], bool]

#: The actions the reference policy names. The other actions are notifications that castgate
#: acknowledges without consulting a rule, so an integrator would not ask another engine either.
POLICY_ACTIONS = ("connect", "publish", "play", "update", "discover", "publish_done", "play_done")

# The literal parts of the reference policy, which every translation writes out in its own syntax.
STUDIO = ("10.20.0.0/16", "10.21.0.0/16", "2001:db8:10::/48")
OFFICE = ("192.168.10.0/24", "192.168.11.0/24")
RESERVED = ("admin", "internal", "system", "test")
NAME_PATTERN = "^[a-z0-9_-]{1,64}$"
REFERENCE_RULES = 20


@dataclass(frozen=True)
class Facts:
    """What one case's policy is made of beyond the 20 reference rules: its data files, read as
    an integrator would read them, and the generated rules of the scaled cases."""

    keys: tuple[str, ...]
    blocked: tuple[str, ...]  # CIDR text
    #: Generated rules on publish and play: deny a stream by name, allow a key by value.
    forbidden_names: tuple[str, ...]
    guest_keys: tuple[str, ...]

    @classmethod
    def read(
        cls, directory: Path, forbidden_names: Iterable[str] = (), guest_keys: Iterable[str] = ()
    ) -> Facts:
        """The facts of the policy in ``directory``, its data files read as castgate reads them
        (one entry a line, ``#`` comments), though not through castgate."""
        return cls(
            _entries(directory / "stream-keys.txt"),
            _entries(directory / "blocked.txt"),
            tuple(forbidden_names),
            tuple(guest_keys),
        )

    @property
    def rule_count(self) -> int:
        return REFERENCE_RULES + len(self.forbidden_names) + len(self.guest_keys)


def _entries(path: Path) -> tuple[str, ...]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text("utf-8").splitlines())
    return tuple(line for line in lines if line)


@dataclass(frozen=True)
class Limits:
    """The largest case an engine is given; larger ones are reported as capped with the reason."""

    keys: int | None = None
    cidrs: int | None = None
    rules: int | None = None
    why: str = ""

    def refuse(self, facts: Facts) -> str | None:
        """Why ``facts`` is beyond these limits, or ``None`` if the engine gets it."""
        over = [
            f"{size:,} {what} > {limit:,}"
            for what, size, limit in (
                ("keys", len(facts.keys), self.keys),
                ("CIDRs", len(facts.blocked), self.cidrs),
                ("rules", facts.rule_count, self.rules),
            )
            if limit is not None and size > limit
        ]
        return f"{'; '.join(over)}: {self.why}" if over else None


@dataclass(frozen=True)
class Peer:
    name: str
    #: The PyPI distribution, for its version in the report.
    package: str
    #: What the engine is handed already computed, in one line for the report.
    precomputed: str
    build: Callable[[Facts], PeerDecide]
    limits: Limits = Limits()

    @property
    def version(self) -> str:
        return metadata.version(self.package)


@dataclass(frozen=True)
class Missing:
    """An engine that could not be imported here, and why."""

    module: str
    reason: str


#: Engine modules in report order.
MODULES = (
    "cedar",
    "cel_rust",
    "cel_python",
    "rego",
    "regorus",
    "casbin_abac",
    "polar",
    "pyabac",
    "vakt_guard",
)


def load_peers() -> tuple[list[Peer], list[Missing]]:
    """Every engine that imports, and the ones that do not (not installed, or broken here)."""
    peers: list[Peer] = []
    missing: list[Missing] = []
    for module in MODULES:
        try:
            peers.append(importlib.import_module(f".{module}", __name__).PEER)
        except ImportError as error:
            missing.append(Missing(module, f"{type(error).__name__}: {error}"))
    return peers, missing
