"""castgate vendor plugin for Kingsoft Cloud KLS push-stream callbacks (``PubStart``/``PubEnd``
and the old ``user_publish``/``user_publish_done`` form), both served at ``/hooks/kls``.

See README.md beside this file.
"""

from __future__ import annotations

from collections.abc import Sequence

from castgate import Vendor, hookimpl
from castgate_kls.vendor import Kls

__all__ = ["Kls", "castgate_register_vendors"]


@hookimpl
def castgate_register_vendors() -> Sequence[Vendor]:
    return [Kls()]
