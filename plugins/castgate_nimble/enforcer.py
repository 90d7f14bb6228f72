"""Ending Nimble viewer sessions through its management API, for castgate's revocations.

Configured by ``CASTGATE_NIMBLE_API``: the management URL (``http://127.0.0.1:8082``), or one per
node, ``edge1=http://10.0.0.1:8082,edge2=http://10.0.0.2:8082`` (the node is the ``?node=`` of
the hook URL, or the address that called); ``CASTGATE_NIMBLE_MANAGEMENT_TOKEN`` is
``management_token`` from nimble.conf. Without ``CASTGATE_NIMBLE_API`` no enforcer is registered.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Mapping, Sequence

from castgate import Enforcer, LiveSession
from castgate_nimble.management import ManagementError, NimbleManagement, Session

#: Which management URL serves sessions of any node not named.
ANY_NODE = ""


class NimbleEnforcer(Enforcer):
    vendor = "nimble"

    def __init__(self, apis: Mapping[str, str], token: str | None) -> None:
        self.apis = dict(apis)
        self._token = token

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> NimbleEnforcer | None:
        env = os.environ if env is None else env
        setting = env.get("CASTGATE_NIMBLE_API", "").strip()
        if not setting:
            return None
        apis: dict[str, str] = {}
        for part in setting.split(","):
            node, _, url = part.strip().rpartition("=") if "=" in part else ("", "", part)
            apis[node.strip()] = url.strip()
        return cls(apis, env.get("CASTGATE_NIMBLE_MANAGEMENT_TOKEN") or None)

    async def end_sessions(self, sessions: Sequence[LiveSession]) -> None:
        by_api: defaultdict[str, list[LiveSession]] = defaultdict(list)
        for session in sessions:
            url = self.apis.get(session.node) or self.apis.get(ANY_NODE)
            if url is None:
                raise ManagementError(
                    f"no management URL for Nimble node {session.node!r} in CASTGATE_NIMBLE_API"
                )
            by_api[url].append(session)
        for url, wanted in by_api.items():
            async with NimbleManagement(url, self._token) as api:
                listed = await api.list_sessions()
                await api.delete_sessions(_matching(listed, wanted))


def _matching(listed: Sequence[Session], wanted: Sequence[LiveSession]) -> list[Session]:
    """Nimble's sessions that are the ones to end: by session id where castgate knows it, else
    by viewer address, app and stream (Nimble's ids and the auth handler's may differ)."""
    ids = {s.vendor_session for s in wanted if s.vendor_session}
    places = {(s.client_ip, s.app, s.stream) for s in wanted}
    return [
        session
        for session in listed
        if session.id in ids or (session.ip, session.app, session.stream) in places
    ]
