"""Which ``redirect`` values castgate will send to Nimble as a Location."""

from __future__ import annotations

from typing import Any

import pytest

from castgate_nimble import Nimble
from castgate_nimble.redirect import MAX_BYTES, redirect_problems

GOOD = [
    "https://shop.example.com/renew",
    "http://shop.example.com",
    "HTTPS://shop.example.com:8443/renew?stream=cam1&x=%20y#top",
    "https://[2001:db8::1]/renew",
    "https://user@shop.example.com/",
    "https://shop.example.com/" + "a" * (MAX_BYTES - 25),
]
BAD = [
    ("", "empty"),
    ("/renew", "absolute http"),
    ("shop.example.com/renew", "absolute http"),
    ("rtmp://10.0.0.1/live/x", "absolute http"),
    ("javascript:alert(1)", "absolute http"),
    ("ftp://shop.example.com/", "absolute http"),
    ("https://", "name a host"),
    ("http:///renew", "name a host"),
    ("https://shop.example.com/a b", "whitespace"),
    ("https://shop.example.com/\r\nSet-Cookie: x=1", "whitespace"),
    ("https://shop.example.com/\x00", "control"),
    ("https://shop.example.com/\x7f", "control"),
    ("https://shop.example.com/café", "ASCII"),
    ("https://shop.example.com\\@evil.example/", "backslash"),
    ("https://shop.example.com:99999/", "not a valid URL"),
    ("https://shop.example.com:x/", "not a valid URL"),
    ("https://shop.example.com:0/", "port 0"),
    ("https://[::1/renew", "not a valid URL"),
    ("https://shop.example.com/" + "a" * MAX_BYTES, "at most 2048"),
]


@pytest.mark.parametrize("value", GOOD)
def test_accepted(value: str) -> None:
    assert redirect_problems(value) == []
    assert Nimble().validate_response({"redirect": value}) == []


@pytest.mark.parametrize(("value", "problem"), BAD)
def test_refused(value: str, problem: str) -> None:
    problems = Nimble().validate_response({"redirect": value})
    assert problems
    assert problem in " ".join(problems)


@pytest.mark.parametrize("value", [None, 5, ["https://a.example"], {"url": "https://a.example"}])
def test_non_text_is_refused(value: Any) -> None:
    assert "must be a string" in redirect_problems(value)[0]


def test_data_without_redirect_is_fine() -> None:
    assert Nimble().validate_response({}) == []
    assert Nimble().validate_response({"lifetime": 60}) == []
