"""PubParam as an object (2020), as JSON text (2024), blank, missing, or a query string."""

from __future__ import annotations

from typing import Any

import pytest

from castgate import MalformedRequest
from castgate_kls.pubparam import pub_params

PARAMS = {"param1": "123456", "param2": 11}


@pytest.mark.parametrize(
    "value",
    [
        PARAMS,
        '{"param1":"123456","param2":11}',
        ' {"param1": "123456", "param2": 11} ',
        "param1=123456&param2=11&blank=",  # a query string: numbers stay text there
    ],
)
def test_every_spelling_gives_the_params(value: Any) -> None:
    params = pub_params(value)
    assert params["param1"] == "123456"
    assert params["param2"] in (11, "11")
    assert set(params) == {"param1", "param2"}


def test_values_are_kept_as_sent() -> None:
    assert pub_params({"n": 11, "f": 1.5, "s": "11", "b": False, "o": {"x": 1}}) == {
        "n": 11,
        "f": 1.5,
        "s": "11",
        "b": False,
        "o": {"x": 1},
    }
    assert pub_params('{"n": 11}') == {"n": 11}


@pytest.mark.parametrize("value", [None, "", " ", "nil", "null", "{}", {}])
def test_blank_or_empty_is_no_params(value: Any) -> None:
    assert pub_params(value) == {}


def test_blank_values_and_empty_keys_are_dropped() -> None:
    value = {"key": "k1", "a": "", "b": " ", "c": "nil", "d": None, "": "x", " ": "y", "z": 0}
    assert pub_params(value) == {"key": "k1", "z": 0}
    assert pub_params('{"key": "k1", "a": " ", "d": null}') == {"key": "k1"}


def test_a_query_string_with_a_question_mark_and_repeats() -> None:
    assert pub_params("?key=k1&key=k2&x=a%20b&y=+") == {"key": "k1", "x": "a b"}


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (5, "PubParam must be an object"),
        (["a"], "PubParam must be an object"),
        (True, "PubParam must be an object"),
        ("[1]", "PubParam must be an object"),
        ('"text"', "PubParam must be an object"),
        ("5", "PubParam must be an object"),
        ("true", "PubParam must be an object"),
        ('{"key": 1', "PubParam is not valid JSON"),
        ('{"key": 1, "key": 2}', "appears twice"),
        ("NaN", "PubParam is not valid JSON"),
        ("just words", "neither a JSON object nor a query string"),
    ],
)
def test_other_values_are_refused(value: Any, problem: str) -> None:
    with pytest.raises(MalformedRequest) as caught:
        pub_params(value)
    assert problem in caught.value.reason
