"""The old KLS callback (a form, ``call=user_publish`` | ``user_publish_done``) as an event.

Its fields are KLS's own, except ``vdoid``, which KLS copies from the push URL. Other keys are not
in the doc; they can only be push parameters (or fields a later KLS adds), so they go to
``params`` like ``vdoid``. Values are not reliably encoded and push parameters may travel as
pairs of their own, so a pusher can repeat a KLS field (``?call=...&app=...``). The doc's sample
writes KLS's fields first and the push URL's ``vdoid`` after them, so the first value of a
repeated field is taken as KLS's, and the field is listed in ``raw.spoofed`` for policies to
flag. Refusing such a body instead would hide the push from the policy and the session state,
which is what a forger wants.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from castgate import Event, MalformedRequest, first_values
from castgate_kls.form import REPLACEMENT, Pair
from castgate_kls.notice import VENDOR, add_own_keys
from castgate_kls.session import push_key, tcurl_domain
from castgate_kls.values import is_blank

#: The fields of the old callback's doc.
FIELDS = frozenset({"app", "name", "swfurl", "flashver", "tcurl", "call", "vdoid", "close_mode"})

#: ``call`` (case-folded) to action; any other call is logged as ``notify``.
ACTIONS: Mapping[str, str] = {
    "user_publish": "publish_started",
    "user_publish_done": "publish_done",
}


def old_event(pairs: list[Pair]) -> Event:
    """The event for a form body that has a ``call`` field."""
    fields: dict[str, str] = {}
    repeated: set[str] = set()
    for key, value in pairs:
        if key in FIELDS:
            if key in fields:
                repeated.add(key)
            else:
                fields[key] = value
    call = fields.get("call", "")
    if is_blank(call):
        raise MalformedRequest("no call: not a KLS push callback")
    action = ACTIONS.get(call.strip().casefold(), "notify")
    app, stream, tcurl = (_present(fields.get(key, "")) for key in ("app", "name", "tcurl"))
    if REPLACEMENT in app + stream + tcurl:
        raise MalformedRequest("app, name or tcurl is not valid UTF-8", action=action)
    domain = tcurl_domain(tcurl)
    vdoid = _present(fields.get("vdoid", ""))
    return Event(
        vendor=VENDOR,
        action=action,
        app=app,
        stream=stream,
        params=_params(pairs, vdoid),
        session_id=push_key(domain, app, stream, vdoid),
        role="" if action == "notify" else "publisher",
        raw=add_own_keys(_raw(pairs), callback="old", event=call, domain=domain, repeated=repeated),
    )


def _present(value: str) -> str:
    return "" if is_blank(value) else value


def _params(pairs: list[Pair], vdoid: str) -> dict[str, str]:
    # First value wins for a repeated key, as in most form readers; raw keeps all of them.
    params = first_values((key, value) for key, value in pairs if key not in FIELDS)
    if vdoid:
        params["vdoid"] = vdoid
    return params


def _raw(pairs: list[Pair]) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    for key, value in pairs:
        previous = raw.get(key)
        if previous is None:
            raw[key] = value
        elif isinstance(previous, list):
            previous.append(value)
        else:
            raw[key] = [previous, value]
    return raw
