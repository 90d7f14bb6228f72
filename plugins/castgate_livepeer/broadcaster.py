"""The broadcaster's call (``server/auth.go authenticateStream``) as a castgate event.

Body ``{"url": "<the URL a client asked for>"}``: an RTMP publish, the first segment of an HTTP
push, or a recordings read. Nothing else is sent: no client address, no session id, no time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from castgate import Event, MalformedRequest, first_values, is_blank
from castgate_livepeer.stream_url import PUSH, StreamUrl, read_stream_url

VENDOR = "livepeer"

_ROLES = {"publish": "publisher", "play": "viewer"}


def broadcaster_event(body: Mapping[str, Any], hook_node: str) -> Event:
    """The event for one broadcaster body; ``hook_node`` is the ``?node=`` of the hook URL."""
    url = body.get("url")
    if not isinstance(url, str) or not url.strip():
        hint = (
            "; this is an orchestrator's call: point it at /hooks/livepeer/orchestrator"
            if "id" in body
            else ""
        )
        raise MalformedRequest(f"no url (a non-empty string) in the body{hint}")
    stream_url = read_stream_url(url)
    return Event(
        vendor=VENDOR,
        action=stream_url.action,
        app=stream_url.app,
        stream=stream_url.stream,
        params=first_values(stream_url.query),
        # An HTTP push names its session in the URL; an RTMP publish gets its manifest ID only
        # from the answer, and a recordings read is no session.
        session_id=stream_url.stream if stream_url.form == PUSH else "",
        node=hook_node or stream_url.host,
        role=_ROLES[stream_url.action],
        raw=_raw(body, url, stream_url),
    )


def present(value: str) -> str:
    """``""`` for the ways a value says "nothing": empty, blank, the literal ``nil``."""
    return "" if is_blank(value) else value


def _raw(body: Mapping[str, Any], url: str, stream_url: StreamUrl) -> dict[str, Any]:
    query: dict[str, Any] = {}
    for key, value in stream_url.query:
        previous = query.get(key)
        if previous is None:
            query[key] = value
        elif isinstance(previous, list):
            previous.append(value)
        else:
            query[key] = [previous, value]
    raw: dict[str, Any] = {
        "body": dict(body),
        "url": url,
        "form": stream_url.form,
        "host": stream_url.host,
        "query": query,
    }
    raw.update(stream_url.details)
    return raw
