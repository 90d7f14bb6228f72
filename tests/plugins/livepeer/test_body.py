"""The JSON body: what a node sends is read, anything else is refused with a reason."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from castgate import MalformedRequest
from castgate_livepeer.body import MAX_BODY_BYTES, read_object

from .support import make_request


def read(body: bytes, action: str = "", **options: Any) -> dict[str, Any]:
    return asyncio.run(read_object(make_request(body, **options), action=action))


def test_a_node_body_is_read() -> None:
    assert read(b'{"url":"rtmp://h/live/k?a=1\\u0026b=2"}') == {"url": "rtmp://h/live/k?a=1&b=2"}


def test_a_body_in_chunks_is_read_whole() -> None:
    assert read(b"", chunks=[b'{"id":', b'"0x1"}']) == {"id": "0x1"}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "body is empty"),
        (b"   \n", "body is empty"),
        (b'{"url":"rtmp://h/live/k"', "not JSON"),
        (b'{"url":"rtmp://h/li', "not JSON"),
        (b"url=rtmp://h/live/k", "not JSON"),
        (b'{"url":"a",}', "not JSON"),
        (b"{'url':'a'}", "not JSON"),
        (b'{"n":NaN}', "not JSON"),
        (b'{"n":Infinity}', "not JSON"),
        (b'{"n":-Infinity}', "not JSON"),
        (b'{"n":' + b"1" * 5000 + b"}", "not JSON"),
        (b'{"url":"a"}{"url":"b"}', "not JSON"),
        (b'\xef\xbb\xbf{"url":"a"}', "not JSON"),
        (b'{"url":"\xff"}', "not UTF-8"),
        (b'{"url":"caf\xc3"}', "not UTF-8"),
        (b'{"url":"\\ud800"}', "lone surrogate"),
        (b'{"x":["\\udfff"]}', "lone surrogate"),
        (b'{"url":"a","url":"b"}', "repeats the JSON key 'url'"),
        (b'{"x":{"k":1,"k":2}}', "repeats the JSON key 'k'"),
        (b"[]", "a JSON array"),
        (b'["rtmp://h/live/k"]', "a JSON array"),
        (b'"rtmp://h/live/k"', "a JSON string"),
        (b"42", "a JSON number"),
        (b"true", "a JSON bool"),
        (b"null", "JSON null"),
        (b"[" * 30_000 + b"]" * 30_000, "nested too deeply"),
        (b'{"a":' * 10_000 + b"1" + b"}" * 10_000, "nested too deeply"),
    ],
    ids=lambda value: value[:24].decode("latin-1") if isinstance(value, bytes) else value,
)
def test_anything_else_is_refused_with_its_reason(body: bytes, reason: str) -> None:
    with pytest.raises(MalformedRequest, match=reason) as caught:
        read(body, action="discover")
    assert caught.value.action == "discover"


def test_a_body_over_the_limit_is_refused_by_its_declared_length() -> None:
    with pytest.raises(MalformedRequest, match="larger than"):
        read(b"{}", content_length=str(MAX_BODY_BYTES + 1))


def test_a_body_over_the_limit_is_refused_while_reading() -> None:
    chunks = [b'{"url":"', b"a" * MAX_BODY_BYTES, b'"}']
    with pytest.raises(MalformedRequest, match="larger than"):
        read(b"", chunks=chunks, content_length="")


def test_a_body_at_the_limit_is_read() -> None:
    body = b'{"url":"' + b"a" * (MAX_BODY_BYTES - 10) + b'"}'
    assert len(read(body)["url"]) == MAX_BODY_BYTES - 10
