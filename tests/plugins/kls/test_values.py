"""Single KLS values in every spelling the two doc versions and their samples use."""

from __future__ import annotations

from typing import Any

import pytest

from castgate import MalformedRequest
from castgate_kls.values import MAX_MS, is_blank, millis, port, text


@pytest.mark.parametrize("value", [None, "", " ", "  ", "\t", "nil", " nil "])
def test_blank(value: Any) -> None:
    assert is_blank(value)


@pytest.mark.parametrize("value", ["0", "x", "Nil", "NIL", "null", 0, False, [], {}])
def test_not_blank(value: Any) -> None:
    assert not is_blank(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("live", "live"),
        (" live", " live"),
        (" ", ""),
        ("nil", ""),
        (None, ""),
        (12, "12"),
        (1.0, "1.0"),
        (-3, "-3"),
    ],
)
def test_text(value: Any, expected: str) -> None:
    assert text(value, "App") == expected


@pytest.mark.parametrize("value", [True, False, {"a": 1}, ["a"], {}])
def test_text_refuses_structures_and_booleans(value: Any) -> None:
    with pytest.raises(MalformedRequest, match=r"^App must be text, not "):
        text(value, "App")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1456800010000", 1456800010000),  # the 2020 doc: a 13-digit string
        (1670575130460, 1670575130460),  # the 2024 doc: an int
        (1670575130460.9, 1670575130460),  # a float is truncated to whole milliseconds
        ("1670575130460.0", 1670575130460),
        ("1670575130460.", 1670575130460),
        (" 1670575130460 ", 1670575130460),
        ("1.67057513046e12", 1670575130460),
        (1.67057513046e12, 1670575130460),
        ("0", 0),
        (0, 0),
        (MAX_MS, MAX_MS),
        (str(MAX_MS), MAX_MS),
    ],
)
def test_millis(value: Any, expected: int) -> None:
    assert millis(value, "PubStartUnixTime") == expected


@pytest.mark.parametrize("value", [None, "", " ", "nil"])
def test_blank_millis_is_none(value: Any) -> None:
    assert millis(value, "PubStartUnixTime") is None


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (True, "not a boolean"),
        ("yesterday", "not the text 'yesterday'"),
        ("-1", "not the text '-1'"),
        (-1, "outside 1970..9999"),
        (MAX_MS + 1, "outside 1970..9999"),
        (str(MAX_MS + 1), "after the year 9999"),
        ("1" * 40, "after the year 9999"),
        ("1e999999", "after the year 9999"),
        (float("inf"), "not inf"),
        (float("nan"), "not nan"),
        ("0x10", "not the text '0x10'"),
        ("١٢٣", "not the text"),  # non-ASCII digits
        ({"ms": 1}, "not an object"),
        ([1], "not a list"),
    ],
)
def test_millis_refuses(value: Any, problem: str) -> None:
    with pytest.raises(MalformedRequest) as caught:
        millis(value, "PubStartUnixTime")
    assert caught.value.reason.startswith("PubStartUnixTime ")
    assert problem in caught.value.reason


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (17102, 17102),
        ("17102", 17102),
        (" 17102 ", 17102),
        (17102.0, 17102),
        (65535, 65535),
        (1, 1),
        (0, None),
        ("0", None),
        (" ", None),
        ("", None),
        (None, None),
        ("nil", None),
    ],
)
def test_port(value: Any, expected: int | None) -> None:
    assert port(value, "ClientPort") == expected


@pytest.mark.parametrize(
    "value", [65536, -1, "65536", "-1", "17102a", "1e3", 17102.5, True, [], {}, "9" * 40]
)
def test_port_refuses(value: Any) -> None:
    with pytest.raises(MalformedRequest, match=r"^ClientPort must be a port number, not "):
        port(value, "ClientPort")
