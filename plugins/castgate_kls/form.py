"""Reading a KLS form body (``k=v&k=v``) into ordered pairs, the way its unencoded bodies need.

The old callback sends values raw (``tcurl=rtmp://host/live``) or encoded, with no Content-Type,
so decoding is lenient (:func:`castgate.parse_form`): an escape that is not ``%XX`` stays literal,
``+`` is a space, and bytes that are not UTF-8 become U+FFFD (callers that build keys from a value
refuse that). Hand-built bodies carry stray whitespace, so blank pieces are skipped and keys are
stripped.
"""

from __future__ import annotations

from castgate import parse_form

#: A decoded ``key=value`` pair; a pair without ``=`` has the value ``""``.
Pair = tuple[str, str]

#: What an invalid UTF-8 sequence decodes to.
REPLACEMENT = "\ufffd"


def split_pairs(data: bytes) -> list[Pair]:
    """Split on ``&``, then on the FIRST ``=``, then percent-decode with ``+`` as a space."""
    return parse_form(data, strip=True)
