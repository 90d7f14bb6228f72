"""Orchestrator bodies to ``discover`` events."""

from __future__ import annotations

import pytest

from castgate import MalformedRequest
from castgate_livepeer.orchestrator import normal_address

from .support import event_dict, fixture, fixture_json, parse

ROUTE = "orchestrator"
TARGET = "/hooks/livepeer/orchestrator"


def test_the_reference_body_parses_into_its_documented_event() -> None:
    event = parse(fixture("requests/orchestrator/discover.json"), ROUTE, target=TARGET)
    assert event_dict(event) == fixture_json("events/orchestrator/discover.json")
    assert event.action == "discover"


@pytest.mark.parametrize(
    ("sent", "normal"),
    [
        (
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed",
        ),
        (
            "0X5AAEB6053F3E94C9B9A09F33669435E7EF1BEAED",
            "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed",
        ),
        (
            "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed",
            "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed",
        ),
        # not an address: kept as sent (the node checked a signature, not a form)
        ("0x5aAeb6053F", "0x5aAeb6053F"),
        ("alice", "alice"),
    ],
)
def test_addresses_are_lowercased_and_anything_else_kept(sent: str, normal: str) -> None:
    assert normal_address(sent) == normal
    event = parse(f'{{"id":"{sent}"}}'.encode(), ROUTE, target=TARGET)
    assert (event.params["address"], event.session_id, event.raw["id"]) == (normal, normal, sent)


def test_the_node_is_the_hook_urls_node_else_the_caller() -> None:
    body = fixture("requests/orchestrator/discover.json")
    assert parse(body, ROUTE, target=TARGET).node == "10.0.0.5"
    assert parse(body, ROUTE, target=f"{TARGET}?node=orch1").node == "orch1"
    assert parse(body, ROUTE, target=TARGET, client=None).node == ""


@pytest.mark.parametrize("body", [b"{}", b'{"id":""}', b'{"id":7}', b'{"id":null}', b'{"id":[]}'])
def test_a_body_without_an_id_is_refused_as_a_discover(body: bytes) -> None:
    with pytest.raises(MalformedRequest, match="no id") as caught:
        parse(body, ROUTE, target=TARGET)
    assert caught.value.action == "discover"


def test_a_broadcaster_body_on_the_orchestrator_route_names_the_other_route() -> None:
    body = fixture("requests/broadcaster/rtmp_publish_plain.json")
    with pytest.raises(MalformedRequest, match=r"point it at /hooks/livepeer$"):
        parse(body, ROUTE, target=TARGET)


def test_malformed_json_on_the_orchestrator_route_is_a_discover() -> None:
    with pytest.raises(MalformedRequest, match="not JSON") as caught:
        parse(b'{"id":', ROUTE, target=TARGET)
    assert caught.value.action == "discover"
