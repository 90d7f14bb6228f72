"""Which pairs of a notify body nginx-rtmp wrote and which the client wrote.

A client controls the raw args of its stream name (``rtmp://host/live/cam?call=play&addr=6.6.6.6``)
and nginx-rtmp copies them into the body unescaped, so a body can hold ``call``, ``name``, ``app``,
``addr`` or ``clientid`` twice. The two module lines put the genuine fields in different places:

* upstream arut (Debian's ``libnginx-mod-rtmp``): session block first (``app, flashver, swfurl,
  tcurl, pageurl, addr, clientid``; connect has ``epoch`` instead of ``clientid``), then ``call``
  and the per-call fields, then the client's args LAST;
* the sergey-dryabzhinsky fork and nanocosmos bintu: the client's args FIRST, then ``call``, the
  per-call fields and the non-empty session fields.

Under the fork a client can write an arut-looking prefix, so no heuristic can tell the two apart
safely: the webhook route says which one the operator runs, and each layout reads bodies strictly
by its own field order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from castgate import MalformedRequest
from castgate_nginx_rtmp.form import Pair

#: Keys a client may try to forge; when one shows up among the client's args it is reported in
#: ``raw["spoofed"]`` (its genuine value still wins).
RESERVED: frozenset[str] = frozenset({"call", "name", "app", "addr", "clientid"})

#: The call each ``call=`` value stands for, as a castgate action.
ACTIONS: Mapping[str, str] = {
    "connect": "connect",
    "publish": "publish",
    "play": "play",
    "update_publish": "update",
    "update_play": "update",
    "update": "update",
    "publish_done": "publish_done",
    "play_done": "play_done",
    "done": "done",
    "record_done": "record_done",
    "disconnect": "disconnect",
    # The fork's on_playlist (HLS playlist written): nothing to decide, logged as a notification.
    "playlist": "notify",
}

_SESSION = ("app", "flashver", "swfurl", "tcurl", "pageurl", "addr", "clientid")
# on_connect runs before the session exists, so it carries the connect command's own values and
# the handshake epoch, and no clientid.
_CONNECT = ("app", "flashver", "swfurl", "tcurl", "pageurl", "addr", "epoch")

_UPDATE = (("time", True), ("timestamp", True), ("name", False))
_DONE = (("name", False),)
#: Upstream's fields after ``call=``, in order, with whether nginx-rtmp always writes them. An
#: optional field is left out when empty, so a client arg of the same name can land in its slot;
#: that is why a publish or play with an empty name is refused (see ``vendor.py``).
_CALL_FIELDS: Mapping[str, tuple[tuple[str, bool], ...]] = {
    "connect": (),
    "publish": (("name", True), ("type", True)),
    "play": (("name", True), ("start", True), ("duration", True), ("reset", True)),
    "update_publish": _UPDATE,
    "update_play": _UPDATE,
    "update": _UPDATE,
    "publish_done": _DONE,
    "play_done": _DONE,
    "done": _DONE,
    "record_done": (("recorder", True), ("name", True), ("path", True)),
    "disconnect": (("app", True),),
    "playlist": (("module", False), ("name", False), ("path", False)),
}

_FORK_ROUTE_HINT = "for the sergey-dryabzhinsky fork or bintu use /hooks/nginx_rtmp/fork"
_ARUT_ROUTE_HINT = "for upstream nginx-rtmp (Debian's libnginx-mod-rtmp) use /hooks/nginx_rtmp"


@dataclass(frozen=True, slots=True)
class Split:
    """A body divided into what nginx-rtmp wrote and what the client wrote."""

    #: ``arut`` or ``fork``: the field order the body was read with.
    ordering: str
    #: The ``call=`` value nginx-rtmp wrote.
    call: str
    #: Every field nginx-rtmp wrote, one value each (the genuine one).
    fields: Mapping[str, str]
    #: The client's own args (stream args; connect args for connect/disconnect), in wire order.
    args: list[Pair]
    #: Every pair of the body, in wire order.
    pairs: list[Pair]

    @property
    def spoofed(self) -> list[str]:
        """Reserved keys the client put into its args, sorted."""
        return sorted({key for key, _ in self.args if key in RESERVED})


def split_arut(pairs: list[Pair]) -> Split:
    """Read a body in upstream order: session block, ``call``, per-call fields, then client args."""
    keys = [key for key, _ in pairs]
    if "call" not in keys:
        raise MalformedRequest("no call field in the notify parameters")
    at = keys.index("call")
    call = pairs[at][1]
    action = ACTIONS.get(call, "")
    expected = _CONNECT if call == "connect" else _SESSION
    if tuple(keys[:at]) != expected:
        raise MalformedRequest(
            f"parameters are not in upstream nginx-rtmp order ({'&'.join(expected)} before "
            f"call); {_FORK_ROUTE_HINT}",
            action=action,
        )
    spec = _CALL_FIELDS.get(call)
    if spec is None:
        raise MalformedRequest(f"unknown call {call[:40]!r}")
    fields = dict(pairs[:at])
    fields["call"] = call
    pos = at + 1
    for key, required in spec:
        if pos < len(pairs) and pairs[pos][0] == key:
            # disconnect repeats app after call; the session block's (first) one stays.
            fields.setdefault(key, pairs[pos][1])
            pos += 1
        elif required:
            raise MalformedRequest(
                f"{call} parameters lack {key!r} where upstream nginx-rtmp writes it; "
                f"{_FORK_ROUTE_HINT}",
                action=action,
            )
    return Split("arut", call, fields, pairs[pos:], pairs)


def split_fork(pairs: list[Pair]) -> Split:
    """Read a body in fork/bintu order: client args, then the LAST ``call`` and everything after.

    Everything nginx-rtmp writes after ``call`` is escaped, so no client pair can follow the
    genuine ``call``; the last one is therefore nginx-rtmp's.
    """
    keys = [key for key, _ in pairs]
    if "call" not in keys:
        raise MalformedRequest("no call field in the notify parameters")
    at = len(keys) - 1 - keys[::-1].index("call")
    call = pairs[at][1]
    action = ACTIONS.get(call)
    if action is None:
        raise MalformedRequest(f"unknown call {call[:40]!r}")
    fields = dict(pairs[at:])
    # The fork always ends with addr and clientid; without them this is probably upstream's
    # layout, where the last call may be the client's.
    if "addr" not in fields or "clientid" not in fields:
        raise MalformedRequest(
            f"no addr/clientid after call, as the fork always writes them; {_ARUT_ROUTE_HINT}",
            action=action,
        )
    return Split("fork", call, fields, pairs[:at], pairs)


#: Route (``/hooks/nginx_rtmp/<route>``) to the reader for that module line.
LAYOUTS: Mapping[str, Callable[[list[Pair]], Split]] = {"": split_arut, "fork": split_fork}


def split_query(query: bytes, route: str) -> tuple[bytes, bytes]:
    """``(notify parameters, the operator's own URL query)`` of a ``notify_method get`` request.

    nginx-rtmp appends ``?<parameters>`` to the configured URL even when that URL already has a
    query, so ``on_publish http://h/hooks/nginx_rtmp?node=edge1`` arrives as
    ``?node=edge1?app=live&...``.
    """
    head, sep, rest = query.partition(b"?")
    if not sep:
        return query, b""
    if route == "":
        # Upstream's parameters always begin with the session block, and client args (which may
        # hold a "?") come last, so a query not starting with app= has the operator's part first.
        if query.startswith(b"app="):
            return query, b""
        return rest, head
    # The fork begins with the client's raw args, which may themselves contain "?"; only a head
    # made of node= pairs is taken as the operator's (see the README on forging node this way).
    if all(chunk.startswith(b"node=") for chunk in head.split(b"&") if chunk):
        return rest, head
    return query, b""
