"""castgate vendor plugin for Nimble Streamer (Softvelum / WMSPanel).

Serves ``/hooks/nimble`` (also ``/hooks/nimble/auth``), the playback session authorization
handler, and ``/hooks/nimble/ppv``, the pay-per-view sync and (un)publish alerts.
:mod:`castgate_nimble.management` is a client for Nimble's own HTTP API (list and drop sessions);
it needs ``httpx`` and is imported only by whoever uses it. See README.md beside this file.
"""

from __future__ import annotations

from collections.abc import Sequence

from castgate import Vendor, hookimpl
from castgate_nimble.vendor import Nimble

__all__ = ["Nimble", "castgate_register_vendors"]


@hookimpl
def castgate_register_vendors() -> Sequence[Vendor]:
    return [Nimble.from_env()]
