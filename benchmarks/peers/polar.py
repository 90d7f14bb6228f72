"""Oso's Polar (``oso``, the Rust Polar VM through cffi; the library is deprecated since 2023).

``allow(client, action, stream)`` holds when no ``deny`` rule does and some ``permit`` rule does.
Stream keys and blocked ranges are facts (``key("...")``, ``blocked_range(first, last)``); Polar
indexes facts by their constant arguments, so a key is found without a scan. Polar has no regular
expressions, no IP type, no time zones and no string length: addresses reach it as 32 hex digits
(ranges as pairs of those), and the regex result, the token's length and the local weekday and
second are computed in Python. The client and stream are application classes, as Oso intends.
"""

from __future__ import annotations

from dataclasses import dataclass

from oso import Oso

from castgate.events import Event

from . import OFFICE, STUDIO, Facts, Peer, PeerDecide
from .inputs import address_key, cidr_span, local_clock, name_ok


def _ranges(cidrs: tuple[str, ...]) -> str:
    return "[" + ", ".join('["{}", "{}"]'.format(*cidr_span(c)) for c in cidrs) + "]"


_REFERENCE = """
allow(client: Client, action: String, stream: Stream) if
    not deny(client, action, stream) and
    permit(client, action, stream);

in_ranges(ip, ranges) if [first, last] in ranges and first <= ip and ip <= last;
studio(ip) if in_ranges(ip, STUDIO);
office(ip) if in_ranges(ip, OFFICE);
blocked(ip) if blocked_range(first, last) and first <= ip and ip <= last;
keyholder(client: Client) if key(client.key);
showtime(client: Client) if client.day < 5 and client.second >= 21600 and client.second < 84600;
weekend(client: Client) if client.day >= 5 and client.second >= 28800 and client.second < 72000;

# castgate's blocklist and done_flag_blocked: a flagged notification is a deny here.
deny(client: Client, action: String, _stream: Stream) if
    action in ["connect", "publish", "play", "update", "publish_done", "play_done"] and
    blocked(client.ip);
deny(_client: Client, "publish", stream: Stream) if not stream.name_ok;
deny(_client: Client, action: String, stream: Stream) if
    action in ["publish", "play"] and stream.name in ["admin", "internal", "system", "test"];
deny(_client: Client, "publish", stream: Stream) if
    stream.app = "live" and stream.name.startswith("test-");
deny(client: Client, "update", _stream: Stream) if client.key = "" and not studio(client.ip);

permit(client: Client, "publish", stream: Stream) if
    stream.app in ["live", "studio"] and studio(client.ip);
permit(client: Client, "publish", stream: Stream) if
    stream.app = "studio" and office(client.ip) and showtime(client);
permit(client: Client, "publish", stream: Stream) if
    stream.app = "live" and keyholder(client) and showtime(client);
permit(client: Client, "publish", stream: Stream) if
    stream.app = "live" and keyholder(client) and weekend(client);
permit(client: Client, "update", _stream: Stream) if keyholder(client);
permit(client: Client, "update", _stream: Stream) if studio(client.ip);
permit(_client: Client, "play", stream: Stream) if stream.app = "public";
permit(client: Client, "play", stream: Stream) if
    stream.app = "live" and client.token.startswith("v1.") and client.token_length >= 16;
permit(client: Client, "play", stream: Stream) if
    stream.app = "premium" and client.tier in ["gold", "platinum"];
permit(client: Client, "play", stream: Stream) if
    stream.app = "vod" and (keyholder(client) or office(client.ip));
permit(client: Client, "play", _stream: Stream) if studio(client.ip);
permit(client: Client, "connect", _stream: Stream) if
    studio(client.ip) or office(client.ip) or keyholder(client);
permit(_client: Client, action: String, _stream: Stream) if
    action in ["publish_done", "play_done"];
permit(client: Client, "discover", _stream: Stream) if studio(client.ip);
""".replace("STUDIO", _ranges(STUDIO)).replace("OFFICE", _ranges(OFFICE))

_FORBIDDEN_NAME = """
deny(_client: Client, action: String, stream: Stream) if
    action in ["publish", "play"] and stream.name = "{name}";"""

_GUEST_KEY = """
permit(client: Client, action: String, _stream: Stream) if
    action in ["publish", "play"] and client.key = "{key}";"""


def policy_text(facts: Facts) -> str:
    parts = [_REFERENCE]
    parts += [f'\nkey("{key}");' for key in facts.keys]
    parts += ['\nblocked_range("{}", "{}");'.format(*cidr_span(c)) for c in facts.blocked]
    parts += [_FORBIDDEN_NAME.format(name=name) for name in facts.forbidden_names]
    parts += [_GUEST_KEY.format(key=key) for key in facts.guest_keys]
    return "".join(parts) + "\n"


@dataclass(slots=True)
class Client:
    ip: str
    key: str
    token: str
    token_length: int
    tier: str
    day: int
    second: int


@dataclass(slots=True)
class Stream:
    app: str
    name: str
    name_ok: bool


def build(facts: Facts) -> PeerDecide:
    oso = Oso()
    oso.register_class(Client)
    oso.register_class(Stream)
    oso.load_str(policy_text(facts))
    is_allowed = oso.is_allowed

    def decide(event: Event, _state: object) -> bool:
        params = event.params
        token = params.get("token", "")
        day, second = local_clock(event.time)
        client = Client(
            address_key(event.client_ip),
            params.get("key", ""),
            token,
            len(token),
            params.get("tier", ""),
            day,
            second,
        )
        stream = Stream(event.app, event.stream, name_ok(event.stream))
        return is_allowed(client, event.action, stream)

    return decide


PEER = Peer(
    name="Oso Polar",
    package="oso",
    precomputed="address as hex, ranges as hex pairs; regex result, token length, local"
    " weekday and second",
    build=build,
)
