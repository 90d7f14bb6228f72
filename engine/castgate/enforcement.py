"""Ending live sessions through a vendor's own API: the :class:`Enforcer` plugins provide.

A session must end when its lifetime is over or when a reloaded policy no longer allows it.
Vendors that re-check sessions with update calls (nginx-rtmp) end it at the next update, which
castgate denies; vendors without updates (Nimble, Ant Media, ...) need an enforcer that kicks the
session through the vendor's management API.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True, slots=True)
class LiveSession:
    """A live session as an enforcer sees it."""

    vendor: str
    role: str
    app: str
    stream: str
    client_ip: str
    #: The node that reported the session: enforcers with several servers pick the API by it.
    node: str
    #: The vendor's own id for the session (Nimble session id, nginx-rtmp clientid, ...).
    vendor_session: str
    opened: float
    #: Why it must end, for the enforcer's log.
    reason: str


class Enforcer(ABC):
    """Ends sessions of one vendor; register instances with ``castgate_register_enforcers``."""

    #: The vendor id whose sessions this enforcer ends.
    vendor: ClassVar[str]

    @abstractmethod
    async def end_sessions(self, sessions: Sequence[LiveSession]) -> None:
        """End every session in ``sessions``; raise if that failed, saying why. Called off the
        request path, under a deadline."""
