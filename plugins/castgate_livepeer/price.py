"""The orchestrator's answer: ``{}`` or ``{"priceInfo": {...}}``, the price quoted to one
broadcaster (``server/rpc.go discoveryAuthWebhookRes``).

Both numbers must be JSON integers (Go ``int64``): a float or a string fails the call. The node
forwards whatever it gets, and a ``pixelsPerUnit`` of 0 breaks the price arithmetic downstream
("pixels per unit is 0"), so castgate refuses it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from castgate_livepeer.gojson import INT64_MAX, describe, whole

FIELD = "priceInfo"
#: The priceInfo keys, in the order castgate writes them, with the least each may be.
PRICE_KEYS = {"pricePerUnit": 0, "pixelsPerUnit": 1}


def price_answer(data: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``(body, problems)``; the body is ``{}`` when no price is given."""
    if FIELD not in data:
        return {}, []
    value = data[FIELD]
    if not isinstance(value, Mapping):
        return {}, [f"priceInfo must be an object, not {describe(value)}"]
    problems = [
        # The node would ignore it, and a typo ("pixelPerUnit") would leave the real key 0.
        f"priceInfo has no key {key[:40]!r}; it has pricePerUnit and pixelsPerUnit"
        for key in value
        if key not in PRICE_KEYS
    ]
    price: dict[str, int] = {}
    for key, least in PRICE_KEYS.items():
        if key not in value:
            problems.append(f"priceInfo needs {key}")
            continue
        number = whole(value[key])
        if number is None or not least <= number <= INT64_MAX:
            bound = "above 0" if least else "0 or more"
            problems.append(
                f"priceInfo.{key} must be a whole number {bound}, not {describe(value[key])}"
            )
            continue
        price[key] = number
    return {FIELD: price}, problems
