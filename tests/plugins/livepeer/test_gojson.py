"""Go JSON types on policy values, at load time (tuples, networks) and at request time."""

from __future__ import annotations

import ipaddress

import pytest

from castgate_livepeer.gojson import describe, items, text, whole


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (5, 5),
        (0, 0),
        (-3, -3),
        (2.0, 2),
        (1e15, 10**15),
        (2.5, None),
        (True, None),
        ("5", None),
        (float("inf"), None),
        (float("nan"), None),
        (None, None),
    ],
)
def test_whole(value: object, expected: int | None) -> None:
    assert whole(value) == expected


def test_text_takes_addresses_as_the_engine_sends_them() -> None:
    assert text("x") == "x"
    assert text(ipaddress.ip_network("10.0.0.1/32")) == "10.0.0.1"
    assert text(ipaddress.ip_network("10.0.0.0/8")) == "10.0.0.0/8"
    assert text(5) is None
    assert text(b"x") is None


def test_items_takes_lists_and_constant_tuples_only() -> None:
    assert items(["a"]) == ["a"]
    assert items(("a", "b")) == ["a", "b"]
    assert items("ab") is None
    assert items({"a": 1}) is None


@pytest.mark.parametrize(
    ("value", "said"),
    [
        (None, "null"),
        (True, "a bool (true)"),
        (2.5, "a number (2.5)"),
        ("s", "a string"),
        ({}, "an object"),
        ((1,), "a list"),
        (object(), "a object"),
    ],
)
def test_describe(value: object, said: str) -> None:
    assert describe(value) == said
