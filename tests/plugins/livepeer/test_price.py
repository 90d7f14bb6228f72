"""The orchestrator's price: two JSON integers, pixelsPerUnit above 0."""

from __future__ import annotations

from typing import Any

import pytest

from castgate_livepeer.gojson import INT64_MAX
from castgate_livepeer.price import price_answer


def test_no_price_is_an_empty_object() -> None:
    assert price_answer({}) == ({}, [])
    assert price_answer({"manifestID": "m"}) == ({}, [])


@pytest.mark.parametrize(
    ("price", "sent"),
    [
        ({"pricePerUnit": 1200, "pixelsPerUnit": 1}, {"pricePerUnit": 1200, "pixelsPerUnit": 1}),
        ({"pixelsPerUnit": 3, "pricePerUnit": 0}, {"pricePerUnit": 0, "pixelsPerUnit": 3}),
        (
            {"pricePerUnit": 1200.0, "pixelsPerUnit": 1.0},
            {"pricePerUnit": 1200, "pixelsPerUnit": 1},
        ),
        (
            {"pricePerUnit": INT64_MAX, "pixelsPerUnit": INT64_MAX},
            {"pricePerUnit": INT64_MAX, "pixelsPerUnit": INT64_MAX},
        ),
    ],
)
def test_prices_are_sent_as_integers_in_order(price: dict[str, Any], sent: dict[str, int]) -> None:
    body, problems = price_answer({"priceInfo": price})
    assert problems == []
    assert list(body["priceInfo"].items()) == list(sent.items())
    assert all(type(value) is int for value in body["priceInfo"].values())


@pytest.mark.parametrize(
    ("price", "problem"),
    [
        (
            {"pricePerUnit": 1.5, "pixelsPerUnit": 1},
            "priceInfo.pricePerUnit must be a whole number 0 or more, not a number (1.5)",
        ),
        (
            {"pricePerUnit": "1200", "pixelsPerUnit": 1},
            "pricePerUnit must be a whole number 0 or more, not a string",
        ),
        ({"pricePerUnit": -1, "pixelsPerUnit": 1}, "pricePerUnit must be a whole number 0 or more"),
        (
            {"pricePerUnit": INT64_MAX + 1, "pixelsPerUnit": 1},
            "pricePerUnit must be a whole number",
        ),
        (
            {"pricePerUnit": 1, "pixelsPerUnit": 0},
            "priceInfo.pixelsPerUnit must be a whole number above 0",
        ),
        (
            {"pricePerUnit": 1, "pixelsPerUnit": True},
            "pixelsPerUnit must be a whole number above 0, not a bool",
        ),
        ({"pricePerUnit": 1}, "priceInfo needs pixelsPerUnit"),
        ({"pixelsPerUnit": 1}, "priceInfo needs pricePerUnit"),
        ({"pricePerUnit": 1, "pixelPerUnit": 1}, "priceInfo has no key 'pixelPerUnit'"),
        ({"pricePerUnit": 1, "pixelsPerUnit": 1, "currency": "ETH"}, "no key 'currency'"),
    ],
)
def test_prices_the_node_would_reject_or_break_on(price: dict[str, Any], problem: str) -> None:
    assert problem in " | ".join(price_answer({"priceInfo": price})[1])


@pytest.mark.parametrize("value", [1200, "1200", [1200], None])
def test_price_info_must_be_an_object(value: object) -> None:
    assert price_answer({"priceInfo": value})[1][0].startswith("priceInfo must be an object")
