"""Reading a Nimble request body: one JSON object that can be read one way only.

Nimble and WMSPanel send small JSON documents. Anything that is not exactly one readable JSON
object is refused here, before any field is looked at: invalid UTF-8, a repeated key (two
readers would disagree on its value), nesting deeper than any Nimble document, and strings
that cannot be written back as UTF-8 (lone surrogates from ``\\ud800`` escapes).
"""

from __future__ import annotations

import codecs
from typing import Any

from starlette.requests import Request

from castgate import (
    InvalidJSONError,
    LoneSurrogateError,
    MalformedRequest,
    NestingError,
    NotAnObjectError,
    NotUTF8Error,
    RepeatedKeyError,
    is_blank,
    read_body,
    read_json_object,
)

#: Far deeper than a PPV sync (about a dozen levels); deeper input is not Nimble talking.
MAX_DEPTH = 32


async def read_object(request: Request, *, limit: int, action: str) -> dict[str, Any]:
    """The body as a JSON object, whatever the Content-Type says, or :class:`MalformedRequest`
    carrying ``action`` (which decides between the vendor's deny and a 4xx)."""
    body = await read_body(request, limit=limit, action=action)
    if not body.strip():
        raise MalformedRequest("empty request body", action=action)
    try:
        return read_json_object(body.removeprefix(codecs.BOM_UTF8), max_depth=MAX_DEPTH)
    except NotUTF8Error:
        reason = "request body is not UTF-8"
    except RepeatedKeyError as error:
        reason = f"repeated JSON key {error.key[:40]!r}"
    except NestingError as error:
        reason = f"JSON {error}"
    except InvalidJSONError:
        reason = "request body is not JSON"
    except NotAnObjectError as error:
        reason = f"request body is {error}"
    except LoneSurrogateError:
        reason = "JSON text holds an unpaired surrogate"
    raise MalformedRequest(reason, action=action)


def present(value: object) -> bool:
    """Whether a value counts as sent: not null, ``""``, a lone space or the text ``nil``."""
    return not is_blank(value)
