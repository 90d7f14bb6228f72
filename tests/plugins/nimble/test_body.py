"""Bodies that are not exactly one readable JSON object are refused on both routes."""

from __future__ import annotations

import pytest

from castgate import MalformedRequest
from castgate_nimble.body import MAX_DEPTH, present
from castgate_nimble.vendor import MAX_AUTH_BYTES

from .support import fixture, parse

ROUTES = [("", "play"), ("auth", "play"), ("ppv", "update")]


def _refused(body: bytes, route: str) -> MalformedRequest:
    with pytest.raises(MalformedRequest) as caught:
        parse(body, route)
    return caught.value


@pytest.mark.parametrize(("route", "action"), ROUTES)
@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty request body"),
        (b"  \n", "empty request body"),
        (b'{"url": "/live/cam1"', "not JSON"),
        (b"url=/live/cam1", "not JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"url": "/live/\xff"}', "not UTF-8"),
        (b"[]", "JSON array, not an object"),
        (b'[{"url": "/live/cam1"}]', "JSON array, not an object"),
        (b'"text"', "JSON string, not an object"),
        (b"42", "JSON number, not an object"),
        (b"null", "JSON null, not an object"),
        (b"true", "JSON boolean, not an object"),
        (b'{"url": "/a/b", "url": "/c/d"}', "repeated JSON key 'url'"),
        (b'{"h": {"x": 1, "x": 2}, "url": "/a/b"}', "repeated JSON key 'x'"),
        (b'{"url": "/a/b", "d": NaN}', "not JSON"),
        (b'{"url": "/a/b", "d": Infinity}', "not JSON"),
        (b'{"url": "/live/\\ud800"}', "unpaired surrogate"),
        (b'{"url": "/a/b", "\\udfff": 1}', "unpaired surrogate"),
        pytest.param(b"[" * 20_000 + b"]" * 20_000, "nested too deeply", id="recursion"),
        pytest.param(
            b'{"a":' * (MAX_DEPTH + 1) + b"1" + b"}" * (MAX_DEPTH + 1), "deeper than", id="deep"
        ),
    ],
)
def test_unreadable_bodies(body: bytes, reason: str, route: str, action: str) -> None:
    error = _refused(body, route)
    assert reason in error.reason
    assert error.action == action


def test_nesting_up_to_the_limit_is_read() -> None:
    body = b'{"url": "/a/b", "x":' + b"[" * (MAX_DEPTH - 1) + b"]" * (MAX_DEPTH - 1) + b"}"
    assert parse(body).app == "a"  # type: ignore[union-attr]


def test_an_auth_body_over_64k_is_refused_but_a_large_sync_is_read() -> None:
    padding = b" " * MAX_AUTH_BYTES
    assert "larger than" in _refused(b'{"url": "/a/b"}' + padding, "").reason
    sync = fixture("ppv/sample_signed.json").rstrip() + padding
    assert len(parse(sync, "ppv").events) == 4  # type: ignore[union-attr]


def test_a_utf8_bom_is_tolerated() -> None:
    assert parse(b'\xef\xbb\xbf{"url": "/a/b"}').stream == "b"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, False),
        ("", False),
        (" ", False),
        ("\t", False),
        ("nil", False),
        ("NIL", True),
        ("x", True),
        (0, True),
        (False, True),
        ([], True),
    ],
)
def test_present(value: object, expected: bool) -> None:
    assert present(value) is expected
