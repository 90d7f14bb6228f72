"""What both KLS callback versions add to an event's ``raw``, beside the fields KLS sent."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: The vendor id: ``/hooks/kls``, ``from kls``.
VENDOR = "kls"

#: Keys castgate adds to ``raw``. A body key of the same name is overwritten (its value is still
#: in ``params`` for the form) and listed in ``raw.spoofed``.
OWN_KEYS = ("callback", "event", "domain", "spoofed")


def add_own_keys(
    raw: dict[str, Any],
    *,
    callback: str,
    event: str,
    domain: str,
    repeated: Iterable[str] = (),
) -> dict[str, Any]:
    """``raw`` with ``callback`` (``new``/``old``), ``event`` (KLS's name for the call: the
    ``NotifyType`` or ``call`` as sent), ``domain`` (the ingest domain, lower case) and
    ``spoofed``: the ``repeated`` KLS fields and the body keys castgate's own replaced."""
    spoofed = sorted({key for key in OWN_KEYS if key in raw} | set(repeated))
    raw.update(callback=callback, event=event, domain=domain, spoofed=spoofed)
    return raw
