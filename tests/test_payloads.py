"""castgate.payloads: the request-body, form, JSON and blank-value readers every vendor shares."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote_from_bytes

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

import castgate
from castgate import (
    InvalidJSONError,
    LoneSurrogateError,
    MalformedRequest,
    NestingError,
    NotAnObjectError,
    NotUTF8Error,
    PayloadError,
    RepeatedKeyError,
    first_values,
    is_blank,
    json_kind,
    parse_form,
    read_json,
    read_json_object,
    split_form,
    unquote_form,
)
from castgate.middleware import BufferBody

REPLACEMENT = "\ufffd"


def test_everything_is_exported_from_the_public_door() -> None:
    for name in ("parse_form", "read_json_object", "read_body", "is_blank", "PayloadError"):
        assert name in castgate.__all__


# --- read_body -----------------------------------------------------------------------------------


def _request(chunks: Sequence[bytes], content_length: str | None) -> Request:
    headers = [] if content_length is None else [(b"content-length", content_length.encode())]
    pending = list(chunks) or [b""]

    async def receive() -> Message:
        chunk = pending.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers}
    return Request(scope, receive)


def _read(chunks: Sequence[bytes], limit: int, content_length: str | None = None) -> bytes:
    request = _request(chunks, content_length)
    return asyncio.run(castgate.read_body(request, limit=limit, action="play"))


def test_read_body_joins_the_chunks() -> None:
    assert _read([b"a=1", b"&b=2"], limit=8) == b"a=1&b=2"
    assert _read([], limit=8) == b""


def test_read_body_at_the_limit_is_read() -> None:
    assert _read([b"x" * 8], limit=8, content_length="8") == b"x" * 8


def test_read_body_refuses_a_declared_length_over_the_limit_before_reading() -> None:
    with pytest.raises(MalformedRequest) as caught:
        _read([b""], limit=8, content_length="9")
    assert caught.value.reason == "request body larger than 8 bytes"
    assert caught.value.action == "play"


@pytest.mark.parametrize("declared", [None, "", "4", "-1", "abc"])
def test_read_body_refuses_a_body_that_grows_past_the_limit(declared: str | None) -> None:
    with pytest.raises(MalformedRequest, match="larger than 8 bytes"):
        _read([b"x" * 5, b"y" * 5], limit=8, content_length=declared)


def _read_behind_buffer_body(chunks: Sequence[bytes], limit: int) -> tuple[bytes, list[str]]:
    """What read_body returns inside castgate's server, where BufferBody read the body first,
    and the messages the app then took from ``receive`` (none: the body is not replayed)."""
    pending = list(chunks)
    taken: list[str] = []
    result: list[bytes] = []

    async def receive() -> Message:
        chunk = pending.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

    async def app(scope: Scope, app_receive: Receive, send: Send) -> None:
        async def counting() -> Message:
            message = await app_receive()
            taken.append(message["type"])
            return message

        result.append(
            await castgate.read_body(Request(scope, counting), limit=limit, action="play")
        )

    async def send(message: Message) -> None:
        raise AssertionError("nothing is answered")

    scope = {"type": "http", "method": "POST", "path": "/", "headers": []}
    asyncio.run(BufferBody(app, max_bytes=100)(scope, receive, send))
    return result[0], taken


def test_read_body_takes_the_body_buffer_body_read() -> None:
    assert _read_behind_buffer_body([b"a=1", b"&b=2"], limit=8) == (b"a=1&b=2", [])


def test_read_body_holds_a_buffered_body_to_the_plugin_s_limit() -> None:
    with pytest.raises(MalformedRequest) as caught:
        _read_behind_buffer_body([b"x" * 5, b"y" * 5], limit=8)
    assert caught.value.reason == "request body larger than 8 bytes"
    assert caught.value.action == "play"


# --- forms ----------------------------------------------------------------------------------------


def test_form_splits_on_ampersand_then_the_first_equals() -> None:
    assert parse_form(b"a=1&b=x=y&c==") == [("a", "1"), ("b", "x=y"), ("c", "=")]
    assert parse_form(b"tcurl=rtmp://h/live?a=b=c") == [("tcurl", "rtmp://h/live?a=b=c")]


def test_form_plus_is_a_space_and_escapes_decode_once() -> None:
    assert parse_form(b"key=k+1%2B&n=%2541") == [("key", "k 1+"), ("n", "%41")]


def test_form_keeps_repeats_in_order() -> None:
    assert parse_form(b"addr=1&x=2&addr=3") == [("addr", "1"), ("x", "2"), ("addr", "3")]


def test_form_skips_empty_pieces_and_keeps_keys_without_value() -> None:
    assert parse_form(b"&&a=&flag&&b= ") == [("a", ""), ("flag", ""), ("b", " ")]
    assert parse_form(b"") == []
    assert parse_form(b"=v") == [("", "v")]


def test_form_raw_and_encoded_values_decode_alike() -> None:
    raw = parse_form(b"tcurl=rtmp://h:1935/live")
    assert (
        raw
        == parse_form(b"tcurl=rtmp%3A%2F%2Fh%3A1935%2Flive")
        == [("tcurl", "rtmp://h:1935/live")]
    )


def test_form_malformed_escapes_stay_literal() -> None:
    assert parse_form(b"a=%&b=%G1&c=50%25%2&d=%zz&e=%4") == [
        ("a", "%"),
        ("b", "%G1"),
        ("c", "50%%2"),
        ("d", "%zz"),
        ("e", "%4"),
    ]


def test_form_bytes_that_are_not_utf8_become_the_replacement_character() -> None:
    assert parse_form(b"name=cam%FF&k\xfe=v") == [
        ("name", f"cam{REPLACEMENT}"),
        (f"k{REPLACEMENT}", "v"),
    ]
    assert parse_form(b"name=caf%C3%A9&t=%E2%9C%93") == [("name", "café"), ("t", "✓")]


def test_form_text_reads_like_its_utf8_bytes() -> None:
    assert parse_form("a=café&b=%C3%A9+x") == [("a", "café"), ("b", "é x")]


def test_form_strip_skips_blank_pieces_and_trims_keys_only() -> None:
    assert parse_form(b"&&flag&k=v& &\r\n", strip=True) == [("flag", ""), ("k", "v")]
    assert parse_form(b" key = v ", strip=True) == [("key", " v ")]
    assert parse_form(b"%20key%20=v", strip=True) == [("key", "v")]
    assert parse_form(b"& &k=v") == [(" ", ""), ("k", "v")]


def test_split_form_keeps_the_escapes_and_unquote_form_decodes_them() -> None:
    assert split_form(b"i%64=a+b&flag") == [(b"i%64", b"a+b"), (b"flag", b"")]
    assert split_form(b" &k=v", strip=True) == [(b"k", b"v")]
    assert unquote_form(b"i%64") == b"id"
    assert unquote_form(b"a+b%2B%E9%") == b"a b+\xe9%"


@given(st.binary(max_size=200))
def test_form_reading_never_raises(data: bytes) -> None:
    for strip in (False, True):
        for key, value in parse_form(data, strip=strip):
            assert isinstance(key, str)
            assert isinstance(value, str)


#: Form text built from the characters the decoding turns on and the whitespace bytes.strip()
#: and str.strip() disagree on (\x1c); the second kind adds bytes that are not UTF-8.
_ASCII_FORM_PIECES = [b"&", b"=", b"+", b"%", b"%2", b"%41", b"%2B", b"%C3%A9", b"%E9", b"%zz"]
_ASCII_FORM_PIECES += [b"a", b"k", b" ", b"\t", b"\r\n", b"\x0b", b"\x1c", b"\x1f"]
_form_bytes = st.one_of(
    st.lists(st.sampled_from(_ASCII_FORM_PIECES), max_size=30).map(b"".join),
    st.lists(
        st.sampled_from([*_ASCII_FORM_PIECES, b"\xc3\xa9", b"\xff", b"\xc3"]), max_size=30
    ).map(b"".join),
)


@given(_form_bytes, st.booleans())
@example(b"&\x1c&", True)
def test_form_reads_like_split_then_unquote_then_lenient_utf8(data: bytes, strip: bool) -> None:
    # The composition parse_form's docstring defines; ASCII bodies take a shortcut that must
    # not change a single pair.
    expected = []
    for raw_key, raw_value in split_form(data, strip=strip):
        key = unquote_form(raw_key).decode("utf-8", "replace")
        expected.append(
            (key.strip() if strip else key, unquote_form(raw_value).decode("utf-8", "replace"))
        )
    assert parse_form(data, strip=strip) == expected


@given(st.lists(st.tuples(st.binary(min_size=1, max_size=20), st.binary(max_size=20)), max_size=8))
def test_form_reads_back_what_a_strict_encoder_wrote(pairs: list[tuple[bytes, bytes]]) -> None:
    body = "&".join(f"{quote_from_bytes(k)}={quote_from_bytes(v)}" for k, v in pairs)
    decoded = [(k.decode("utf-8", "replace"), v.decode("utf-8", "replace")) for k, v in pairs]
    assert parse_form(body) == decoded
    assert [(unquote_form(k), unquote_form(v)) for k, v in split_form(body)] == pairs


# --- JSON -----------------------------------------------------------------------------------------


def test_an_object_is_read() -> None:
    text = '{"id":"s","n":{"a":[1,2.5,null,true]},"e":"\\ud83d\\ude00"}'
    expected = {"id": "s", "n": {"a": [1, 2.5, None, True]}, "e": "\U0001f600"}
    assert read_json_object(text, max_depth=8) == expected
    assert read_json_object(text.encode(), max_depth=None) == expected


def test_read_json_reads_any_value() -> None:
    assert read_json("[1]", max_depth=4) == [1]
    assert read_json('"s"', max_depth=1) == "s"
    assert read_json("null", max_depth=1) is None


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("[1, 2]", "array"),
        ('"s"', "string"),
        ("3", "number"),
        ("null", "null"),
        ("true", "boolean"),
    ],
)
def test_anything_but_an_object_is_refused(text: str, kind: str) -> None:
    with pytest.raises(NotAnObjectError) as caught:
        read_json_object(text, max_depth=None)
    assert caught.value.kind == kind
    assert str(caught.value) == f"a JSON {kind}, not an object"


@pytest.mark.parametrize("text", ['{"id":"a","id":"b"}', '{"m":{"k":1,"k":2}}', '[{"k":1,"k":1}]'])
def test_a_repeated_key_is_refused_at_any_depth(text: str) -> None:
    with pytest.raises(RepeatedKeyError) as caught:
        read_json(text, max_depth=None)
    assert caught.value.key in ("id", "k")
    assert "appears twice" in str(caught.value)


def test_a_repeated_key_is_shown_truncated() -> None:
    key = "k" * 500
    with pytest.raises(RepeatedKeyError) as caught:
        read_json_object(f'{{"{key}":1,"{key}":2}}', max_depth=None)
    assert caught.value.key == key
    assert len(str(caught.value)) < 80


@pytest.mark.parametrize("name", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_the_infinities_are_refused(name: str) -> None:
    with pytest.raises(InvalidJSONError) as caught:
        read_json_object(f'{{"n": {name}}}', max_depth=None)
    assert caught.value.constant == name
    assert str(caught.value) == f"{name} is not a JSON number"


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ('{"id":"s"', "Expecting"),
        ('{"id":"s"} x', "Extra data"),
        ("", "Expecting value"),
        ("{'a': 1}", "Expecting property name"),
        ('\ufeff{"a": 1}', "BOM"),
        ('{"n": ' + "1" * 5000 + "}", "Exceeds the limit"),
    ],
)
def test_syntax_errors_are_refused_with_one_short_line(text: str, detail: str) -> None:
    with pytest.raises(InvalidJSONError) as caught:
        read_json_object(text, max_depth=None)
    assert detail in caught.value.detail
    assert caught.value.constant is None
    assert "\n" not in str(caught.value)
    assert len(str(caught.value)) <= 120


@pytest.mark.parametrize("data", [b'{"a":"\xff"}', b'{"a":"caf\xc3"}', b"\xff\xfe{\x00}\x00"])
def test_bytes_must_be_utf8(data: bytes) -> None:
    with pytest.raises(NotUTF8Error):
        read_json_object(data, max_depth=None)


def test_a_utf8_bom_in_bytes_is_not_skipped() -> None:
    with pytest.raises(InvalidJSONError):
        read_json_object(b'\xef\xbb\xbf{"a": 1}', max_depth=None)


@pytest.mark.parametrize("text", ['{"a": "\\ud800"}', '{"\\udfff": 1}', '{"a": ["x", "\\udc00"]}'])
def test_unpaired_surrogates_are_refused_unless_allowed(text: str) -> None:
    with pytest.raises(LoneSurrogateError):
        read_json_object(text, max_depth=None)
    with pytest.raises(LoneSurrogateError):
        read_json(text, max_depth=8)
    assert read_json_object(text, max_depth=None, allow_lone_surrogates=True)


def test_containers_nest_up_to_max_depth() -> None:
    allowed = '{"a": ' + "[" * 3 + "1" + "]" * 3 + "}"  # containers at levels 1..4
    assert read_json_object(allowed, max_depth=4)
    with pytest.raises(NestingError) as caught:
        read_json_object('{"a": ' + "[" * 4 + "]" * 4 + "}", max_depth=4)
    assert caught.value.limit == 4
    assert str(caught.value) == "nested deeper than 4 levels"


def test_with_count_scalars_every_value_takes_a_level() -> None:
    # The KLS rule: a string or number inside a level-4 container stands at level 5.
    with pytest.raises(NestingError):
        read_json_object('{"a": {"b": {"c": {"d": 1}}}}', max_depth=4, count_scalars=True)
    assert read_json_object('{"a": {"b": {"c": {}}}}', max_depth=4, count_scalars=True)
    assert read_json_object('{"a": {"b": {"c": 1}}}', max_depth=4, count_scalars=True)
    assert read_json_object('{"a": {"b": {"c": {"d": 1}}}}', max_depth=4)


def test_nesting_beyond_the_parser_is_refused_not_raised() -> None:
    for text in ("[" * 200_000 + "]" * 200_000, '{"a":' * 50_000 + "1" + "}" * 50_000):
        with pytest.raises(NestingError) as caught:
            read_json(text, max_depth=None)
        assert caught.value.limit is None
        assert str(caught.value) == "nested too deeply"


def test_the_first_problem_in_document_order_is_reported() -> None:
    deep_then_bad = '{"a": [[[1]]], "b": "\\ud800"}'
    with pytest.raises(NestingError):
        read_json(deep_then_bad, max_depth=3, count_scalars=True)
    bad_then_deep = '{"b": "\\ud800", "a": [[[1]]]}'
    with pytest.raises(LoneSurrogateError):
        read_json(bad_then_deep, max_depth=3, count_scalars=True)


def test_not_an_object_is_found_before_the_tree_is_walked() -> None:
    with pytest.raises(NotAnObjectError):
        read_json_object('["\\ud800"]', max_depth=1)
    with pytest.raises(LoneSurrogateError):
        read_json('["\\ud800"]', max_depth=None)


def test_every_refusal_is_a_value_error() -> None:
    for error in (NotUTF8Error, InvalidJSONError, RepeatedKeyError, NestingError, NotAnObjectError):
        assert issubclass(error, PayloadError)
    assert issubclass(PayloadError, ValueError)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.text(), json_values, max_size=5))
def test_what_json_dumps_writes_reads_back(value: dict[str, Any]) -> None:
    text = json.dumps(value, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        with pytest.raises(LoneSurrogateError):
            read_json_object(text, max_depth=None)
        return
    assert read_json_object(text.encode("utf-8"), max_depth=None) == value


@given(st.binary(max_size=200))
def test_hostile_bytes_are_read_or_refused_with_a_payload_error(data: bytes) -> None:
    try:
        value = read_json_object(data, max_depth=8, count_scalars=True)
    except PayloadError:
        return
    assert isinstance(value, dict)


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ({}, "object"),
        ([], "array"),
        ("", "string"),
        (0, "number"),
        (1.5, "number"),
        (None, "null"),
        (False, "boolean"),
    ],
)
def test_json_kind(value: object, kind: str) -> None:
    assert json_kind(value) == kind


# --- blank values ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, "", " ", "  ", "\t", "\r\n", "nil"])
def test_blank(value: object) -> None:
    assert is_blank(value)
    assert is_blank(value, trim=True)


@pytest.mark.parametrize("value", ["0", "x", "Nil", "NIL", "null", " x ", 0, False, [], {}])
def test_not_blank(value: object) -> None:
    assert not is_blank(value)
    assert not is_blank(value, trim=True)


def test_a_padded_nil_is_blank_only_with_trim() -> None:
    assert not is_blank(" nil ")
    assert is_blank(" nil ", trim=True)
    assert is_blank("\tnil\n", trim=True)


def test_first_values_keeps_each_keys_first_non_blank_value() -> None:
    pairs = [
        ("key", ""),
        ("key", "k1"),
        ("key", "k2"),
        ("", "x"),
        ("tag", "nil"),
        ("n", " "),
        ("id", "7"),
    ]
    assert first_values(pairs) == {"key": "k1", "id": "7"}
    assert list(first_values([("b", "1"), ("a", "2")])) == ["b", "a"]
