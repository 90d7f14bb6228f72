"""Reading the broadcaster's url: forms, queries, details."""

from __future__ import annotations

import pytest

from castgate_livepeer.stream_url import PUSH, RECORDINGS, RTMP, read_stream_url, split_query


@pytest.mark.parametrize(
    ("query", "pairs"),
    [
        ("", []),
        ("a=1&b=2", [("a", "1"), ("b", "2")]),
        ("a=1=2", [("a", "1=2")]),
        ("flag&&x=", [("flag", ""), ("x", "")]),
        ("k=a+b%2Bc%20d", [("k", "a b+c d")]),
        ("k=%zz%", [("k", "%zz%")]),
        ("k=%FF", [("k", "\ufffd")]),
        ("%6B=v", [("k", "v")]),
        ("k=1&k=2", [("k", "1"), ("k", "2")]),
    ],
)
def test_split_query(query: str, pairs: list[tuple[str, str]]) -> None:
    assert split_query(query) == pairs


@pytest.mark.parametrize(
    ("url", "form", "action"),
    [
        ("rtmp://h/live/k", RTMP, "publish"),
        ("/live/k", RTMP, "publish"),
        ("live/k", RTMP, "publish"),
        ("http://h/live/k/0.ts", PUSH, "publish"),
        ("http://h/live/k", PUSH, "publish"),
        ("http://h/live", RTMP, "publish"),
        ("http://h/recordings/m/index.m3u8", RECORDINGS, "play"),
        ("http://h/recordings", RTMP, "publish"),
        ("http://h/%72ecordings/m/x.ts", RECORDINGS, "play"),  # the node routes the decoded path
        ("ftp://h/recordings/m/x.ts", RTMP, "publish"),
    ],
)
def test_form_and_action(url: str, form: str, action: str) -> None:
    read = read_stream_url(url)
    assert (read.form, read.action) == (form, action)


def test_push_details() -> None:
    read = read_stream_url("http://h:8935/live/k/sub/17.ts")
    assert (read.app, read.stream, read.host) == ("live", "k", "h")
    assert read.details == {"manifest_id": "k", "segment": "17", "extension": ".ts"}


def test_a_push_url_without_a_segment() -> None:
    read = read_stream_url("http://h/live/k")
    assert (read.stream, read.details) == (
        "k",
        {"manifest_id": "k", "segment": "", "extension": ""},
    )


def test_recordings_details() -> None:
    read = read_stream_url("http://[2001:db8::1]:8935/recordings/m1/s/720p/3.ts?finalize=false")
    assert (read.app, read.stream, read.host) == ("recordings", "m1", "2001:db8::1")
    assert read.details == {"manifest_id": "m1", "file": "s/720p/3.ts"}
    assert read.query == [("finalize", "false")]


def test_userinfo_never_becomes_the_host() -> None:
    assert read_stream_url("rtmp://user:pw@gw1:1935/live/k").host == "gw1"


def test_a_fragment_mark_is_part_of_the_query_as_go_sent_it() -> None:
    assert read_stream_url("rtmp://h/live/k?a=1#b").query == [("a", "1#b")]
