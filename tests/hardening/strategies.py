"""Hypothesis strategies for hostile hook requests: garbage of every kind, and real requests
of each vendor mutated one field at a time (dropped, retyped, repeated, reordered, cut short).

A request body is built as text fragments so that what Python's ``json`` would never write (a
repeated key, a lone surrogate escape, a number beyond any float, nesting deeper than a parser
recurses) is as easy to produce as a valid body.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace

from hypothesis import strategies as st

from hardening.vendor_requests import HookRequest, json_objects

#: Byte sequences that are not UTF-8: a lone continuation byte, a truncated sequence, an
#: overlong slash, an encoded surrogate (CESU-8), bytes past U+10FFFF, and the BOMs of UTF-16.
INVALID_UTF8 = (
    b"\x80",
    b"\xc3",
    b"\xc3(",
    b"\xc0\xaf",
    b"\xe0\x80\xaf",
    b"\xed\xa0\x80",
    b"\xed\xbf\xbf",
    b"\xf4\x90\x80\x80",
    b"\xf8\x88\x80\x80\x80",
    b"\xfe",
    b"\xff",
    b"\xff\xfe",
    b"\xfe\xff",
)

#: JSON values (as text) that the field they replace rarely expects.
ODD_JSON = (
    "null",
    "true",
    "false",
    "0",
    "-1",
    "1.5",
    "-0",
    "[]",
    "{}",
    '""',
    '" "',
    '"nil"',
    '" nil "',
    '"\\u0000"',
    '"\\ud800"',
    '"a\\udfffb"',
    '"\\ud800\\u0041"',
    "1e400",
    "-1e400",
    "1e-400",
    "1" + "0" * 400,
    "9" * 5000,
    "NaN",
    "Infinity",
    '["a", "b"]',
    '{"a": "b"}',
)

CONTENT_TYPES = (
    None,
    "application/json",
    "application/json; charset=UTF-8",
    "application/json; charset=utf-16",
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=ISO-8859-1",
    "text/plain; charset=ISO-8859-1",
    "text/plain; charset=unicode_escape",
    "text/plain; charset=punycode",
    "text/plain; charset=",
    'text/plain; charset="cp1252"',
    "multipart/form-data; boundary=x",
    "application/octet-stream",
    "*/*",
    "",
    ";;;",
)

METHODS = ("GET", "POST")
OTHER_METHODS = ("PUT", "DELETE", "PATCH", "OPTIONS", "HEAD")

QUERIES = (
    b"",
    b"node=edge1",
    b"node=",
    b"node=%ff%fe",
    b"node=a&node=b",
    b"?",
    b"%",
    b"%zz&=&&=x",
    b"node=edge1?app=live&call=publish",
    b"call=publish&name=x&addr=127.0.0.1&app=live&clientid=1",
)


def deep_nesting(depth: int, style: str) -> bytes:
    """JSON nested ``depth`` levels deep, balanced or not."""
    if style == "arrays":
        return b"[" * depth + b"]" * depth
    if style == "objects":
        return b'{"a":' * depth + b"1" + b"}" * depth
    return b"[" * depth  # never closed


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", errors="surrogatepass")


invalid_utf8 = st.lists(
    st.one_of(st.sampled_from(INVALID_UTF8), st.text(max_size=16).map(_utf8)),
    min_size=1,
    max_size=8,
).map(b"".join)

nested = st.builds(
    deep_nesting,
    st.sampled_from([2, 100, 999, 1000, 1001, 5000, 100_000]),
    st.sampled_from(["arrays", "objects", "unclosed"]),
)

garbage_bodies = st.one_of(st.binary(max_size=400), invalid_utf8, nested)

#: Keys and values for forms and JSON objects built from nothing.
random_values = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["", " ", "nil", "%", "%ff", "%zz", "+", "=", "&", "publish", "play"]),
)


@st.composite
def hook_requests(
    draw: st.DrawFn, path: str, seeds: Sequence[HookRequest], vocabulary: Sequence[str]
) -> HookRequest:
    """A request to ``path``: garbage, a form or JSON object of the vendor's own keys, or one of
    ``seeds`` mutated."""
    kinds = ["garbage", "form", "json"] + (["mutated"] * 3 if seeds else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "mutated":
        request = draw(mutated(draw(st.sampled_from(list(seeds)))))
    else:
        body = draw(_built_body(kind, vocabulary))
        request = HookRequest("POST", path, draw(st.sampled_from(QUERIES)), body, None)
    return draw(_dressed(request))


def _built_body(kind: str, vocabulary: Sequence[str]) -> st.SearchStrategy[bytes]:
    keys = st.one_of(st.sampled_from(list(vocabulary) or ["k"]), st.text(max_size=8))
    if kind == "garbage":
        return garbage_bodies
    if kind == "form":
        pairs = st.lists(st.tuples(keys.map(_utf8), _form_values), max_size=8)
        return pairs.map(_form)
    members = st.lists(st.tuples(keys, _json_values), max_size=6)
    return members.map(_json_object)


_form_values = st.one_of(
    random_values.map(_utf8),
    st.sampled_from(INVALID_UTF8),
    st.binary(max_size=8).map(lambda raw: "".join(f"%{byte:02x}" for byte in raw).encode()),
)

_json_values = st.one_of(
    st.sampled_from(ODD_JSON),
    random_values.map(json.dumps),
    st.builds(lambda depth: "[" * depth + "]" * depth, st.sampled_from([10, 1000, 3000])),
)


def _form(pairs: list[tuple[bytes, bytes]]) -> bytes:
    return b"&".join(key + b"=" + value for key, value in pairs)


def _json_object(members: list[tuple[str, str]]) -> bytes:
    """An object from raw member texts: keys may repeat, values are written as given."""
    return _utf8("{" + ",".join(f"{json.dumps(key)}:{value}" for key, value in members) + "}")


# --- mutations of real requests ------------------------------------------------------------------


def mutated(seed: HookRequest) -> st.SearchStrategy[HookRequest]:
    """``seed`` with its parameters (body, or query for a GET) changed by one to three edits."""
    in_query = seed.method == "GET"
    payload = seed.query if in_query else seed.body
    members = _members(payload)
    edits = _json_edits(members) if members is not None else _form_edits(_pairs(payload))

    def rebuilt(changed: bytes) -> HookRequest:
        return replace(seed, query=changed) if in_query else replace(seed, body=changed)

    return edits.flatmap(_byte_edits).map(rebuilt)


def _members(payload: bytes) -> list[tuple[str, str]] | None:
    """A JSON object's members as ``(key, value text)``, or ``None`` if it is not one."""
    objects = json_objects(payload, ("utf-8", "latin-1"))
    if not objects:
        return None
    return [(key, json.dumps(value, ensure_ascii=False)) for key, value in objects[0].items()]


def _pairs(payload: bytes) -> list[tuple[bytes, bytes]]:
    return [piece.partition(b"=")[::2] for piece in payload.split(b"&")]


@st.composite
def _json_edits(draw: st.DrawFn, members: list[tuple[str, str]]) -> bytes:
    for _ in range(draw(st.integers(1, 3))):
        members = draw(_json_edit(members))
    return _json_object(members)


@st.composite
def _json_edit(draw: st.DrawFn, members: list[tuple[str, str]]) -> list[tuple[str, str]]:
    edit = draw(st.sampled_from(["drop", "retype", "repeat", "recase", "add"]))
    if not members or edit == "add":
        key = draw(
            st.one_of(st.sampled_from([k for k, _ in members] or ["k"]), st.text(max_size=8))
        )
        return [*members, (key, draw(_json_values))]
    at = draw(st.integers(0, len(members) - 1))
    key, value = members[at]
    if edit == "drop":
        return members[:at] + members[at + 1 :]
    if edit == "retype":
        return [*members[:at], (key, draw(_json_values)), *members[at + 1 :]]
    if edit == "repeat":
        return [*members, (key, draw(st.one_of(st.just(value), _json_values)))]
    return [*members[:at], (_swap_case(key), value), *members[at + 1 :]]


@st.composite
def _form_edits(draw: st.DrawFn, pairs: list[tuple[bytes, bytes]]) -> bytes:
    for _ in range(draw(st.integers(1, 3))):
        pairs = draw(_form_edit(pairs))
    return _form(pairs)


@st.composite
def _form_edit(draw: st.DrawFn, pairs: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    edit = draw(st.sampled_from(["drop", "revalue", "repeat", "recase", "swap", "add"]))
    if not pairs or edit == "add":
        key = draw(st.sampled_from([k for k, _ in pairs] or [b"k"]))
        return [*pairs, (key, draw(_form_values))]
    at = draw(st.integers(0, len(pairs) - 1))
    key, value = pairs[at]
    if edit == "drop":
        return pairs[:at] + pairs[at + 1 :]
    if edit == "revalue":
        return [*pairs[:at], (key, draw(_form_values)), *pairs[at + 1 :]]
    if edit == "repeat":
        return [*pairs, (key, draw(_form_values))]
    if edit == "recase":
        return [
            *pairs[:at],
            (_swap_case(key.decode("latin-1")).encode("latin-1"), value),
            *pairs[at + 1 :],
        ]
    other = draw(st.integers(0, len(pairs) - 1))
    swapped = list(pairs)
    swapped[at], swapped[other] = swapped[other], swapped[at]
    return swapped


def _swap_case(key: str) -> str:
    return key.swapcase() if key.swapcase() != key else key + "X"


def _byte_edits(payload: bytes) -> st.SearchStrategy[bytes]:
    """The payload as edited, or cut short, or with bytes that are not UTF-8 put in."""
    at = st.integers(0, len(payload))
    return st.one_of(
        st.just(payload),
        st.just(payload),
        at.map(lambda end: payload[:end]),
        st.tuples(at, st.sampled_from(INVALID_UTF8)).map(
            lambda spot: payload[: spot[0]] + spot[1] + payload[spot[0] :]
        ),
    )


_sometimes = st.integers(0, 3).map(lambda roll: roll == 0)


@st.composite
def _dressed(draw: st.DrawFn, request: HookRequest) -> HookRequest:
    """The request, one time in four each under another method, Content-Type or query."""
    if draw(_sometimes):
        request = replace(request, method=draw(st.sampled_from(METHODS + OTHER_METHODS)))
    if draw(_sometimes):
        request = replace(request, content_type=draw(st.sampled_from(CONTENT_TYPES)))
    if draw(_sometimes):
        request = replace(request, query=draw(st.sampled_from(QUERIES)))
    return request


def vocabulary(seeds: Sequence[HookRequest]) -> list[str]:
    """Every top-level key the seeds use, JSON or form."""
    keys: set[str] = set()
    for seed in seeds:
        payload = seed.query if seed.method == "GET" else seed.body
        members = _members(payload)
        if members is not None:
            keys.update(key for key, _ in members)
        else:
            keys.update(key.decode("latin-1") for key, _ in _pairs(payload))
    return sorted(keys)
