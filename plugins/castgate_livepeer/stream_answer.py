"""The broadcaster's answer: the keys of go-livepeer's ``authWebhookResponse`` castgate sends.

An allow with none of these keys is answered with an empty body (the node's defaults). With any
of them the body is JSON and must carry a manifest ID: the node refuses a body without one
("empty manifest id not allowed"), including ``{}``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from castgate_livepeer import ladder
from castgate_livepeer.gojson import INT32_MAX, describe, items, text, whole
from castgate_livepeer.manifest_id import PLAIN, node_manifest_id

#: The keys, in the order castgate writes them.
FIELDS = (
    "manifestID",
    "streamKey",
    "presets",
    "profiles",
    "streamID",
    "sessionID",
    "objectStore",
    "recordObjectStore",
    "recordObjectStoreUrl",
    "previousSessions",
    "verificationFreq",
)

#: An RTMP playback key becomes a path element, where the node cuts at ``.`` and ``/``.
_KEY = re.compile(r"[A-Za-z0-9_-]*")
#: The node parses object stores with Go's ``url.Parse`` and picks a driver by scheme (which
#: schemes exist depends on its version: s3, s3+http, s3+https, gs, ...).
_STORE_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[!-~]+")


def stream_answer(data: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``(body, problems)`` for response data; an empty body means "send no body at all"."""
    sent = [key for key in FIELDS if key in data]
    if not sent:
        return {}, []
    problems: list[str] = []
    if "manifestID" not in data:
        problems.append(
            f"manifestID is required with {', '.join(sent)}: the node refuses an answer "
            "without one (leave out every key for the node's defaults)"
        )
    body: dict[str, Any] = {}
    for key in sent:
        value = _CHECKS[key](data[key], problems)
        if value is not None:
            body[key] = value
    if "presets" in data or "profiles" in data:
        _renditions(data, body, problems)
    return body, problems


def _renditions(data: Mapping[str, Any], body: dict[str, Any], problems: list[str]) -> None:
    preset_names: list[str] = body.get("presets", [])
    custom: list[dict[str, Any]] = body.get("profiles", [])
    if "profiles" in data and items(data["profiles"]) == [] and not items(data.get("presets")):
        # Unlike leaving profiles out (the node's defaults), an empty list means no renditions.
        problems.append(
            "profiles is empty and there are no presets: the stream would get zero "
            "renditions (leave profiles out for the node's defaults)"
        )
    ladder.rendition_names(preset_names, custom, problems)


def _manifest_id(value: object, problems: list[str]) -> str | None:
    manifest_id = text(value)
    if manifest_id is None:
        problems.append(f"manifestID must be a string, not {describe(value)}")
        return None
    if not manifest_id:
        problems.append("manifestID must not be empty: the node refuses an empty one")
        return None
    if not PLAIN.fullmatch(manifest_id):
        kept = node_manifest_id(manifest_id)
        if kept != manifest_id:
            problems.append(
                f"manifestID {manifest_id[:60]!r} would reach the node as {kept[:60]!r}; "
                "use letters and digits only"
            )
        else:
            problems.append(f"manifestID {manifest_id[:60]!r} may hold only letters and digits")
        return None
    return manifest_id


def _stream_key(value: object, problems: list[str]) -> str | None:
    key = text(value)
    if key is None or not _KEY.fullmatch(key):
        shown = repr(key[:40]) if key is not None else describe(value)
        problems.append(
            f"streamKey must be letters, digits, '_' and '-' (empty: the node makes one), "
            f"not {shown}"
        )
        return None
    return key


def _string(name: str) -> Callable[[object, list[str]], str | None]:
    def check(value: object, problems: list[str]) -> str | None:
        result = text(value)
        if result is None:
            problems.append(f"{name} must be a string, not {describe(value)}")
        return result

    return check


def _store_url(name: str) -> Callable[[object, list[str]], str | None]:
    def check(value: object, problems: list[str]) -> str | None:
        url = text(value)
        # "" is what the node reads as "none"; anything else it cannot parse refuses the stream.
        if url is None or (url and not _STORE_URL.fullmatch(url)):
            shown = "that string" if url is not None else describe(value)
            problems.append(
                f"{name} must be a URL such as s3://key:secret@region/bucket, not {shown}"
            )
            return None
        return url

    return check


def _previous_sessions(value: object, problems: list[str]) -> list[str] | None:
    entries = items(value)
    if entries is None:
        problems.append(f"previousSessions must be a list of manifest IDs, not {describe(value)}")
        return None
    result = []
    for index, entry in enumerate(entries):
        manifest_id = text(entry)
        if manifest_id is None or not PLAIN.fullmatch(manifest_id):
            shown = repr(manifest_id[:40]) if manifest_id is not None else describe(entry)
            problems.append(f"previousSessions[{index}] must be a manifest ID, not {shown}")
        else:
            result.append(manifest_id)
    return result


def _verification_freq(value: object, problems: list[str]) -> int | None:
    number = whole(value)
    if number is None or not 0 <= number <= INT32_MAX:
        problems.append(f"verificationFreq must be a whole number 0 or more, not {describe(value)}")
        return None
    return number


def _presets(value: object, problems: list[str]) -> list[str]:
    return ladder.presets(value, problems)


def _profiles(value: object, problems: list[str]) -> list[dict[str, Any]]:
    return ladder.profiles(value, problems)


_CHECKS: Mapping[str, Callable[[object, list[str]], Any]] = {
    "manifestID": _manifest_id,
    "streamKey": _stream_key,
    "presets": _presets,
    "profiles": _profiles,
    "streamID": _string("streamID"),
    "sessionID": _string("sessionID"),
    "objectStore": _store_url("objectStore"),
    "recordObjectStore": _store_url("recordObjectStore"),
    "recordObjectStoreUrl": _store_url("recordObjectStoreUrl"),
    "previousSessions": _previous_sessions,
    "verificationFreq": _verification_freq,
}
