"""Whether a policy's ``rename`` can be sent as nginx-rtmp's redirect ``Location``.

nginx-rtmp takes the Location of a 3xx answer to publish/play verbatim: a value that does not
start with ``rtmp://`` (any case) becomes the new stream name, and ``rtmp://IP[:port]/app/name``
starts a relay (push for publish, pull for play) to that address, without DNS.
"""

from __future__ import annotations

import ipaddress
import unicodedata

#: nginx-rtmp copies at most 254 bytes of the Location value and silently cuts the rest (its
#: header parser keeps ``n + 1 < 255`` bytes of a 256-byte buffer; checked against Debian's
#: libnginx-mod-rtmp 1.2.2: 255 and 300 bytes both arrived as 254). A cut name would publish
#: somewhere the policy never named, so longer values are refused instead.
MAX_BYTES = 254

_RELAY_PREFIX = "rtmp://"


def rename_problems(value: object) -> list[str]:
    """What keeps ``value`` from being a safe rename; empty when it can be sent."""
    if not isinstance(value, str):
        return [f"rename must be a string, not {type(value).__name__}"]
    if not value:
        return ["rename must not be empty"]
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        return ["rename is not valid text"]
    problems = []
    if size > MAX_BYTES:
        problems.append(f"rename is {size} bytes; nginx-rtmp keeps only {MAX_BYTES}")
    if "?" in value:
        # nginx-rtmp would keep the "?args" as part of the name, not as stream args.
        problems.append("rename must not contain '?'")
    if any(char.isspace() or unicodedata.category(char) == "Cc" for char in value):
        # A newline would end the header (or inject another); spaces get trimmed or kept by
        # nginx-rtmp depending on where they stand.
        problems.append("rename must not contain whitespace or control characters")
    if value[: len(_RELAY_PREFIX)].lower() == _RELAY_PREFIX:
        problems.extend(_relay_problems(value[len(_RELAY_PREFIX) :]))
    return problems


def _relay_problems(rest: str) -> list[str]:
    hostport, slash, path = rest.partition("/")
    app, _, name = path.partition("/")
    if not slash or not app or not name:
        return ["a relay rename must look like rtmp://IP[:port]/app/name"]
    if hostport.startswith("["):
        host, bracket, port = hostport[1:].partition("]")
        if not bracket or (port and not port.startswith(":")):
            return ["a relay rename has a malformed [IPv6] address"]
        port = port[1:]
    else:
        host, _, port = hostport.partition(":")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        # nginx-rtmp parses the relay URL with no_resolve: a host name would never connect.
        return [f"a relay rename needs an IP address, not {host[:64]!r}"]
    if port and not (port.isdigit() and port.isascii() and 0 < int(port) < 65536):
        return [f"a relay rename has an invalid port {port[:16]!r}"]
    return []
