"""Presets and profiles: what the node would reject, drop or misread is refused, by name."""

from __future__ import annotations

from typing import Any

import pytest

from castgate_livepeer.ladder import PRESETS, PROFILE_KEYS, presets, profiles, rendition_names

GOOD_PROFILE: dict[str, Any] = {
    "name": "720p",
    "width": 1280,
    "height": 720,
    "bitrate": 3000000,
    "fps": 30,
    "fpsDen": 1,
    "profile": "H264High",
    "gop": "2.5",
    "encoder": "H.264",
    "colorDepth": 0,
    "chromaFormat": 0,
    "quality": 23,
}


def check_presets(value: object) -> tuple[list[str], list[str]]:
    problems: list[str] = []
    return presets(value, problems), problems


def check_profile(**changes: Any) -> tuple[list[dict[str, Any]], list[str]]:
    profile = {**GOOD_PROFILE, **changes}
    profile = {key: value for key, value in profile.items() if value is not ...}
    problems: list[str] = []
    return profiles([profile], problems), problems


def test_the_thirteen_presets_of_lpms() -> None:
    assert len(PRESETS) == len(set(PRESETS)) == 13
    sent, problems = check_presets(list(PRESETS))
    assert (sent, problems) == (list(PRESETS), [])


def test_constant_tuples_are_lists() -> None:
    assert check_presets(("P240p30fps4x3",)) == (["P240p30fps4x3"], [])


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (["p720p30fps16x9"], "did you mean 'P720p30fps16x9'?"),
        (["P720p30fps16x9 "], "did you mean 'P720p30fps16x9'?"),
        (["P1080p30fps16x9"], "is not a preset"),
        (["P144p25fps16x9"], "is not a preset"),  # defined in lpms, not in its lookup table
        ([""], "is not a preset"),
        ([720], "presets[0] must be a preset name, not a number (720)"),
        ("P720p30fps16x9", "presets must be a list"),
        ({"P720p30fps16x9": 1}, "presets must be a list"),
    ],
)
def test_presets_the_node_would_drop_are_refused(value: object, problem: str) -> None:
    _, problems = check_presets(value)
    assert problem in " ".join(problems)


def test_a_full_profile_is_sent_with_its_keys_in_order() -> None:
    sent, problems = check_profile()
    assert problems == []
    assert list(sent[0]) == list(PROFILE_KEYS)
    assert sent[0] == GOOD_PROFILE


def test_whole_floats_are_sent_as_ints() -> None:
    sent, problems = check_profile(width=1280.0, bitrate=3e6)
    assert problems == []
    assert (type(sent[0]["width"]), sent[0]["bitrate"]) == (int, 3000000)


def test_a_minimal_profile() -> None:
    problems: list[str] = []
    sent = profiles([{"width": 426, "height": 240, "bitrate": 250000}], problems)
    assert (sent, problems) == ([{"width": 426, "height": 240, "bitrate": 250000}], [])


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"bitrate": 2.5e6 + 0.5}, "profiles[0].bitrate must be a whole number of bits per second"),
        ({"bitrate": "3000k"}, "bitrate must be a whole number"),
        ({"bitrate": 3000}, "3000 is 3 kbit/s; for 3 Mbit/s write 3000000"),
        ({"bitrate": 0}, "above 0"),
        ({"bitrate": -1}, "above 0"),
        ({"bitrate": True}, "not a bool (true)"),
        ({"bitrate": ..., "quality": ...}, "needs bitrate (bits per second) or quality"),
        ({"width": 0}, "profiles[0].width must be a whole number of pixels above 0"),
        ({"width": "1280"}, "width must be a whole number"),
        ({"width": ...}, "needs width"),
        ({"height": 2**31}, "height must be a whole number"),
        ({"fps": -1}, "fps must be a whole number 0 or more"),
        ({"fps": 29.97}, "fps must be a whole number"),
        ({"fpsDen": None}, "fpsDen must be a whole number 0 or more, not null"),
        ({"gop": 2}, 'not a number (2) (write "2")'),
        ({"gop": 2.5}, 'write "2.5"'),
        ({"gop": "0"}, "seconds above 0"),
        ({"gop": "-1"}, "seconds above 0"),
        ({"gop": "1e1"}, "seconds above 0"),
        ({"gop": "inf"}, "seconds above 0"),
        ({"gop": "2s"}, "seconds above 0"),
        ({"gop": "9" * 400}, "seconds above 0"),  # Go's ParseFloat: out of range
        ({"gop": "INTRA"}, "seconds above 0"),
        ({"profile": "H264Extended"}, "profiles[0].profile must be one of"),
        ({"profile": 1}, "profile must be one of"),
        ({"encoder": "h264"}, "did you mean 'H.264'?"),
        ({"encoder": "hevc"}, "did you mean 'HEVC'?"),
        ({"encoder": "H265"}, "did you mean 'HEVC'?"),
        ({"encoder": "AV1"}, "encoder must be one of"),
        ({"colorDepth": 10}, "colorDepth must be one of 0, 2, 4, 8 (bits above 8)"),
        ({"chromaFormat": 3}, "chromaFormat must be one of 0, 1, 2"),
        ({"quality": -1}, "quality must be a whole number 0 or more"),
        ({"name": "720p.hd"}, "may hold only letters, digits"),
        ({"name": "a/b"}, "may hold only letters, digits"),
        ({"name": 720}, "profiles[0].name must be a string"),
        ({"bitRate": 1}, "has no key 'bitRate' (did you mean 'bitrate'?)"),
        ({"resolution": "1x1"}, "has no key 'resolution' (it has name, width"),
    ],
)
def test_profile_values_the_node_would_reject_or_misread_are_refused(
    changes: dict[str, Any], problem: str
) -> None:
    _, problems = check_profile(**changes)
    assert problem in " | ".join(problems)


@pytest.mark.parametrize(
    "changes",
    [
        {"gop": "intra"},
        {"gop": ""},
        {"gop": "0.5"},
        {"profile": "h264main"},
        {"profile": "None"},
        {"profile": ""},
        {"encoder": ""},
        {"encoder": "VP9"},
        {"fps": 0, "fpsDen": 0},
        {"name": ""},
        {"bitrate": ..., "quality": 28},
        {"colorDepth": 2, "chromaFormat": 2},
    ],
)
def test_values_the_node_accepts(changes: dict[str, Any]) -> None:
    assert check_profile(**changes)[1] == []


@pytest.mark.parametrize("value", ["x", 5, None, [["a"]], ["a"], [None]])
def test_profiles_must_be_a_list_of_objects(value: object) -> None:
    problems: list[str] = []
    profiles(value, problems)
    assert problems and "must be" in problems[0]


def test_two_renditions_of_one_name_are_refused() -> None:
    problems: list[str] = []
    custom: list[dict[str, Any]] = [{"name": "P240p30fps16x9"}, {"width": 1, "height": 2}]
    rendition_names(["P240p30fps16x9"], custom, problems)
    assert problems == ["two renditions are named 'P240p30fps16x9'"]
    problems.clear()
    unnamed = {"width": 426, "height": 240, "bitrate": 250000}
    rendition_names([], [unnamed, {"name": "custom_426x240_250000"}], problems)
    assert problems == ["two renditions are named 'custom_426x240_250000'"]
