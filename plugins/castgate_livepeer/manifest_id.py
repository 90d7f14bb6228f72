"""How a go-livepeer node reads a manifest ID (and RTMP stream key) out of a path.

A port of ``server/mediaserver.go`` ``parseStreamID``: cut the extension, strip leading spaces
and slashes and one ``stream/``, remove EVERY ``live/``, then split at the first ``/`` into the
manifest ID and the rendition (for RTMP, the stream key). The node applies the same function
to a ``manifestID`` a webhook answers with, which is why castgate refuses manifest IDs that are
not plain letters and digits: the node would silently publish under another name.
"""

from __future__ import annotations

import re
from typing import NamedTuple

# Go: regexp.MustCompile(`^[ /]*(stream/)?|(live/)?`) with ReplaceAllString.
_LEAD = re.compile(r"[ /]*(stream/)?")

#: What a manifest ID must look like to reach the node unchanged (the Livepeer doc's rule).
PLAIN = re.compile(r"[A-Za-z0-9]+")


class StreamId(NamedTuple):
    manifest_id: str
    rendition: str


def extension(path: str) -> str:
    """Go's ``path.Ext``: from the last ``.`` of the last element, or ``""``."""
    for index in range(len(path) - 1, -1, -1):
        if path[index] == "/":
            return ""
        if path[index] == ".":
            return path[index:]
    return ""


def parse_stream_id(path: str) -> StreamId:
    """The ``(manifest ID, rendition)`` the node makes of ``path``."""
    ext = extension(path)
    if ext:
        path = path[: -len(ext)]
    manifest_id, _, rendition = _clean_prefix(path).partition("/")
    return StreamId(manifest_id, rendition)


def _clean_prefix(path: str) -> str:
    """Go's ``StreamPrefix.ReplaceAllString(path, "")``, match for match.

    The first alternative always matches at the start, if only the empty string; Go then steps
    one character on, so a ``live/`` at the very start stays (``live/abc`` keeps ``live``),
    which Python's ``re.sub`` would remove. Every later ``live/`` goes.
    """
    lead = _LEAD.match(path)
    end = lead.end() if lead else 0
    if end == 0:
        return path[:1] + path[1:].replace("live/", "")
    return path[end:].replace("live/", "")


def node_manifest_id(value: str) -> str:
    """What the node keeps of a manifest ID sent in a webhook answer."""
    return parse_stream_id(value).manifest_id
