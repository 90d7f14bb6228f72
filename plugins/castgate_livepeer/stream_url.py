"""The ``url`` a go-livepeer broadcaster sends, read into the stream it names.

The node sends one of three URLs (``server/mediaserver.go``):

* an RTMP publish, ``rtmp://host:port/<app>/<stream>[?query]``, rebuilt by the node's RTMP
  library from the client's tcUrl (scheme and host) and its connect ``app`` and publish name;
  without a tcUrl it is only ``/<app>/<stream>[?query]``;
* the first segment of an HTTP push, ``http://<Host>/live/<manifestID>/<seq>.<ext>``, the
  query stripped;
* a recordings read, ``http://<Host>/recordings/<manifestID>/<file>[?query]``.

The client controls every part of these: an RTMP publisher can send a tcUrl and names that
spell exactly a push or a recordings URL. The form is reported (``raw.form``) but is not proof
of anything; see the README's section on forged URLs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import SplitResult, unquote_to_bytes, urlsplit

from castgate import MalformedRequest, parse_form
from castgate_livepeer.manifest_id import extension, parse_stream_id

#: A decoded ``key=value`` pair of the query; a pair without ``=`` has the value ``""``.
Pair = tuple[str, str]

RTMP = "rtmp"
PUSH = "push"
RECORDINGS = "recordings"

#: The castgate action each form asks for.
ACTIONS = {RTMP: "publish", PUSH: "publish", RECORDINGS: "play"}


@dataclass(frozen=True, slots=True)
class StreamUrl:
    """What one broadcaster ``url`` names."""

    form: str
    app: str
    stream: str
    #: The host the URL names (the publisher's tcUrl host, or the HTTP Host header), no port.
    host: str
    #: The query's pairs in wire order, percent-decoded.
    query: list[Pair]
    #: Form-specific details for ``raw``: the node's own manifest ID and key, segment, file.
    details: dict[str, str] = field(default_factory=dict)

    @property
    def action(self) -> str:
        return ACTIONS[self.form]


def read_stream_url(url: str) -> StreamUrl:
    """Read ``url``; :class:`MalformedRequest` if it is not a URL the node sends."""
    try:
        parts = urlsplit(url, allow_fragments=False)
    except ValueError as error:
        raise MalformedRequest(f"url is not a URL: {error}") from None
    path = _decoded_path(parts.path)
    form = _form(parts.scheme, (parts.path if path is None else path).split("/"))
    if path is None:
        # The node would use these bytes as the manifest ID; a policy could not name them.
        raise MalformedRequest("url path is not valid UTF-8", action=ACTIONS[form])
    if form == PUSH:
        return _push(parts, path)
    if form == RECORDINGS:
        return _recordings(parts, path.split("/"))
    return _rtmp(parts, path)


def _form(scheme: str, segments: list[str]) -> str:
    # The node builds push and recordings URLs with the scheme "http" itself; with any other
    # scheme, or any other path, a URL can only be an RTMP publisher's.
    if scheme == "http" and len(segments) > 2 and segments[0] == "":
        if segments[1] == "live":
            return PUSH
        if segments[1] == "recordings":
            return RECORDINGS
    return RTMP


def _rtmp(parts: SplitResult, path: str) -> StreamUrl:
    # The node's RTMP library drops empty path elements; so does this.
    names = [segment for segment in path.split("/") if segment]
    manifest_id, stream_key = parse_stream_id(path)
    return StreamUrl(
        form=RTMP,
        app=names[0] if names else "",
        stream="/".join(names[1:]),
        host=parts.hostname or "",
        query=split_query(parts.query),
        details={"manifest_id": manifest_id, "stream_key": stream_key},
    )


def _push(parts: SplitResult, path: str) -> StreamUrl:
    manifest_id = parse_stream_id(path).manifest_id
    # /live/<manifestID>/<seq>.<ext>: the segment is the last element, if there is one.
    last = path.rsplit("/", 1)[-1] if path.count("/") > 2 else ""
    ext = extension(last)
    return StreamUrl(
        form=PUSH,
        app="live",
        stream=manifest_id,
        host=parts.hostname or "",
        # The node strips the query of a push URL; a query here came from somewhere else.
        query=split_query(parts.query),
        details={
            "manifest_id": manifest_id,
            "segment": last[: -len(ext)] if ext else last,
            "extension": ext,
        },
    )


def _recordings(parts: SplitResult, segments: list[str]) -> StreamUrl:
    # HandleRecordings takes the third path element as it is, without parseStreamID.
    manifest_id = segments[2]
    return StreamUrl(
        form=RECORDINGS,
        app=RECORDINGS,
        stream=manifest_id,
        host=parts.hostname or "",
        query=split_query(parts.query),
        details={"manifest_id": manifest_id, "file": "/".join(segments[3:])},
    )


def _decoded_path(path: str) -> str | None:
    """The path as the node's Go ``url.Path`` holds it (percent-decoded), or ``None`` if that
    is not UTF-8."""
    try:
        return unquote_to_bytes(path).decode("utf-8")
    except UnicodeDecodeError:
        return None


def split_query(query: str) -> list[Pair]:
    """Split on ``&``, then on the FIRST ``=``, then percent-decode with ``+`` as a space.

    The query is the publisher's own text, so bad escapes and bytes that are not UTF-8 are
    normal input here: they decode leniently and never raise (:func:`castgate.parse_form`).
    """
    return parse_form(query)
