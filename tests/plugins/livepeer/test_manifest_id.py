"""The port of the node's parseStreamID, against what the Go code does."""

from __future__ import annotations

import pytest

from castgate_livepeer.manifest_id import PLAIN, extension, node_manifest_id, parse_stream_id


@pytest.mark.parametrize(
    ("path", "manifest_id", "rendition"),
    [
        ("/live/abc", "abc", ""),
        ("/live/abc/0.ts", "abc", "0"),
        ("/stream/abc.m3u8", "abc", ""),
        ("/app/key", "app", "key"),
        ("/stream/live/x/y.ts", "x", "y"),
        ("  //stream/x", "x", ""),
        ("/live/live/abc/1.ts", "abc", "1"),
        ("/recordings/abc/index.m3u8", "recordings", "abc/index"),
        ("/a/live/b", "a", "b"),  # every "live/" goes, not only a leading one
        ("xlive/a", "xa", ""),
        ("stream/stream/x", "stream", "x"),  # one "stream/" only
        # Go's ReplaceAllString steps one character past the empty match at the start, so a
        # "live/" right at the start of a value stays (unlike Python's re.sub).
        ("live/abc", "live", "abc"),
        ("", "", ""),
        ("/", "", ""),
        ("cam.1", "cam", ""),
        ("a.b/c.d", "a.b", "c"),  # only the last element's extension is cut
    ],
)
def test_parse_stream_id(path: str, manifest_id: str, rendition: str) -> None:
    assert parse_stream_id(path) == (manifest_id, rendition)


@pytest.mark.parametrize(
    ("path", "ext"),
    [("a/b.ts", ".ts"), ("a.b/c", ""), ("a/.ts", ".ts"), ("a/b.", "."), ("abc", ""), ("", "")],
)
def test_extension_is_gos_path_ext(path: str, ext: str) -> None:
    assert extension(path) == ext


@pytest.mark.parametrize("value", ["studio1", "ABC", "0123456789abcdef"])
def test_plain_manifest_ids_reach_the_node_unchanged(value: str) -> None:
    assert PLAIN.fullmatch(value)
    assert node_manifest_id(value) == value


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        ("live/cam", "live"),
        ("/live/cam", "cam"),
        ("stream/cam", "cam"),
        ("cam.1", "cam"),
        ("a/b", "a"),
    ],
)
def test_other_manifest_ids_are_rewritten_by_the_node(value: str, kept: str) -> None:
    assert node_manifest_id(value) == kept
