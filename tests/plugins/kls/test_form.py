"""Splitting and decoding the old callback's form body, which is not reliably URL-encoded."""

from __future__ import annotations

from castgate_kls.form import REPLACEMENT, split_pairs


def test_doc_sample_with_a_raw_tcurl() -> None:
    body = b"app=live&name=asdf&swfurl=nil&tcurl=rtmp://test.uplive.ks-cdn.com/live&vdoid="
    assert split_pairs(body) == [
        ("app", "live"),
        ("name", "asdf"),
        ("swfurl", "nil"),
        ("tcurl", "rtmp://test.uplive.ks-cdn.com/live"),
        ("vdoid", ""),
    ]


def test_split_on_the_first_equals_sign() -> None:
    assert split_pairs(b"tcurl=rtmp://h/live?a=b=c") == [("tcurl", "rtmp://h/live?a=b=c")]


def test_percent_decoding_is_lenient() -> None:
    body = b"a=rtmp%3A%2F%2Fh%2Flive&b=50%&c=%zz&d=%4&e=100%25&f=a+b&g=%2B"
    assert dict(split_pairs(body)) == {
        "a": "rtmp://h/live",
        "b": "50%",
        "c": "%zz",
        "d": "%4",
        "e": "100%",
        "f": "a b",
        "g": "+",
    }


def test_keys_without_values_empty_chunks_and_whitespace() -> None:
    assert split_pairs(b"&&flag&k=v& &\r\n") == [("flag", ""), ("k", "v")]
    assert split_pairs(b" key =v") == [("key", "v")]


def test_invalid_utf8_becomes_the_replacement_character() -> None:
    assert split_pairs(b"name=cam%FF&x=\xfe") == [("name", f"cam{REPLACEMENT}"), ("x", REPLACEMENT)]


def test_repeats_are_kept_in_order() -> None:
    assert split_pairs(b"k=1&k=2") == [("k", "1"), ("k", "2")]
