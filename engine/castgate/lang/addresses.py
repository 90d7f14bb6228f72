"""IP addresses and sets of CIDR blocks, with membership in O(log n).

A set of networks is merged into sorted, disjoint integer ranges, so testing an address against
10,000 blocks is one binary search, about the same cost as against three.
IPv4-mapped IPv6 addresses (``::ffff:10.0.0.1``) are IPv4 addresses here, in sets and events alike.
"""

from __future__ import annotations

import ipaddress
import socket
from bisect import bisect_right
from collections.abc import Iterable

_V4_MAPPED_PREFIX = bytes(10) + b"\xff\xff"

#: An address as one integer: an IPv4 address is its own number (``167772161`` is 10.0.0.1), an
#: IPv6 address comes after all of them, at ``2**32`` plus its number. One sorted list of ranges
#: then holds both families, and a membership test is one bisection with nothing to unpack.
AddressKey = int
_V6_BASE = 1 << 32


def address_key(text: str) -> AddressKey | None:
    """The comparable form of an address as vendors send it, or ``None`` if it is not one.

    Accepts ``[::1]`` brackets and ``%zone`` suffixes, since some servers send those. The last
    answer is remembered by the identity of its text: a decision tests the same ``client.ip``
    string against several sets, and parsing it is most of the cost of each test."""
    global _last
    last = _last
    if text is last[0]:
        return last[1]
    found = parse_address(text)
    _last = (text, found)
    return found


_last: tuple[object, AddressKey | None] = (None, None)


def parse_address(text: str) -> AddressKey | None:
    """:func:`address_key` without the memory, for a caller that keeps the answer itself (a
    generated decide function, once per decision)."""
    if not isinstance(text, str):
        return None
    if ":" not in text:  # only IPv4 can parse without a colon: skip the IPv6 attempt
        try:
            return int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")
        except (OSError, ValueError):
            return None
    candidate = text.strip("[]").split("%", 1)[0]
    try:
        packed = socket.inet_pton(socket.AF_INET6, candidate)
    except (OSError, ValueError):
        return None
    if packed[:12] == _V4_MAPPED_PREFIX:
        return int.from_bytes(packed[12:], "big")
    return _V6_BASE + int.from_bytes(packed, "big")


class AddressError(ValueError):
    """A malformed address or CIDR block; the message says what is wrong and how to fix it."""


def parse_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """Parse ``10.0.0.0/8``, ``2001:db8::/32`` or a single address. Host bits set is an error
    (``10.0.0.1/8``): it almost always means a mistyped block."""
    try:
        network = ipaddress.ip_network(text)
    except ValueError:
        try:
            loose = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise AddressError(f"`{text}` is not an IP address or CIDR block") from None
        raise AddressError(
            f"`{text}` has host bits set; did you mean `{loose.with_prefixlen}`?"
        ) from None
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96:
        mapped = network.network_address.ipv4_mapped
        if mapped is not None:
            return ipaddress.IPv4Network(f"{mapped}/{network.prefixlen - 96}")
    return network


class IpSet:
    """An immutable set of networks; ``address in ip_set`` takes address text."""

    __slots__ = ("ends", "size", "starts")

    def __init__(self, networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> None:
        ranges: list[tuple[int, int]] = []
        for network in networks:
            first = int(network.network_address)
            if network.version == 6:
                first += _V6_BASE
            ranges.append((first, first + network.num_addresses - 1))
        self.size = len(ranges)
        #: The merged ranges of address keys, first and last (inclusive), in order.
        self.starts, self.ends = _merge(ranges)

    def contains_key(self, key: AddressKey) -> bool:
        i = bisect_right(self.starts, key)
        return i > 0 and key <= self.ends[i - 1]

    def __contains__(self, text: object) -> bool:
        key = address_key(text) if isinstance(text, str) else None
        return key is not None and self.contains_key(key)

    def __repr__(self) -> str:
        return f"<ip set of {self.size} networks>"


def _merge(ranges: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
    starts: list[int] = []
    ends: list[int] = []
    for first, last in sorted(ranges):
        if ends and first <= ends[-1] + 1:
            ends[-1] = max(ends[-1], last)
        else:
            starts.append(first)
            ends.append(last)
    return starts, ends
