"""castgate vendor plugin for go-livepeer's ``-authWebhookUrl`` webhook.

Serves ``/hooks/livepeer`` for broadcaster (gateway) nodes, which ask before every RTMP publish,
HTTP push and recordings read, and ``/hooks/livepeer/orchestrator`` for orchestrators, which ask
on every broadcaster's discovery request and take a price per broadcaster. See README.md beside
this file.
"""

from __future__ import annotations

from collections.abc import Sequence

from castgate import Vendor, hookimpl
from castgate_livepeer.vendor import Livepeer

__all__ = ["Livepeer", "castgate_register_vendors"]


@hookimpl
def castgate_register_vendors() -> Sequence[Vendor]:
    return [Livepeer()]
