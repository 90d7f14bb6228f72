"""Whether a policy's ``redirect`` can be sent to Nimble as a 302 ``Location``.

Nimble sends the viewer to the Location of a 302 answer to its auth handler. The viewer is an
HLS/DASH player, a browser or an SLDP/WebRTC client, so only an absolute ``http(s)`` URL means
the same thing to all of them; a relative one would be resolved against Nimble's own URL.
"""

from __future__ import annotations

from urllib.parse import urlsplit

#: Generous for a URL, short enough for every proxy and player between Nimble and the viewer.
MAX_BYTES = 2048

_SCHEMES = ("http", "https")


def redirect_problems(value: object) -> list[str]:
    """What keeps ``value`` from being sent as the Location; empty when it can be sent."""
    if not isinstance(value, str):
        return [f"redirect must be a string, not {type(value).__name__}"]
    if not value:
        return ["redirect must not be empty"]
    if not value.isascii():
        # A header value is bytes; percent-encode non-ASCII so every reader sees the same URL.
        return ["redirect must be ASCII (percent-encode other characters)"]
    if any(not char.isprintable() or char.isspace() for char in value):
        # A CR or LF would end the header or inject another one.
        return ["redirect must not contain whitespace or control characters"]
    problems = []
    if len(value) > MAX_BYTES:
        problems.append(f"redirect is {len(value)} bytes; at most {MAX_BYTES} are sent")
    if "\\" in value:
        # Browsers read a backslash as a slash; other clients do not, so the target is unclear.
        problems.append("redirect must not contain a backslash")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as error:
        return [*problems, f"redirect is not a valid URL: {error}"]
    if parts.scheme.lower() not in _SCHEMES:
        problems.append("redirect must be an absolute http:// or https:// URL")
    elif not parts.hostname:
        problems.append("redirect must name a host")
    if port == 0:
        problems.append("redirect has an invalid port 0")
    return problems
