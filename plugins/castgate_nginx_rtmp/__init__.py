"""castgate vendor plugin for nginx-rtmp notify webhooks (``on_publish``, ``on_play``, ...).

Serves ``/hooks/nginx_rtmp`` for upstream nginx-rtmp (arut; Debian's ``libnginx-mod-rtmp``) and
``/hooks/nginx_rtmp/fork`` for the sergey-dryabzhinsky fork and nanocosmos bintu, whose bodies put
the fields in another order. See README.md beside this file.
"""

from __future__ import annotations

from collections.abc import Sequence

from castgate import Vendor, hookimpl
from castgate_nginx_rtmp.vendor import NginxRtmp

__all__ = ["NginxRtmp", "castgate_register_vendors"]


@hookimpl
def castgate_register_vendors() -> Sequence[Vendor]:
    return [NginxRtmp()]
