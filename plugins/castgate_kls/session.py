"""Which push a KLS notification is about: the session id that pairs a start with its end.

The 2024 JSON callback sends ``Sequence``, KLS's own id for one push, and that is the session id.
The 2020 JSON callback and the old form callback send nothing of the kind, so the id is built
from what names a push there: ``domain/app/stream``, and for the form ``/vdoid`` after it when
the push URL carried a non-empty ``vdoid`` (the form's start and end both copy it from the one
push URL). KLS refuses a second concurrent push to a stream name (``ExistStreamName``), so at
any moment that key names at most one live push; successive pushes to one name share it and are
told apart by time: the state layer remembers when a session closed, and a start that is not
later than that close is not reopened.
"""

from __future__ import annotations


def push_key(domain: str, app: str, stream: str, vdoid: str) -> str:
    """``domain/app/stream[/vdoid]``, each part with ``%`` and ``/`` escaped so that no two
    pushes share a key; ``""`` without a stream name, since then nothing names the push."""
    if not stream:
        return ""
    parts = [domain, app, stream, vdoid] if vdoid else [domain, app, stream]
    return "/".join(part.replace("%", "%25").replace("/", "%2F") for part in parts)


def domain_name(text: str) -> str:
    """A domain as policies compare it: lower case, without a trailing dot."""
    return text.strip().lower().rstrip(".")


def tcurl_domain(tcurl: str) -> str:
    """The host of an ``rtmp://host[:port]/app`` push URL: the old callback's ingest domain."""
    _, sep, rest = tcurl.strip().partition("://")
    if not sep:
        return ""
    authority = rest
    for stop in "/?#":
        authority = authority.partition(stop)[0]
    host = authority.rpartition("@")[2]
    if host.startswith("["):
        return host[1:].partition("]")[0].lower()
    return domain_name(host.partition(":")[0])
