"""Decisions to Nimble's answers, byte for byte, and the plugin's declarations and registration."""

from __future__ import annotations

import asyncio
import logging

import pluggy
import pytest
from starlette.responses import Response
from starlette.types import Message

import castgate.hookspecs
from castgate import ACTIONS, Batch, Decision, Effect, Event, MalformedRequest, ResponseField
from castgate_nimble import Nimble
from castgate_nimble.sync import ForgedSync

VENDOR = Nimble()

Wire = tuple[int, list[tuple[bytes, bytes]], bytes]


def _wire(response: Response) -> Wire:
    """Status, headers and body exactly as Starlette hands them to the server."""
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(response({"type": "http", "method": "POST"}, receive, send))
    start, body = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], list(start["headers"]), body


def _headers(wire: Wire) -> dict[bytes, bytes]:
    return dict(wire[1])


def _play() -> Event:
    return Event(vendor="nimble", action="play", app="live", stream="cam1")


def _viewer(player_id: str | None, action: str = "update") -> Event:
    params = {} if player_id is None else {"id": player_id}
    return Event(vendor="nimble", action=action, app="live", stream="cam1", params=params)


ALLOW, DENY, ACK = (
    Decision(Effect.ALLOW, "ok"),
    Decision(Effect.DENY, "no"),
    Decision(Effect.ACK, ""),
)


def test_allow_is_200_with_the_status_as_json() -> None:
    wire = _wire(VENDOR.render(ALLOW, _play()))
    assert (wire[0], wire[2]) == (200, b'{"status":200}')
    assert _headers(wire) == {b"content-length": b"14", b"content-type": b"application/json"}


def test_deny_is_403_with_the_status_as_json_and_no_reason() -> None:
    wire = _wire(VENDOR.render(Decision(Effect.DENY, "secret rule detail"), _play()))
    assert (wire[0], wire[2]) == (403, b'{"status":403}')
    assert _headers(wire)[b"content-type"] == b"application/json"


def test_redirect_is_302_with_the_location_set_verbatim() -> None:
    url = "https://shop.example.com/renew?stream=cam1&x=%2F"
    wire = _wire(VENDOR.render(Decision(Effect.ALLOW, "ok", response={"redirect": url}), _play()))
    assert (wire[0], wire[2]) == (302, b'{"status":302}')
    assert [value for key, value in wire[1] if key == b"location"] == [url.encode()]


def test_an_invalid_redirect_that_reaches_render_is_denied() -> None:
    decision = Decision(Effect.ALLOW, "ok", response={"redirect": "https://a.example/\r\nX: 1"})
    wire = _wire(VENDOR.render(decision, _play()))
    assert (wire[0], wire[2]) == (403, b'{"status":403}')
    assert b"location" not in _headers(wire)


def test_deny_wins_over_redirect_data() -> None:
    decision = Decision(Effect.DENY, "no", response={"redirect": "https://a.example/"})
    assert _wire(VENDOR.render(decision, _play()))[0] == 403


def test_redirect_data_on_other_actions_is_ignored() -> None:
    decision = Decision(Effect.ALLOW, "ok", response={"redirect": "https://a.example/"})
    wire = _wire(VENDOR.render(decision, _viewer("1")))
    assert (wire[0], b"location" in _headers(wire)) == (200, False)
    assert _wire(VENDOR.render(ACK, _viewer("1", "publish_done")))[0] == 200


@pytest.mark.parametrize("route", ["", "auth"])
def test_a_malformed_auth_request_is_denied(route: str) -> None:
    wire = _wire(VENDOR.render_malformed(MalformedRequest("bad", action="play"), route))
    assert (wire[0], wire[2]) == (403, b'{"status":403}')


def test_a_malformed_sync_is_400_and_denies_nobody() -> None:
    wire = _wire(VENDOR.render_malformed(MalformedRequest("bad", action="update"), "ppv"))
    assert (wire[0], wire[2]) == (400, b'{"DenyList":{"ID":[]}}')
    assert _headers(wire)[b"content-type"] == b"application/json"


def test_a_forged_sync_is_403_and_denies_nobody() -> None:
    wire = _wire(VENDOR.render_malformed(ForgedSync("signature does not match"), "ppv"))
    assert (wire[0], wire[2]) == (403, b'{"DenyList":{"ID":[]}}')


def test_the_deny_list_holds_denied_ids_as_strings_deduplicated_in_first_seen_order() -> None:
    events = [_viewer(i) for i in ("1", "2", "3", "2", "4", "1", "5")]
    decisions = [DENY, ALLOW, DENY, DENY, ALLOW, DENY, Decision(Effect.DENY, "x", failed=True)]
    wire = _wire(VENDOR.render_batch(Batch(tuple(events)), decisions))
    assert (wire[0], wire[2]) == (200, b'{"DenyList":{"ID":["1","3","2","5"]}}')
    assert _headers(wire)[b"content-type"] == b"application/json"


def test_the_deny_list_is_empty_when_nobody_is_denied() -> None:
    events = (_viewer("1"), _viewer(None, "publish_started"))
    flagged = Decision(Effect.ACK, "flagged", rule="r", flagged=True)
    assert _wire(VENDOR.render_batch(Batch(events), [ALLOW, flagged]))[2] == (
        b'{"DenyList":{"ID":[]}}'
    )
    assert _wire(VENDOR.render_batch(Batch(()), []))[2] == b'{"DenyList":{"ID":[]}}'


def test_a_denied_viewer_without_an_id_is_logged_not_listed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="castgate_nimble"):
        wire = _wire(VENDOR.render_batch(Batch((_viewer(None), _viewer(" "))), [DENY, DENY]))
    assert wire[2] == b'{"DenyList":{"ID":[]}}'
    assert len([r for r in caplog.records if "without an id" in r.getMessage()]) == 2


def test_ids_are_escaped_as_ascii_json() -> None:
    wire = _wire(VENDOR.render_batch(Batch((_viewer("caf\u00e9"), _viewer('a"b'))), [DENY, DENY]))
    assert wire[2] == b'{"DenyList":{"ID":["caf\\u00e9","a\\"b"]}}'


def test_declarations() -> None:
    assert Nimble.name == "nimble"
    assert tuple(Nimble.routes) == ("", "auth", "ppv")
    assert Nimble.actions == {"play", "update", "publish_started", "publish_done"}
    assert Nimble.actions <= ACTIONS
    assert set(Nimble.response_fields) == {"redirect"}
    field = Nimble.response_fields["redirect"]
    assert isinstance(field, ResponseField)
    assert field.type == "string"


def test_the_token_comes_from_the_environment() -> None:
    assert Nimble.from_env({"CASTGATE_NIMBLE_TOKEN": "t"}).token == "t"
    assert Nimble.from_env({"CASTGATE_NIMBLE_TOKEN": ""}).token is None
    assert Nimble.from_env({}).token is None


def test_registers_through_the_castgate_entry_point_group() -> None:
    manager = pluggy.PluginManager("castgate")
    manager.add_hookspecs(castgate.hookspecs)
    assert manager.load_setuptools_entrypoints("castgate", name="nimble") == 1
    vendors = [vendor for batch in manager.hook.castgate_register_vendors() for vendor in batch]
    assert [type(vendor) for vendor in vendors] == [Nimble]
