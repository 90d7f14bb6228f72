"""Reading an Ant Media Server request body: its bytes, its text, and the JSON or form data in it.

AMS builds every body it sends from a Java map (a ``HashMap`` for event webhooks, Gson's
``JsonObject`` for the authentication webhooks), so a key can never appear twice in one body. A
body that repeats a key was not written by AMS, and is refused rather than guessed at.

Charsets, from AMS's own Apache HttpClient calls:

* event webhooks in JSON (AMS >= 2.10) say ``application/json; charset=UTF-8``;
* the April-June 2024 dev builds sent the JSON as ``text/plain; charset=ISO-8859-1``;
* form bodies (AMS <= 2.9) are percent-encoded ISO-8859-1 and name no charset;
* the authentication webhooks say ``application/json`` without a charset, yet encode the body
  ISO-8859-1 (``new StringEntity(json)``).

So a charset the header names is used strictly; without one, text is UTF-8 when it is valid
UTF-8 and ISO-8859-1 otherwise. ISO-8859-1 maps every byte to exactly one character, so the
fallback never merges two different byte strings into one value.
"""

from __future__ import annotations

import codecs
import json
from typing import Any

from starlette.requests import Request

import castgate
from castgate import (
    InvalidJSONError,
    MalformedRequest,
    NestingError,
    NotAnObjectError,
    RepeatedKeyError,
    read_json_object,
    split_form,
    unquote_form,
)

#: AMS bodies are a few hundred bytes; broadcast metadata and server resource reports make
#: them bigger, but never close to this.
MAX_BODY_BYTES = 256 * 1024

#: Python codec names of the charsets read when a Content-Type declares one.
_CHARSETS = frozenset({"utf-8", "iso8859-1", "ascii", "cp1252"})

_JSON_START = b"{"
_WHITESPACE = b" \t\r\n"


async def read_body(request: Request) -> bytes:
    """The request body, whatever its Content-Type, refusing more than :data:`MAX_BODY_BYTES`."""
    return await castgate.read_body(request, limit=MAX_BODY_BYTES)


def declared_charset(content_type: str) -> str | None:
    """The ``charset=`` parameter of a Content-Type header, lower-cased, or ``None``."""
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').lower() or None
    return None


def decode_text(data: bytes, charset: str | None) -> str:
    """Bytes to text: strictly in ``charset`` if one was declared, else UTF-8 or ISO-8859-1."""
    if charset is not None:
        codec = _codec(charset)
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            raise MalformedRequest(f"request body is not valid {codec}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("iso-8859-1")


def _codec(charset: str) -> str:
    # Python also knows codecs such as unicode_escape or punycode that rewrite text; a header
    # must not be able to pick one of those, so only the charsets HTTP clients send are read.
    try:
        name = codecs.lookup(charset).name
    except (LookupError, ValueError):
        name = ""
    if name not in _CHARSETS:
        raise MalformedRequest(f"unsupported charset {charset[:40]!r}")
    return name


def looks_like_json(data: bytes) -> bool:
    """Whether the body is JSON by its first character; the Content-Type header is not trusted."""
    return data.lstrip(_WHITESPACE).startswith(_JSON_START)


def json_object(text: str) -> dict[str, Any]:
    """A JSON object whose keys never repeat, at any depth; anything else is malformed.

    Read by :func:`castgate.read_json_object` with no depth limit of its own and without the
    surrogate check, as AMS bodies always were.
    """
    try:
        return read_json_object(text, max_depth=None, allow_lone_surrogates=True)
    except NestingError:
        raise MalformedRequest("request body is nested too deeply") from None
    except RepeatedKeyError as error:
        raise MalformedRequest(
            f"JSON key {error.key[:40]!r} repeats; AMS never repeats a key"
        ) from None
    except NotAnObjectError as error:
        raise MalformedRequest(f"request body is a JSON {error.kind}, not an object") from None
    except InvalidJSONError as error:
        # The parser's message names a position, never a value, so it echoes nothing.
        detail = f"{error.constant} is not a JSON value" if error.constant else error.detail
        raise MalformedRequest(f"request body is not valid JSON: {detail}") from None


def embedded_json(value: Any) -> Any:
    """AMS's metadata-like fields: JSON text of an object becomes the object; else as sent.

    This text comes from the operator (broadcast metadata) or from AMS itself, not from the
    request framing, so it is read the forgiving way: a repeated key keeps its last value.
    """
    if isinstance(value, str) and value.lstrip().startswith("{"):
        try:
            decoded = json.loads(value, parse_constant=_no_constants)
        except (ValueError, RecursionError):
            return value
        if isinstance(decoded, dict):
            return decoded
    return value


def form_fields(data: bytes, charset: str | None) -> dict[str, str]:
    """A form body (``k=v&k=v``) as a dict; a repeated key or a raw non-ASCII byte is malformed.

    Split on ``&``, then on the FIRST ``=``, then percent-decode with ``+`` as a space. AMS's
    encoder escapes every byte outside ``A-Za-z0-9-_.*``, so raw non-ASCII bytes mean that
    someone else wrote the body.
    """
    if not data.isascii():
        raise MalformedRequest("form body has raw non-ASCII bytes; AMS percent-encodes them")
    fields: dict[str, str] = {}
    for raw_key, raw_value in split_form(data):
        key = decode_text(unquote_form(raw_key), charset)
        if key in fields:
            raise MalformedRequest(f"form key {key[:40]!r} repeats; AMS never repeats a key")
        fields[key] = decode_text(unquote_form(raw_value), charset)
    return fields


def _no_constants(name: str) -> Any:
    # NaN and Infinity are not JSON, and raw must stay JSON-serialisable for the decision log.
    raise ValueError(f"{name} is not a JSON value")
