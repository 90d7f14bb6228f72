"""The orchestrator's call (``server/rpc.go authenticateBroadcaster``) as a castgate event.

Body ``{"id": "0xAbC..."}``: the Ethereum address of a broadcaster asking for this
orchestrator's info and price, already proven by the broadcaster's signature. The orchestrator
calls on every ``GetOrchestratorInfo``, so the same address comes back often.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from castgate import Event, MalformedRequest

VENDOR = "livepeer"
ACTION = "discover"

_ADDRESS = re.compile(r"0[xX][0-9a-fA-F]{40}")


def orchestrator_event(body: Mapping[str, Any], node: str) -> Event:
    """The ``discover`` event for one orchestrator body, called from ``node``."""
    sent = body.get("id")
    if not isinstance(sent, str) or not sent.strip():
        hint = (
            "; this is a broadcaster's call: point it at /hooks/livepeer" if "url" in body else ""
        )
        raise MalformedRequest(
            f"no id (the broadcaster's address) in the body{hint}", action=ACTION
        )
    address = normal_address(sent)
    return Event(
        vendor=VENDOR,
        action=ACTION,
        params={"address": address},
        # The orchestrator caches each answer per broadcaster address, so the address is what
        # a decision here belongs to.
        session_id=address,
        node=node,
        raw={"body": dict(body), "id": sent, "address": address},
    )


def normal_address(sent: str) -> str:
    """An address in one spelling: lowercase hex, as price lists are written.

    The node sends EIP-55 mixed case; a list keyed by checksummed or lowercase addresses would
    otherwise match only one spelling. Anything that is not an address is kept as sent
    (leniently: the node checked the signature, not the form).
    """
    if _ADDRESS.fullmatch(sent):
        return "0x" + sent[2:].lower()
    return sent
