"""Field values as AMS sends them, and the identifiers castgate derives from them.

Shared by the event webhooks (:mod:`castgate_antmedia.hooks`) and the authentication webhooks
(:mod:`castgate_antmedia.auth`), so that a session opened by one is named the same in the other.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request

from castgate import MalformedRequest, is_blank


def present(value: Any) -> bool:
    """Whether AMS (or the client) said something: not ``null``, ``""``, ``" "`` or ``nil``."""
    return not is_blank(value)


def text(fields: Mapping[str, Any], key: str) -> str:
    """A field AMS always sends as a string, or ``""`` when absent; other JSON types are refused.

    Numbers are not turned into text: AMS writes these fields from Java strings, so a number
    here means someone else wrote the body, and guessing would let a forged body through.
    """
    value = fields.get(key)
    if not present(value):
        return ""
    if not isinstance(value, str):
        raise MalformedRequest(f"{key} must be a string, not {type(value).__name__}")
    return value


def params(values: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """The client's custom data, with the values that say nothing left out."""
    return {key: value for key, value in values if key and present(value)}


def viewer_session(stream: str, subscriber: str) -> str:
    """The session id of a viewer: AMS gives viewers no id of their own.

    It is the stream id, qualified by the viewer's ``subscriberId`` when it sent one, so that
    identified viewers of one stream are told apart; anonymous viewers of a stream share it.
    """
    return f"{stream}/{subscriber}" if subscriber else stream


def url_node(request: Request) -> str:
    """The operator's name for the AMS that calls: ``?node=`` on the hook URL, or ``""``."""
    query: bytes = request.scope.get("query_string", b"")
    for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if key == "node" and present(value):
            return value
    return ""


def peer(request: Request) -> str:
    """The address the request came from."""
    return request.client.host if request.client else ""
