"""castgate vendor plugin for Nimble Streamer (Softvelum / WMSPanel).

Serves ``/hooks/nimble`` (also ``/hooks/nimble/auth``), the playback session authorization
handler, and ``/hooks/nimble/ppv``, the pay-per-view sync and (un)publish alerts.
:mod:`castgate_nimble.management` is a client for Nimble's own HTTP API (list and drop sessions);
:mod:`castgate_nimble.enforcer` uses it to end sessions castgate revokes, when
``CASTGATE_NIMBLE_API`` names the API. See README.md beside this file.
"""

from __future__ import annotations

from collections.abc import Sequence

from castgate import Enforcer, Vendor, hookimpl
from castgate_nimble.vendor import Nimble

__all__ = ["Nimble", "castgate_register_enforcers", "castgate_register_vendors"]


@hookimpl
def castgate_register_vendors() -> Sequence[Vendor]:
    return [Nimble.from_env()]


@hookimpl
def castgate_register_enforcers() -> Sequence[Enforcer]:
    # Imported here: the management client needs httpx, which only an enforcer uses.
    from castgate_nimble.enforcer import NimbleEnforcer

    enforcer = NimbleEnforcer.from_env()
    return [enforcer] if enforcer is not None else []
