"""Runtime values that are not plain Python data: *missing* and secrets."""

from __future__ import annotations

import hmac
from typing import Final


class Missing:
    """The value of a field the event does not have. It equals nothing, is in nothing, orders
    neither before nor after anything, and is false as a condition."""

    __slots__ = ()

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "missing"


MISSING: Final = Missing()


class Secret:
    """A value read from the environment or a key file. It is only ever handed to token checks;
    its text never reaches an error, a log line, an explanation or a response."""

    __slots__ = ("_value", "origin")

    def __init__(self, value: str, origin: str) -> None:
        self._value = value
        #: Where it came from, e.g. ``env CASTGATE_SIGNING_KEY``: safe to print.
        self.origin = origin

    def reveal(self) -> str:
        return self._value

    def __eq__(self, other: object) -> bool:
        # Same text from the same place: settings read back from the environment compare equal.
        return (
            isinstance(other, Secret)
            and other.origin == self.origin
            and hmac.compare_digest(other._value.encode(), self._value.encode())
        )

    def __hash__(self) -> int:
        return hash((self.origin, self._value))

    def __repr__(self) -> str:
        return f"<secret from {self.origin}>"

    __str__ = __repr__
