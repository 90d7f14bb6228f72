"""``example.country(ip)``: the country an address is in, for rules like "viewers from DE only".

The table holds the documentation ranges (RFC 5737, RFC 3849) so that examples and tests can use
them; a real plugin would read a GeoIP database once, at import, and look up from memory, since
the function runs on the request path.
"""

from __future__ import annotations

import ipaddress

import castgate

_NETWORKS = tuple(
    (ipaddress.ip_network(network), country)
    for network, country in (
        ("192.0.2.0/24", "DE"),
        ("198.51.100.0/24", "US"),
        ("203.0.113.0/24", "JP"),
        ("2001:db8::/32", "FR"),
    )
)


def country(ip: object) -> str | None:
    """The ISO 3166 code of the country ``ip`` is in, or None (missing, to policies) if unknown."""
    try:
        address = ipaddress.ip_address(str(ip))
    except ValueError:
        return None
    return next((code for network, code in _NETWORKS if address in network), None)


COUNTRY = castgate.PolicyFunction(
    name="example.country",
    params=("ip",),
    returns="string",
    impl=country,
    doc="ISO 3166 country code of an address (documentation ranges only)",
)
