"""What an integrator computes per request for an engine that cannot: the client address in a form
the engine can compare, the local time in the policy's time zone, the stream-name pattern.

These run inside each peer's timed decide call, as they would in production. They read the
address the way castgate and the floor do (``inet_pton``; an IPv4-mapped IPv6 address is its IPv4
address; anything else is no address), so that every engine sees the same client.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from datetime import datetime
from zoneinfo import ZoneInfo

from castgate.events import Event

from . import NAME_PATTERN

ZONE = ZoneInfo("Europe/Berlin")
_V4_MAPPED = bytes(10) + b"\xff\xff"
_AF4, _AF6 = socket.AF_INET, socket.AF_INET6


def _packed(text: str) -> bytes | None:
    """The address as 16 bytes (IPv4 in its mapped form), or ``None`` if it is not one."""
    try:
        if ":" in text:
            return socket.inet_pton(_AF6, text)
        return _V4_MAPPED + socket.inet_pton(_AF4, text)
    except OSError:
        return None


def client_address(text: str) -> str | None:
    """The address as text an engine's IP type parses: an IPv4-mapped address as plain IPv4
    (castgate matches those against IPv4 ranges), ``None`` if ``text`` is not an address."""
    packed = _packed(text)
    if packed is None:
        return None
    if packed[:12] == _V4_MAPPED:
        return socket.inet_ntop(_AF4, packed[12:])
    return text


def address_key(text: str) -> str:
    """The address as 32 hex digits, so that plain string comparison orders addresses: the range
    test of an engine without an IP type. ``""`` (before every range) if it is not an address."""
    packed = _packed(text)
    return "" if packed is None else packed.hex()


def cidr_span(cidr: str) -> tuple[str, str]:
    """The first and last address of ``cidr`` in the form of :func:`address_key`."""
    network = ipaddress.ip_network(cidr)
    if network.version == 4:
        network = ipaddress.ip_network(f"::ffff:{network.network_address}/{96 + network.prefixlen}")
    first, last = int(network.network_address), int(network.broadcast_address)
    return f"{first:032x}", f"{last:032x}"


def local_clock(timestamp: float) -> tuple[int, int]:
    """``(weekday, second)`` of ``timestamp`` in Berlin: Monday is 0, seconds since midnight."""
    local = datetime.fromtimestamp(timestamp, ZONE)
    return local.weekday(), local.hour * 3600 + local.minute * 60 + local.second


# RE2's `$` is the end of the text; Python's `$` also matches before a final newline.
_NAME_OK = re.compile(NAME_PATTERN.removeprefix("^").removesuffix("$")).fullmatch


def name_ok(name: str) -> bool:
    """Whether the stream name matches the reference policy's pattern (RE2 semantics)."""
    return _NAME_OK(name) is not None


def request_fields(event: Event) -> dict[str, str]:
    """The request as the flat string fields the reference policy reads; a missing parameter is
    ``""``, as castgate treats an empty one as missing; the address as :func:`address_key`."""
    params = event.params
    return {
        "action": event.action,
        "app": event.app,
        "name": event.stream,
        "key": params.get("key", ""),
        "token": params.get("token", ""),
        "tier": params.get("tier", ""),
        "ip": address_key(event.client_ip),
    }
