"""castgate: admission control for live streams.

This module is the whole public surface for plugin authors; anything not in ``__all__`` may change
without notice.
"""

from __future__ import annotations

import pluggy

from castgate.enforcement import Enforcer, LiveSession
from castgate.events import ACTIONS, NOTIFICATIONS, Decision, Effect, Event, RuleTrace
from castgate.lang.functions import DependencyError, PolicyFunction
from castgate.payloads import (
    InvalidJSONError,
    LoneSurrogateError,
    NestingError,
    NotAnObjectError,
    NotUTF8Error,
    PayloadError,
    RepeatedKeyError,
    first_values,
    is_blank,
    json_kind,
    parse_form,
    read_body,
    read_json,
    read_json_object,
    split_form,
    unquote_form,
)
from castgate.vendor import Batch, MalformedRequest, RequestSignature, ResponseField, Vendor

#: Decorator marking a plugin's hook implementations: ``@castgate.hookimpl``.
hookimpl = pluggy.HookimplMarker("castgate")

__all__ = [
    "ACTIONS",
    "NOTIFICATIONS",
    "Batch",
    "Decision",
    "DependencyError",
    "Effect",
    "Enforcer",
    "Event",
    "InvalidJSONError",
    "LiveSession",
    "LoneSurrogateError",
    "MalformedRequest",
    "NestingError",
    "NotAnObjectError",
    "NotUTF8Error",
    "PayloadError",
    "PolicyFunction",
    "RepeatedKeyError",
    "RequestSignature",
    "ResponseField",
    "RuleTrace",
    "Vendor",
    "first_values",
    "hookimpl",
    "is_blank",
    "json_kind",
    "parse_form",
    "read_body",
    "read_json",
    "read_json_object",
    "split_form",
    "unquote_form",
]
