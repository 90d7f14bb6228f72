"""Reading Java ``Map.toString()`` text, as AMS sends ``queryParams``."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from castgate_antmedia.javamap import parse_java_map


def java_to_string(entries: dict[str, str]) -> str:
    """What ``AbstractMap.toString()`` writes."""
    return "{" + ", ".join(f"{key}={value}" for key, value in entries.items()) + "}"


@pytest.mark.parametrize(
    ("text", "entries"),
    [
        ("{token=abc, foo=bar}", {"token": "abc", "foo": "bar"}),
        ("{}", {}),
        ("", {}),
        ("  { }  ", {}),
        ("token=abc, foo=bar", {"token": "abc", "foo": "bar"}),  # no braces
        ("{token=abc", {"token": "abc"}),  # cut off
        ("{sig=abc==}", {"sig": "abc=="}),
        ("{next=https://h/?a=1&b=2}", {"next": "https://h/?a=1&b=2"}),
        ("{empty=, k=v}", {"empty": "", "k": "v"}),
        ("{note=a, b, c, k=v}", {"note": "a, b, c", "k": "v"}),
        ("{k=v}}", {"k": "v}"}),
        ("{k={x=1}}", {"k": "{x=1}"}),
        ("{k=a,b}", {"k": "a,b"}),  # only ", " separates
        ("{k=null}", {"k": "null"}),
        ("{token}", {"token": ""}),
        ("{stray, k=v}", {"stray": "", "k": "v"}),
        ("{=v, k=w}", {"=v": "", "k": "w"}),
    ],
)
def test_reads(text: str, entries: dict[str, str]) -> None:
    result = parse_java_map(text)
    assert result.entries == entries
    assert result.ambiguous is False


def test_a_repeated_key_continues_the_previous_value_and_is_ambiguous() -> None:
    # A Java map cannot hold "token" twice, so the second "token=" is inside note's value.
    result = parse_java_map("{token=t0k3n, note=x, token=forged}")
    assert result.entries == {"token": "t0k3n", "note": "x, token=forged"}
    assert result.ambiguous is True


def test_a_value_holding_a_separator_and_a_new_key_reads_as_two_entries() -> None:
    # {a: "x, b=y"} and {a: "x", b: "y"} print the same; the common reading is chosen.
    assert parse_java_map(java_to_string({"a": "x, b=y"})).entries == {"a": "x", "b": "y"}


_KEY = st.text(st.characters(exclude_characters="=,"), min_size=1, max_size=8).filter(
    lambda key: not key.startswith("{") and key.strip() == key
)
_VALUE = st.text(max_size=12).filter(
    lambda value: ", " not in value and not value.endswith(("}", ","))
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_KEY, _VALUE, max_size=6))
def test_round_trips_every_map_without_separators_in_values(entries: dict[str, str]) -> None:
    result = parse_java_map(java_to_string(entries))
    assert result.entries == entries
    assert not result.ambiguous


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_any_text_reads_without_error(text: str) -> None:
    result = parse_java_map(text)
    assert all(
        isinstance(key, str) and isinstance(value, str) for key, value in result.entries.items()
    )
    # Nothing is invented: every key and value is a piece of the text.
    for key, value in result.entries.items():
        assert key in text
        assert value in text
