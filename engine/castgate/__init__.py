"""castgate: admission control for live streams.

This module is the whole public surface for plugin authors; anything not in ``__all__`` may change
without notice.
"""

from __future__ import annotations

import pluggy

from castgate.enforcement import Enforcer, LiveSession
from castgate.events import ACTIONS, NOTIFICATIONS, Decision, Effect, Event, RuleTrace
from castgate.lang.functions import PolicyFunction
from castgate.vendor import Batch, MalformedRequest, ResponseField, Vendor

#: Decorator marking a plugin's hook implementations: ``@castgate.hookimpl``.
hookimpl = pluggy.HookimplMarker("castgate")

__all__ = [
    "ACTIONS",
    "NOTIFICATIONS",
    "Batch",
    "Decision",
    "Effect",
    "Enforcer",
    "Event",
    "LiveSession",
    "MalformedRequest",
    "PolicyFunction",
    "ResponseField",
    "RuleTrace",
    "Vendor",
    "hookimpl",
]
