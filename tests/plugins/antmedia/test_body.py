"""Bytes, charsets, JSON and form bodies."""

from __future__ import annotations

import asyncio
import json

import pytest

from castgate import MalformedRequest
from castgate_antmedia.body import (
    MAX_BODY_BYTES,
    declared_charset,
    decode_text,
    embedded_json,
    form_fields,
    json_object,
    looks_like_json,
    read_body,
)

from .support import make_request


@pytest.mark.parametrize(
    ("header", "charset"),
    [
        ("application/json; charset=UTF-8", "utf-8"),
        ("text/plain; charset=ISO-8859-1", "iso-8859-1"),
        ('application/json;CHARSET="utf-8"', "utf-8"),
        ("application/x-www-form-urlencoded", None),
        ("application/json; charset=", None),
        ("", None),
    ],
)
def test_declared_charset(header: str, charset: str | None) -> None:
    assert declared_charset(header) == charset


def test_undeclared_text_is_utf8_when_it_is_utf8() -> None:
    assert decode_text("kanal-ü".encode(), None) == "kanal-ü"


def test_undeclared_text_that_is_not_utf8_is_iso_8859_1_as_ams_sends_it() -> None:
    # new StringEntity(json) in AcceptOnlyStreamsWithWebhook: ISO-8859-1, no charset in the header
    assert decode_text("kanal-ü".encode("latin-1"), None) == "kanal-ü"
    assert decode_text(b"\xff\xfe", None) == "\xff\xfe"


def test_a_declared_charset_is_strict() -> None:
    assert decode_text(b"caf\xe9", "iso-8859-1") == "café"
    with pytest.raises(MalformedRequest, match="not valid utf-8"):
        decode_text(b"caf\xe9", "utf-8")


@pytest.mark.parametrize("charset", ["unicode_escape", "punycode", "base64", "nope", "utf\x00"])
def test_only_http_charsets_are_read(charset: str) -> None:
    with pytest.raises(MalformedRequest, match="unsupported charset"):
        decode_text(b"abc", charset)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'{"a":1}', True),
        (b' \r\n\t{"a":1}', True),
        (b"id=1", False),
        (b"[1]", False),
        (b"", False),
    ],
)
def test_json_is_told_by_its_first_character(data: bytes, expected: bool) -> None:
    assert looks_like_json(data) is expected


def test_json_object() -> None:
    assert json_object('{"id":"s","n":{"a":[1,2.5,null,true]}}') == {
        "id": "s",
        "n": {"a": [1, 2.5, None, True]},
    }


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"id":"s"', "not valid JSON"),
        ('{"id":"s"} x', "not valid JSON"),
        ("[1,2]", "a JSON array, not an object"),
        ('"s"', "a JSON string"),
        ("3", "a JSON number"),
        ("null", "a JSON null"),
        ("true", "a JSON boolean"),
        ('{"n":NaN}', "not valid JSON"),
        ('{"n":-Infinity}', "not valid JSON"),
        ('{"id":"a","id":"b"}', "'id' repeats"),
        ('{"m":{"k":1,"k":2}}', "'k' repeats"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ],
)
def test_json_object_refuses(text: str, problem: str) -> None:
    with pytest.raises(MalformedRequest, match=problem):
        json_object(text)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('{"owner":"ops"}', {"owner": "ops"}),
        (' {"a":{"b":1}}', {"a": {"b": 1}}),
        ('{"k":1,"k":2}', {"k": 2}),  # operator text: forgiving
        ("camera 2", "camera 2"),
        ("{not json", "{not json"),
        ("[1,2]", "[1,2]"),
        ('{"n":NaN}', '{"n":NaN}'),
        ({"already": "object"}, {"already": "object"}),
        (5, 5),
    ],
)
def test_embedded_json(value: object, expected: object) -> None:
    assert embedded_json(value) == expected


def test_form_fields_split_on_the_first_equals_and_decode_plus() -> None:
    data = b"id=s1&next=rtmp%3A%2F%2Fh%2Fa%3Fx%3D1&eq=a=b&sp=a+b%2Bc&flag&&=v"
    assert form_fields(data, None) == {
        "id": "s1",
        "next": "rtmp://h/a?x=1",
        "eq": "a=b",
        "sp": "a b+c",
        "flag": "",
        "": "v",
    }


def test_form_percent_escapes_are_utf8_or_iso_8859_1() -> None:
    assert form_fields(b"a=Caf%E9&b=Caf%C3%A9", None) == {"a": "Café", "b": "Café"}
    with pytest.raises(MalformedRequest):
        form_fields(b"a=Caf%E9", "utf-8")


def test_form_with_raw_non_ascii_bytes_is_not_from_ams() -> None:
    with pytest.raises(MalformedRequest, match="raw non-ASCII"):
        form_fields("id=café".encode(), None)


def test_form_with_a_repeated_key_is_not_from_ams() -> None:
    with pytest.raises(MalformedRequest, match="'id' repeats"):
        form_fields(b"id=a&action=liveStreamStarted&id=b", None)
    with pytest.raises(MalformedRequest, match="'id' repeats"):
        form_fields(b"id=a&i%64=b", None)  # the same key, escaped


def test_read_body_refuses_more_than_the_limit() -> None:
    big = b"x" * (MAX_BODY_BYTES + 1)
    with pytest.raises(MalformedRequest, match="larger than"):
        asyncio.run(read_body(make_request(big)))
    with pytest.raises(MalformedRequest, match="larger than"):
        asyncio.run(read_body(make_request(b"{}", content_length=str(MAX_BODY_BYTES + 1))))
    exact = json.dumps({"k": "x" * (MAX_BODY_BYTES - 10)}).encode()[:MAX_BODY_BYTES]
    assert asyncio.run(read_body(make_request(exact))) == exact
