"""Reading a KLS form body (``k=v&k=v``) into ordered pairs, the way its unencoded bodies need.

The old callback sends values raw (``tcurl=rtmp://host/live``) or encoded, with no Content-Type,
so decoding is lenient: an escape that is not ``%XX`` stays literal, ``+`` is a space, and bytes
that are not UTF-8 become U+FFFD (callers that build keys from a value refuse that).
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

#: A decoded ``key=value`` pair; a pair without ``=`` has the value ``""``.
Pair = tuple[str, str]

#: What an invalid UTF-8 sequence decodes to.
REPLACEMENT = "\ufffd"


def split_pairs(data: bytes) -> list[Pair]:
    """Split on ``&``, then on the FIRST ``=``, then percent-decode with ``+`` as a space."""
    pairs: list[Pair] = []
    for chunk in data.split(b"&"):
        if not chunk.strip():
            continue
        key, _, value = chunk.partition(b"=")
        pairs.append((_decode(key).strip(), _decode(value)))
    return pairs


def _decode(text: bytes) -> str:
    # unquote_to_bytes leaves "%", "%4" and "%zz" as they are: a lone % stays literal.
    return unquote_to_bytes(text.replace(b"+", b" ")).decode("utf-8", errors="replace")
