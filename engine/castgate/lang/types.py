"""The static types the checker assigns to expressions."""

from __future__ import annotations

from enum import StrEnum


class Type(StrEnum):
    STRING = "string"
    NUMBER = "number"
    BOOL = "bool"
    IP = "ip"
    IP_SET = "ip set"
    STRING_SET = "string set"
    LIST = "list"
    MAP = "map"
    OBJECT = "object"
    DURATION = "duration"
    TIME = "time"
    WINDOW = "time window"
    SECRET = "secret"
    #: Vendor data (params, raw, JWT claims): its type is known only at run time.
    ANY = "any"

    @classmethod
    def from_name(cls, name: str) -> Type:
        """The type for a :class:`~castgate.PolicyFunction` or ``ResponseField`` type name."""
        return cls(name)


#: Types that can appear in response data, i.e. have a JSON form.
RENDERABLE: frozenset[Type] = frozenset(
    {
        Type.STRING,
        Type.NUMBER,
        Type.BOOL,
        Type.IP,
        Type.LIST,
        Type.OBJECT,
        Type.MAP,
        Type.DURATION,
        Type.TIME,
        Type.ANY,
    }
)
