"""OPA's Rego through ``opa-eval`` (Microsoft's Regorus, a Rego interpreter in Rust, through PyO3;
``opa-eval`` is a small third-party wrapper, the only Regorus binding that installs here).

The same module and data document as :mod:`peers.rego`: this build of Regorus has no
``net.cidr_contains`` either, so addresses are hex strings here too. The wrapper reads the policy
from a file and takes each request's input as JSON text.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import opa_eval

from castgate.events import Event

from . import Facts, Peer, PeerDecide
from .inputs import request_fields
from .rego import data_document, module_text


def build(facts: Facts) -> PeerDecide:
    with tempfile.TemporaryDirectory(prefix="castgate-regorus-") as tmp:
        module = Path(tmp) / "castgate.rego"
        module.write_text(module_text(facts), encoding="utf-8")
        evaluator = opa_eval.OpaEval(
            str(module), json.dumps(data_document(facts)), "data.castgate.allowed"
        )
    evaluate = evaluator.evaluate_parsed
    dumps = json.dumps

    def decide(event: Event, _state: object) -> bool:
        request: dict[str, Any] = request_fields(event)
        request["ns"] = int(event.time * 1e9)
        return evaluate(dumps(request)) is True

    return decide


PEER = Peer(
    name="OPA Rego (regorus)",
    package="opa-eval",
    precomputed="address as hex, ranges as hex pairs (time zones native)",
    build=build,
)
