"""Session state as policies read it: live session counts and event rates.

The policy engine reads state only through :class:`SessionView`; the registry that fills it
(memory or Redis) lives in the modules of this package.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from castgate.events import Decision, Effect, Event


class SessionView(Protocol):
    """Read access to live sessions, as ``sessions.*`` policy functions use it."""

    def count(self, role: str, scope: str, key: str) -> int:
        """Live sessions with ``role`` (``publisher``, ``viewer`` or ``any``) whose ``scope``
        (``stream``, ``app``, ``client`` or ``key``) equals ``key``."""
        ...

    def rate(self, name: str, key: str, window: float) -> int:
        """How many ``name`` events (e.g. ``deny``) were recorded for ``key`` in the last
        ``window`` seconds."""
        ...

    def returning(self, event: Event, grace: float) -> bool:
        """Whether ``event`` is a publisher coming back: a live publisher session of the same
        stream, address and key was seen within ``grace`` seconds."""
        ...


class FixedState:
    """A state with counts given up front, for policy tests and ``castgate eval``.

    ``counts`` maps ``"role:scope:key"`` (e.g. ``"publisher:stream:cam1"``) to a count and
    ``rates`` maps ``"name:key"`` to a count; anything not listed is zero.
    """

    def __init__(
        self,
        counts: Mapping[str, int] | None = None,
        rates: Mapping[str, int] | None = None,
        *,
        returning: bool = False,
    ) -> None:
        self._counts = dict(counts or {})
        self._rates = dict(rates or {})
        self._returning = returning

    def count(self, role: str, scope: str, key: str) -> int:
        if role == "any":
            return sum(
                self._counts.get(f"{each}:{scope}:{key}", 0) for each in ("publisher", "viewer")
            )
        return self._counts.get(f"{role}:{scope}:{key}", 0)

    def rate(self, name: str, key: str, window: float) -> int:
        return self._rates.get(f"{name}:{key}", 0)

    def returning(self, event: Event, grace: float) -> bool:
        return self._returning


LIFETIME_ENDED = "the session's lifetime has ended"


def lifetime_decision(
    ends: float | None, rule: str | None, event: Event, reason: str = ""
) -> Decision | None:
    """The deny that ends a session on its first ``update`` past its end: its lifetime, or the
    moment castgate revoked it (``reason`` then says why)."""
    if ends is None or event.action != "update" or event.time < ends:
        return None
    return Decision(Effect.DENY, reason or LIFETIME_ENDED, rule)


EMPTY_STATE = FixedState()
