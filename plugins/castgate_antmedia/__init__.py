"""castgate vendor plugin for Ant Media Server (AMS) webhooks.

Serves ``/hooks/antmedia`` for the event webhooks (``listenerHookURL``, and the server's
``statusWebHookURL``), ``/hooks/antmedia/publish`` for publish authentication
(``webhookAuthenticateURL``) and ``/hooks/antmedia/play`` for play authentication
(``webhookPlayAuthUrl``). See README.md beside this file.
"""

from __future__ import annotations

from collections.abc import Sequence

from castgate import Vendor, hookimpl
from castgate_antmedia.vendor import AntMedia

__all__ = ["AntMedia", "castgate_register_vendors"]


@hookimpl
def castgate_register_vendors() -> Sequence[Vendor]:
    return [AntMedia()]
