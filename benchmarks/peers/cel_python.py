"""CEL through ``cel-python`` (``celpy``, an interpreter written in Python on Lark).

The same expression as :mod:`peers.cel_rust`, but for the time windows: cel-python has time zones,
so it gets the request's timestamp and computes the Berlin weekday and clock itself.
"""

from __future__ import annotations

from datetime import UTC, datetime

import celpy
from celpy import celtypes

from castgate.events import Event

from . import Facts, Limits, Peer, PeerDecide
from .cel_rust import expression, lists
from .inputs import request_fields

_TZ = '"Europe/Berlin"'
_CLOCK = f"(now.getHours({_TZ}) * 3600 + now.getMinutes({_TZ}) * 60 + now.getSeconds({_TZ}))"
# CEL counts weekdays from Sunday (0).
SHOWTIME = f"(now.getDayOfWeek({_TZ}) in [1, 2, 3, 4, 5] && {_CLOCK} >= 21600 && {_CLOCK} < 84600)"
WEEKEND = f"(now.getDayOfWeek({_TZ}) in [0, 6] && {_CLOCK} >= 28800 && {_CLOCK} < 72000)"


def build(facts: Facts) -> PeerDecide:
    environment = celpy.Environment()
    program = environment.program(environment.compile(expression(facts, SHOWTIME, WEEKEND)))
    static = {name: celpy.json_to_cel(value) for name, value in lists(facts).items()}
    to_cel = celpy.json_to_cel
    timestamp = celtypes.TimestampType
    evaluate = program.evaluate

    def decide(event: Event, _state: object) -> bool:
        activation = {name: to_cel(value) for name, value in request_fields(event).items()}
        activation["now"] = timestamp(datetime.fromtimestamp(event.time, UTC))
        return evaluate(static | activation) == celtypes.BoolType(True)

    return decide


PEER = Peer(
    name="CEL (cel-python)",
    package="cel-python",
    precomputed="address as hex, ranges as hex pairs (time zones native)",
    build=build,
    limits=Limits(
        rules=100,
        why="its parser recurses once per `||`: 1,000 rules in one expression exceed Python's"
        " recursion limit (as 1,000 programs, at least 0.1 s a decision: the most trivial"
        " program costs ~120 us here)",
    ),
)
