"""A stream's transcoding ladder: ``presets`` (lpms names) and ``profiles`` (custom renditions).

Each value is checked against what the node does with it (``ffmpeg/videoprofile.go``
``ParseProfilesFromJsonProfileArray`` and ``server/mediaserver.go parsePresets``): a value of
the wrong Go type or an unknown encoder refuses the stream; an unknown preset, a misspelled
profile key or a bitrate in kbit/s are silently dropped or misread, so castgate refuses them
before the node can.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from typing import Any

from castgate_livepeer.gojson import INT32_MAX, describe, items, text, whole

#: lpms ``VideoProfileLookup``: the names a node knows (case-sensitive).
PRESETS = (
    "P720p60fps16x9",
    "P720p30fps16x9",
    "P720p25fps16x9",
    "P720p30fps4x3",
    "P576p30fps16x9",
    "P576p25fps16x9",
    "P360p30fps16x9",
    "P360p25fps16x9",
    "P360p30fps4x3",
    "P240p30fps16x9",
    "P240p25fps16x9",
    "P240p30fps4x3",
    "P144p30fps16x9",
)

#: ``JsonProfile`` keys, in the order castgate sends them.
PROFILE_KEYS = (
    "name",
    "width",
    "height",
    "bitrate",
    "fps",
    "fpsDen",
    "profile",
    "gop",
    "encoder",
    "colorDepth",
    "chromaFormat",
    "quality",
)

#: lpms ``EncoderProfileLookup``, matched case-insensitively by the node.
H264_PROFILES = frozenset(
    {"", "none", "h264baseline", "h264main", "h264high", "h264constrainedhigh"}
)
#: lpms ``VideoCodecName``, matched exactly ("" is H.264).
ENCODERS = ("", "H.264", "HEVC", "VP8", "VP9")
#: ``colorDepth`` is bits above 8 in the node the reference was read from (0 = 8-bit, 2 = 10,
#: 4 = 12, 8 = 16). Older lpms read it as bits; see the README.
COLOR_DEPTHS = frozenset({0, 2, 4, 8})
#: Common spellings of the encoders, for a "did you mean".
_ENCODER_SPELLINGS = {
    **{spelling: "H.264" for spelling in ("h264", "h.264", "avc", "x264", "libx264")},
    **{spelling: "HEVC" for spelling in ("hevc", "h265", "h.265", "x265", "libx265")},
    "vp8": "VP8",
    "vp9": "VP9",
}
#: [unverified] lpms ``ChromaSubsampling``: 0 = 4:2:0 (the reference), 1 = 4:2:2, 2 = 4:4:4.
CHROMA_FORMATS = frozenset({0, 1, 2})

#: castgate's floor, not the node's: a "bitrate: 3000" meant kbit/s and would encode garbage.
MIN_BITRATE = 10_000

#: Checks one profile value: appends what is wrong, returns the value to send (``None``: none).
Check = Callable[[object, str, list[str]], Any]

#: Rendition names end up in playback paths (``/stream/<manifestID>/<name>.m3u8``), where the
#: node cuts at ``.`` and ``/``.
_NAME = re.compile(r"[A-Za-z0-9_-]+")
#: Go's ``strconv.ParseFloat`` also takes "1e1", "inf" and hex; only plain decimals are sent,
#: small enough that the node's nanosecond Duration cannot overflow.
_SECONDS = re.compile(r"[0-9]{1,6}(\.[0-9]{1,9})?")


def presets(value: object, problems: list[str]) -> list[str]:
    """The preset names to send; each problem is appended to ``problems``."""
    names = items(value)
    if names is None:
        problems.append(f"presets must be a list of preset names, not {describe(value)}")
        return []
    result: list[str] = []
    for index, entry in enumerate(names):
        name = text(entry)
        if name is None:
            problems.append(f"presets[{index}] must be a preset name, not {describe(entry)}")
        elif name not in PRESETS:
            # The node drops unknown names without a word, leaving the stream short a rendition.
            problems.append(f"presets[{index}] {name[:40]!r} is not a preset{_suggest(name)}")
        else:
            result.append(name)
    return result


def profiles(value: object, problems: list[str]) -> list[dict[str, Any]]:
    """The custom renditions to send, with whole numbers as ints and keys in a fixed order."""
    entries = items(value)
    if entries is None:
        problems.append(f"profiles must be a list of profile objects, not {describe(value)}")
        return []
    result = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            problems.append(f"profiles[{index}] must be an object, not {describe(entry)}")
            continue
        result.append(_profile(entry, f"profiles[{index}]", problems))
    return result


def rendition_names(
    preset_names: list[str], custom: list[dict[str, Any]], problems: list[str]
) -> None:
    """Two renditions of one name would write one playlist; refuse the second."""
    seen: set[str] = set()
    for name in [*preset_names, *(_name_of(profile) for profile in custom)]:
        if name in seen:
            problems.append(f"two renditions are named {name!r}")
        seen.add(name)


def _profile(entry: Mapping[str, Any], where: str, problems: list[str]) -> dict[str, Any]:
    for key in entry:
        if key not in PROFILE_KEYS:
            # The node ignores an unknown key, so a typo ("bitRate") would send a zero.
            close = difflib.get_close_matches(key, PROFILE_KEYS, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"it has {', '.join(PROFILE_KEYS)}"
            problems.append(f"{where} has no key {key[:40]!r} ({hint})")
    out: dict[str, Any] = {}
    for key in PROFILE_KEYS:
        if key in entry:
            checked = _CHECKS[key](entry[key], f"{where}.{key}", problems)
            if checked is not None:
                out[key] = checked
    for required in ("width", "height"):
        if required not in entry:
            problems.append(f"{where} needs {required} (pixels)")
    if "bitrate" not in entry and "quality" not in entry:
        problems.append(f"{where} needs bitrate (bits per second) or quality")
    return out


def _name(value: object, where: str, problems: list[str]) -> str | None:
    name = text(value)
    if name is None:
        problems.append(f"{where} must be a string, not {describe(value)}")
        return None
    if name and not _NAME.fullmatch(name):
        problems.append(f"{where} {name[:40]!r} may hold only letters, digits, '_' and '-'")
        return None
    return name


def _size(value: object, where: str, problems: list[str]) -> int | None:
    return _count(value, where, problems, low=1, unit="pixels")


def _bitrate(value: object, where: str, problems: list[str]) -> int | None:
    number = _count(value, where, problems, low=1, unit="bits per second")
    if number is not None and number < MIN_BITRATE:
        problems.append(
            f"{where} is in bits per second: {number} is {number / 1000:g} kbit/s; "
            f"for {number / 1000:g} Mbit/s write {number * 1000}"
        )
        return None
    return number


def _uint(value: object, where: str, problems: list[str]) -> int | None:
    return _count(value, where, problems, low=0, unit="")


def _count(value: object, where: str, problems: list[str], *, low: int, unit: str) -> int | None:
    number = whole(value)
    if number is None or not low <= number <= INT32_MAX:
        what = f"a whole number of {unit}" if unit else "a whole number"
        bound = "above 0" if low else "0 or more"
        problems.append(f"{where} must be {what} {bound}, not {describe(value)}")
        return None
    return number


def _h264_profile(value: object, where: str, problems: list[str]) -> str | None:
    name = text(value)
    if name is None or name.lower() not in H264_PROFILES:
        problems.append(
            f"{where} must be one of H264Baseline, H264Main, H264High, H264ConstrainedHigh, "
            f'None or "", not {_shown(value)}'
        )
        return None
    return name


def _gop(value: object, where: str, problems: list[str]) -> str | None:
    seconds = text(value)
    if seconds is None:
        # The node's type is a string: a number fails its JSON decoding, and with it the stream.
        number = isinstance(value, int | float) and not isinstance(value, bool)
        hint = f' (write "{value:g}")' if number else ""
        problems.append(
            f'{where} must be a string of seconds or "intra", not {describe(value)}{hint}'
        )
        return None
    if seconds in ("", "intra"):
        # "" is what the node reads as "not given": the encoder's default.
        return seconds
    # Older lpms refuse "0" (gop <= 0); leave gop out for the encoder's default.
    if not _SECONDS.fullmatch(seconds) or float(seconds) <= 0:
        problems.append(
            f'{where} must be seconds above 0 as a decimal string ("2", "2.5") or "intra", '
            f"not {seconds[:40]!r}"
        )
        return None
    return seconds


def _encoder(value: object, where: str, problems: list[str]) -> str | None:
    name = text(value)
    if name is None or name not in ENCODERS:
        close = _ENCODER_SPELLINGS.get(name.lower()) if name is not None else None
        hint = f" (did you mean {close!r}?)" if close else ""
        problems.append(
            f'{where} must be one of "H.264", "HEVC", "VP8", "VP9" or "" (exactly), '
            f"not {_shown(value)}{hint}"
        )
        return None
    return name


def _member(allowed: frozenset[int], meaning: str) -> Check:
    def check(value: object, where: str, problems: list[str]) -> int | None:
        number = whole(value)
        if number not in allowed:
            choices = ", ".join(str(each) for each in sorted(allowed))
            problems.append(f"{where} must be one of {choices} ({meaning}), not {_shown(value)}")
            return None
        return number

    return check


_CHECKS: Mapping[str, Check] = {
    "name": _name,
    "width": _size,
    "height": _size,
    "bitrate": _bitrate,
    "fps": _uint,
    "fpsDen": _uint,
    "profile": _h264_profile,
    "gop": _gop,
    "encoder": _encoder,
    "colorDepth": _member(COLOR_DEPTHS, "bits above 8"),
    "chromaFormat": _member(CHROMA_FORMATS, "0 is 4:2:0"),
    "quality": _uint,
}


def _name_of(profile: Mapping[str, Any]) -> str:
    # The node names an unnamed profile custom_<W>x<H>_<bitrate>.
    name = profile.get("name")
    if isinstance(name, str) and name:
        return name
    width, height = profile.get("width", 0), profile.get("height", 0)
    return f"custom_{width}x{height}_{profile.get('bitrate', 0)}"


def _shown(value: object) -> str:
    shown = text(value)
    return repr(shown[:40]) if shown is not None else describe(value)


def _suggest(name: str) -> str:
    folded = {preset.lower(): preset for preset in PRESETS}
    match = folded.get(name.strip().lower()) or next(
        iter(difflib.get_close_matches(name, PRESETS, n=1)), None
    )
    return f" (did you mean {match!r}?)" if match else "; see the README for the 13 names"
