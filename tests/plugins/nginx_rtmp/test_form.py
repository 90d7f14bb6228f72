"""The body reader: ``&`` pairs, first ``=``, percent-decoding, size limit."""

from __future__ import annotations

import asyncio

import pytest

from castgate import MalformedRequest
from castgate_nginx_rtmp.form import MAX_BODY_BYTES, REPLACEMENT, read_body, split_pairs

from .support import make_request


def test_splits_on_ampersand_then_first_equals() -> None:
    assert split_pairs(b"a=1&b=x=y&c==") == [("a", "1"), ("b", "x=y"), ("c", "=")]


def test_plus_is_space_and_percent_escapes_decode_once() -> None:
    assert split_pairs(b"key=k+1%2B&n=%2541") == [("key", "k 1+"), ("n", "%41")]


def test_keeps_duplicates_and_order() -> None:
    assert split_pairs(b"addr=1&x=2&addr=3") == [("addr", "1"), ("x", "2"), ("addr", "3")]


def test_skips_empty_chunks_and_keeps_keys_without_value() -> None:
    assert split_pairs(b"&&a=&flag&&b= ") == [("a", ""), ("flag", ""), ("b", " ")]


def test_raw_and_encoded_tcurl_decode_to_the_same_url() -> None:
    raw = split_pairs(b"tcurl=rtmp://h:1935/live")
    encoded = split_pairs(b"tcurl=rtmp%3A%2F%2Fh%3A1935%2Flive")
    assert raw == encoded == [("tcurl", "rtmp://h:1935/live")]


def test_malformed_escapes_stay_literal() -> None:
    assert split_pairs(b"a=%&b=%G1&c=50%25%2") == [("a", "%"), ("b", "%G1"), ("c", "50%%2")]


def test_invalid_utf8_is_replaced_not_raised() -> None:
    assert split_pairs(b"name=cam%FF&k\xfe=v") == [
        ("name", f"cam{REPLACEMENT}"),
        (f"k{REPLACEMENT}", "v"),
    ]


def test_valid_utf8_escapes_decode() -> None:
    assert split_pairs(b"name=caf%C3%A9&t=%E2%9C%93") == [("name", "café"), ("t", "✓")]


def _read(**options: object) -> bytes:
    return asyncio.run(read_body(make_request(**options)))  # type: ignore[arg-type]


def test_reads_body_in_chunks_whatever_the_content_type() -> None:
    assert _read(chunks=[b"call=pu", b"blish&name=a"], content_type="text/plain") == (
        b"call=publish&name=a"
    )
    assert _read(body=b"call=play", content_type=None) == b"call=play"


def test_refuses_a_body_over_the_limit_by_header() -> None:
    with pytest.raises(MalformedRequest, match="larger than"):
        _read(body=b"", content_length=str(MAX_BODY_BYTES + 1))


def test_refuses_a_body_over_the_limit_while_streaming() -> None:
    chunk = b"a" * 40_000
    with pytest.raises(MalformedRequest, match="larger than"):
        _read(chunks=[chunk, chunk], content_length="10")
