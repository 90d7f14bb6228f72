"""``PubParam``, the push URL's query parameters, in each spelling KLS has used.

The 2020 doc sends an object, the 2024 doc a string holding JSON text, and samples send ``" "``
when the push had none. Values are kept as sent (strings or numbers); blank ones are dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from castgate import MalformedRequest
from castgate_kls.form import split_pairs
from castgate_kls.json_text import load_value
from castgate_kls.values import is_blank


def pub_params(value: object) -> dict[str, Any]:
    """The push parameters from a ``PubParam`` value; ``{}`` when blank or missing."""
    if is_blank(value):
        return {}
    if isinstance(value, str):
        value = _from_text(value.strip())
    if not isinstance(value, Mapping):
        raise MalformedRequest("PubParam must be an object or JSON text holding one")
    return {key: item for key, item in value.items() if key.strip() and not is_blank(item)}


def _from_text(text: str) -> object:
    if text[:1] in ("{", "[", '"') or text in ("null", "true", "false") or _is_number(text):
        decoded = load_value(text, "PubParam")
        return {} if decoded is None else decoded
    if "=" in text:
        # [unverified] KLS's "string" callback encoding is undocumented; a query string is the
        # one other shape push parameters plausibly take, so read it rather than refuse it.
        pairs = split_pairs(text.removeprefix("?").encode())
        params: dict[str, str] = {}
        for key, item in pairs:
            params.setdefault(key, item)
        return params
    raise MalformedRequest("PubParam text is neither a JSON object nor a query string")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
