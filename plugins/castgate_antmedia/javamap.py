"""Reading the ``queryParams`` of AMS's publish authentication: a Java ``Map.toString()``.

AMS sends the publisher's query parameters as ``queryParams.toString()``, e.g.
``{token=abc, foo=bar}``: every entry is ``key=value``, entries are joined by ``", "`` and the
whole is wrapped in braces. Nothing is escaped, so the text is ambiguous:

* a value may contain ``=`` (``sig=abc==``): an entry is split on its FIRST ``=`` only, because
  a key parsed out of a query string never holds one;
* a value may contain ``", "``: ``{a=x, b=y}`` is either ``{a: "x", b: "y"}`` or
  ``{a: "x, b=y"}``, and no reader can tell. It is read as two entries, the common case. A
  piece after ``", "`` that is not ``key=...`` cannot start an entry, so it continues the
  previous value (``{a=x, y}`` is ``{a: "x, y"}``), and so does a piece whose key was already
  read: a Java map never repeats a key, so that ``key=`` must be inside a value.

Every value is the publisher's own, so a value that imitates another entry gains nothing the
publisher could not have sent directly; the vendor lets AMS's explicit ``token``,
``subscriberId`` and ``subscriberCode`` fields win over these entries all the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field

_SEPARATOR = ", "


@dataclass(slots=True)
class JavaMap:
    """The entries read from one ``Map.toString()`` text."""

    entries: dict[str, str] = field(default_factory=dict)
    #: A ``key=`` repeated inside the text: some value held ``", key="``, so the reading of
    #: that value is a guess (see the module doc).
    ambiguous: bool = False


def parse_java_map(text: str) -> JavaMap:
    """Read ``{k=v, k=v}`` leniently: missing braces, ``{}`` and stray pieces are accepted."""
    inner = text.strip()
    # Lenient about the braces: one may be missing (a cut-off text), and values may end in "}",
    # so exactly one brace is taken from each end.
    if inner.startswith("{"):
        inner = inner[1:]
    if inner.endswith("}"):
        inner = inner[:-1]
    result = JavaMap()
    if not inner.strip():
        return result
    last: str | None = None
    for piece in inner.split(_SEPARATOR):
        key, equals, value = piece.partition("=")
        starts_entry = bool(equals) and bool(key) and key not in result.entries
        if starts_entry:
            result.entries[key] = value
            last = key
        elif last is not None:
            if equals and key in result.entries:
                result.ambiguous = True
            result.entries[last] += _SEPARATOR + piece
        elif piece:
            # Text before the first "key=" (e.g. "{token}"): a key without a value.
            result.entries.setdefault(piece, "")
            last = piece
    return result
