"""The broadcaster's answer body: which keys go out, in which order, and which data is refused."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from castgate_livepeer.stream_answer import FIELDS, stream_answer


def problems_of(data: dict[str, Any]) -> str:
    return " | ".join(stream_answer(data)[1])


def test_no_broadcaster_key_is_no_body() -> None:
    assert stream_answer({}) == ({}, [])
    assert stream_answer({"lifetime": 3600}) == ({}, [])
    assert stream_answer({"priceInfo": {"pricePerUnit": 1}}) == ({}, [])


def test_keys_go_out_in_the_reference_order() -> None:
    data = {key: value for key, value in reversed(list(_every_key().items()))}
    body, problems = stream_answer(data)
    assert problems == []
    assert list(body) == list(FIELDS)


def _every_key() -> dict[str, Any]:
    return {
        "manifestID": "m1",
        "streamKey": "k",
        "presets": ["P240p30fps16x9"],
        "profiles": [{"width": 2, "height": 2, "bitrate": 100000}],
        "streamID": "s",
        "sessionID": "x",
        "objectStore": "s3://k:s@r/b",
        "recordObjectStore": "gs://bucket",
        "recordObjectStoreUrl": "https://r.example.com/rec",
        "previousSessions": ["a1"],
        "verificationFreq": 3,
    }


@pytest.mark.parametrize("key", [key for key in FIELDS if key != "manifestID"])
def test_every_other_key_needs_a_manifest_id(key: str) -> None:
    data = {key: _every_key()[key]}
    assert "manifestID is required with " + key in problems_of(data)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "must not be empty"),
        ("live/cam", "'live/cam' would reach the node as 'live'"),
        ("/live/cam", "would reach the node as 'cam'"),
        ("stream/cam", "would reach the node as 'cam'"),
        ("cam.1", "would reach the node as 'cam'"),
        ("cam-1", "may hold only letters and digits"),
        ("cam 1", "may hold only letters and digits"),
        ("kan\u00e4l", "may hold only letters and digits"),
        (5, "manifestID must be a string, not a number (5)"),
        (None, "manifestID must be a string, not null"),
        (["m"], "must be a string, not a list"),
    ],
)
def test_manifest_ids_the_node_would_refuse_or_rewrite(value: object, problem: str) -> None:
    assert problem in problems_of({"manifestID": value})


def test_an_address_constant_is_its_text() -> None:
    # The checker lets an address stand for a string; the text has dots, so it is refused.
    data = {"manifestID": ipaddress.ip_network("10.0.0.1/32")}
    assert "'10.0.0.1' would reach the node as '10.0.0'" in problems_of(data)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"streamKey": "a.b"}, "streamKey must be letters, digits"),
        ({"streamKey": "a/b"}, "streamKey must be letters"),
        (
            {"streamKey": 5},
            "streamKey must be letters, digits, '_' and '-' (empty: the node makes one), "
            "not a number (5)",
        ),
        ({"streamID": 5}, "streamID must be a string"),
        ({"sessionID": ["x"]}, "sessionID must be a string"),
        ({"objectStore": "bucket"}, "objectStore must be a URL such as s3://"),
        ({"objectStore": "s3://a b@c/d"}, "objectStore must be a URL"),
        ({"recordObjectStore": "//x"}, "recordObjectStore must be a URL"),
        (
            {"recordObjectStoreUrl": 1},
            "recordObjectStoreUrl must be a URL such as s3://key:secret@region/bucket, "
            "not a number (1)",
        ),
        ({"previousSessions": "a1"}, "previousSessions must be a list"),
        (
            {"previousSessions": ["a1", "b/2"]},
            "previousSessions[1] must be a manifest ID, not 'b/2'",
        ),
        ({"verificationFreq": -1}, "verificationFreq must be a whole number 0 or more"),
        ({"verificationFreq": 1.5}, "verificationFreq must be a whole number"),
        ({"profiles": []}, "the stream would get zero renditions"),
        ({"profiles": [], "presets": []}, "zero renditions"),
        ({"presets": ["P240p30fps16x9", "P240p30fps16x9"]}, "two renditions are named"),
    ],
)
def test_other_values_the_node_would_refuse(data: dict[str, Any], problem: str) -> None:
    assert problem in problems_of({"manifestID": "m1", **data})


@pytest.mark.parametrize(
    "data",
    [
        {"streamKey": ""},
        {"streamKey": "k_9-X"},
        {"objectStore": ""},
        {"objectStore": "s3+https://k:s@minio.local:9000/bucket"},
        {"recordObjectStore": "gs://bucket?keyfile=x"},
        {"previousSessions": []},
        {"presets": []},
        {"presets": [], "profiles": [{"width": 2, "height": 2, "bitrate": 100000}]},
        {"presets": ["P240p30fps16x9"], "profiles": []},
        {"verificationFreq": 0},
    ],
)
def test_values_the_node_takes(data: dict[str, Any]) -> None:
    assert problems_of({"manifestID": "m1", **data}) == ""


def test_problems_of_nested_lists_are_all_reported() -> None:
    data = {
        "manifestID": "m1",
        "presets": ["nope"],
        "profiles": [{"width": 1, "height": 1, "bitrate": 1, "gop": 1}],
    }
    problems = stream_answer(data)[1]
    assert len(problems) == 3
