"""JSON that becomes an event: objects only, no repeated keys, no NaN, bounded nesting."""

from __future__ import annotations

import pytest

from castgate import MalformedRequest
from castgate_kls.json_text import MAX_DEPTH, load_object, load_value


def test_an_object_loads() -> None:
    assert load_object('{"App": "live", "n": [1, {"a": null}]}', "body") == {
        "App": "live",
        "n": [1, {"a": None}],
    }


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[1, 2]", "body is a JSON array, not a JSON object"),
        ('"text"', "body is a JSON string, not a JSON object"),
        ("5", "body is a JSON number, not a JSON object"),
        ("null", "body is JSON null, not a JSON object"),
        ("true", "body is a JSON boolean, not a JSON object"),
    ],
)
def test_anything_but_an_object_is_refused(text: str, problem: str) -> None:
    with pytest.raises(MalformedRequest) as caught:
        load_object(text, "body")
    assert caught.value.reason == problem


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"App": "a", "App": "b"}', "key 'App' appears twice"),
        ('{"P": {"k": 1, "k": 1}}', "key 'k' appears twice"),
        ('{"t": NaN}', "NaN is not a JSON number"),
        ('{"t": Infinity}', "Infinity is not a JSON number"),
        ('{"t": -Infinity}', "-Infinity is not a JSON number"),
        ('{"App": "live"', "body is not valid JSON: "),
        ('{"App": "live"} x', "Extra data"),
        ("", "Expecting value"),
        ('{"n": ' + "1" * 5000 + "}", "body is not valid JSON"),
    ],
)
def test_what_no_json_encoder_writes_is_refused(text: str, problem: str) -> None:
    with pytest.raises(MalformedRequest) as caught:
        load_object(text, "body")
    assert problem in caught.value.reason
    assert "\n" not in caught.value.reason


def test_nesting_is_bounded() -> None:
    allowed = "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)
    assert load_object('{"a": ' + allowed + "}", "body")
    deeper = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    with pytest.raises(MalformedRequest, match=f"nested deeper than {MAX_DEPTH}"):
        load_object('{"a": ' + deeper + "}", "body")
    objects = '{"a": ' * MAX_DEPTH + "1" + "}" * MAX_DEPTH
    with pytest.raises(MalformedRequest, match="nested deeper"):
        load_object(objects, "body")


def test_nesting_beyond_the_parser_is_refused_not_raised() -> None:
    with pytest.raises(MalformedRequest, match="nested too deeply"):
        load_value("[" * 200_000 + "]" * 200_000, "body")


@pytest.mark.parametrize("text", ['{"App": "\\ud800"}', '{"\\udfff": 1}', '{"a": ["\\udc00"]}'])
def test_unpaired_surrogates_are_refused(text: str) -> None:
    with pytest.raises(MalformedRequest, match="not valid Unicode"):
        load_object(text, "body")


def test_a_paired_surrogate_is_a_character() -> None:
    assert load_object('{"Stream": "\\ud83d\\ude00"}', "body") == {"Stream": "\U0001f600"}
