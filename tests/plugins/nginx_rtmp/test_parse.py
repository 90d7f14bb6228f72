"""Requests to Events: the bodies Debian's nginx-rtmp really sent (recorded by
tests/e2e/test_harness.py), the fork's and bintu's, GET, and hostile input."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from castgate import ACTIONS, Event, MalformedRequest
from castgate_nginx_rtmp import NginxRtmp

from .support import FIXTURES, fixture, make_request, parse, parse_fixture

SPOOF = {
    "key": "k1",
    "addr": "6.6.6.6",
    "call": "play",
    "name": "evil",
    "app": "x",
    "clientid": "99",
}
VIEW = {"vk": "v1", "addr": "6.6.6.6", "call": "publish", "name": "evil"}
CONNECT_ARGS = {"ck": "c1", "addr": "6.6.6.6", "call": "publish"}

# fixture, action, role, stream, params
RECORDED = [
    ("connect", "connect", "", "", {}),
    ("connect_args", "connect", "", "", CONNECT_ARGS),
    ("publish", "publish", "", "cam1", SPOOF),
    ("play", "play", "", "cam1", VIEW),
    ("update_publish", "update", "publisher", "cam1", SPOOF),
    ("update_play", "update", "viewer", "cam1", VIEW),
    ("publish_done", "publish_done", "publisher", "cam1", SPOOF),
    ("play_done", "play_done", "viewer", "cam1", VIEW),
    ("done_publisher", "done", "", "cam1", SPOOF),
    ("done_viewer", "done", "", "cam1", VIEW),
    ("record_done", "record_done", "", "cam1", SPOOF),
    ("disconnect", "disconnect", "", "", {}),
    ("disconnect_args", "disconnect", "", "", CONNECT_ARGS),
    ("publish_long_name", "publish", "", "n" * 255, {}),
]


def test_every_recorded_fixture_is_covered() -> None:
    names = {path.stem for path in (FIXTURES / "recorded" / "post").glob("*.body")}
    covered = {row[0] for row in RECORDED} | {
        "disconnect_no_session",
        "publish_empty_name",
        "update_publish_empty_name",
    }
    assert names == covered


@pytest.mark.parametrize(("name", "action", "role", "stream", "params"), RECORDED)
def test_recorded_upstream_body(
    name: str, action: str, role: str, stream: str, params: dict[str, str]
) -> None:
    event = parse_fixture(f"recorded/post/{name}.body")
    assert event.vendor == "nginx_rtmp"
    assert (event.action, event.role, event.stream) == (action, role, stream)
    assert event.app == "live"
    assert event.client_ip == "127.0.0.1"  # never the forged 6.6.6.6
    if action == "connect":
        assert event.session_id == ""  # upstream's connect carries no clientid
    else:
        assert event.session_id.isdigit() and event.session_id != "99"
    assert dict(event.params) == params
    assert event.node == "10.1.2.3"  # the peer: no node= in the hook URL
    assert event.raw["ordering"] == "arut"
    assert event.raw["method"] == "POST"
    assert event.raw["spoofed"] == sorted(set(params) & {"call", "name", "app", "addr", "clientid"})
    assert event.raw["fields"]["addr"] == "127.0.0.1"
    assert action in ACTIONS


def test_raw_keeps_every_value_of_repeated_keys_in_wire_order() -> None:
    event = parse_fixture("recorded/post/publish.body")
    assert event.raw["addr"] == ["127.0.0.1", "6.6.6.6"]
    assert event.raw["call"] == ["publish", "play"]
    assert event.raw["name"] == ["cam1", "evil"]
    assert event.raw["clientid"][1] == "99"
    assert event.raw["type"] == "live"
    assert event.raw["swfurl"] == ""
    assert event.raw["fields"]["type"] == "live"
    assert event.raw["fields"]["flashver"] == "FMLE/3.0 (compatible; Lavf59.27"


def test_recorded_play_keeps_the_uint32_start() -> None:
    event = parse_fixture("recorded/post/play.body")
    assert event.raw["start"] == "4294965296"  # ffmpeg's -2000 ms cast to uint32
    assert event.raw["fields"]["reset"] == "0"


def test_start_minus_two_and_garbage_numbers_stay_strings() -> None:
    body = fixture("recorded/post/play.body").replace(b"start=4294965296", b"start=4294967294")
    assert parse(body).raw["start"] == "4294967294"
    garbage = fixture("recorded/post/update_publish.body")
    for field in (b"time=2", b"timestamp=1983"):
        garbage = garbage.replace(field, field.split(b"=")[0] + b"=-1e9x%00")
    event = parse(garbage.replace(b"clientid=4&", b"clientid=0x1F&"))
    assert event.raw["fields"]["time"] == "-1e9x\x00"
    assert event.session_id == "0x1F"


def test_recorded_record_done_path_and_empty_recorder() -> None:
    event = parse_fixture("recorded/post/record_done.body")
    assert event.raw["fields"]["path"].endswith("/recordings/cam1.flv")
    assert event.raw["fields"]["recorder"] == ""


def test_recorded_disconnect_of_a_connection_that_never_spoke_rtmp() -> None:
    # nginx reports any TCP connection, e.g. a port probe: everything but addr is empty.
    event = parse_fixture("recorded/post/disconnect_no_session.body")
    assert (event.action, event.app, event.stream, event.client_ip) == (
        "disconnect",
        "",
        "",
        "127.0.0.1",
    )
    assert event.is_notification


def test_encoded_and_raw_tcurl() -> None:
    publisher = parse_fixture("recorded/post/publish.body")
    assert b"tcurl=rtmp://127.0.0.1:" in fixture("recorded/post/publish.body")  # sent raw
    assert publisher.raw["tcurl"].startswith("rtmp://127.0.0.1:")
    assert publisher.raw["tcurl"].endswith("/live")
    viewer = parse_fixture("recorded/post/play.body")
    # nginx escaped the "?" and "&" of the connect args inside tcurl
    assert b"/live%3Fck=c1%26addr=6.6.6.6%26call=publish&" in fixture("recorded/post/play.body")
    assert viewer.raw["tcurl"].endswith("/live?ck=c1&addr=6.6.6.6&call=publish")
    bintu = parse_fixture("bintu/publish.body", route="fork")
    assert bintu.raw["tcurl"] == "rtmp://bintu-stream.nanocosmos.de:1935/live"


def test_empty_publish_name_is_refused_because_update_would_take_a_forged_one() -> None:
    with pytest.raises(MalformedRequest, match="empty stream name") as caught:
        parse_fixture("recorded/post/publish_empty_name.body")
    assert caught.value.action == "publish"
    # What the refusal prevents: upstream drops the empty genuine name from update, and the
    # client's "name=evil" lands in its slot, byte-identical to a genuine name.
    update = parse_fixture("recorded/post/update_publish_empty_name.body")
    assert update.stream == "evil"


def test_empty_play_name_is_refused() -> None:
    body = fixture("recorded/post/play.body").replace(b"call=play&name=cam1&", b"call=play&name=&")
    with pytest.raises(MalformedRequest, match="empty stream name") as caught:
        parse(body)
    assert caught.value.action == "play"


# --- the fork / bintu order --------------------------------------------------------------------

# fixture, action, role, session id, params, bytes_in
FORK = [
    ("publish", "publish", "", "4", SPOOF, None),
    ("play", "play", "", "12", VIEW, None),
    ("update_publish", "update", "publisher", "4", SPOOF, None),
    ("update_play", "update", "viewer", "12", VIEW, None),
    ("update", "update", "", "4", SPOOF, None),
    ("publish_done", "publish_done", "publisher", "4", SPOOF, "575"),
    ("play_done", "play_done", "viewer", "12", VIEW, "3520"),
    ("done", "done", "", "4", SPOOF, "575"),
    ("record_done", "record_done", "", "4", SPOOF, "575"),
    ("connect", "connect", "", "12", CONNECT_ARGS, None),
    ("disconnect", "disconnect", "", "12", CONNECT_ARGS, "3520"),
    ("playlist", "notify", "", "4", {}, None),
]


def test_every_fork_fixture_is_covered() -> None:
    names = {path.stem for path in (FIXTURES / "fork").glob("*.body")}
    assert names == {row[0] for row in FORK}


@pytest.mark.parametrize(("name", "action", "role", "session", "params", "bytes_in"), FORK)
def test_fork_body(
    name: str,
    action: str,
    role: str,
    session: str,
    params: dict[str, str],
    bytes_in: str | None,
) -> None:
    event = parse_fixture(f"fork/{name}.body", route="fork", target="/hooks/nginx_rtmp/fork")
    assert (event.action, event.role, event.session_id) == (action, role, session)
    assert event.app == "live"
    assert event.stream == ("" if action in ("connect", "disconnect") else "cam1")
    assert event.client_ip == "127.0.0.1"
    assert dict(event.params) == params
    assert event.raw["ordering"] == "fork"
    assert event.raw["fields"].get("bytes_in") == bytes_in


def test_bintu_publish_example_verbatim() -> None:
    event = parse_fixture("bintu/publish.body", route="fork")
    assert (event.action, event.app, event.stream) == ("publish", "live", "CD6xx-123456")
    assert (event.client_ip, event.session_id) == ("x.x.x.x", "123456")
    assert dict(event.params) == {"foo": "bar", "batz": "12345"}
    assert event.raw["type"] == "live"
    assert event.raw["spoofed"] == []


def test_bintu_play_example_verbatim() -> None:
    event = parse_fixture("bintu/play.body", route="fork")
    assert (event.action, event.app, event.stream) == ("play", "play", "CD6xx-123456")
    assert dict(event.params) == {"test": "123"}
    assert (event.raw["start"], event.raw["duration"], event.raw["reset"]) == ("0", "0", "0")


@pytest.mark.parametrize(
    ("name", "action", "role", "params"),
    [
        ("update_publish", "update", "publisher", {"foo": "bar", "batz": "12345"}),
        ("publish_done", "publish_done", "publisher", {"foo": "bar", "batz": "12345"}),
        ("play_done", "play_done", "viewer", {"test": "123"}),
    ],
)
def test_bintu_notifications(name: str, action: str, role: str, params: dict[str, str]) -> None:
    event = parse_fixture(f"bintu/{name}.body", route="fork")
    assert (event.action, event.role, event.stream) == (action, role, "CD6xx-123456")
    assert (event.client_ip, event.session_id) == ("17.31.43.214", "9466245")
    assert dict(event.params) == params


# --- spoofing: every reserved key, both orders --------------------------------------------------

ARUT_SESSION = (
    "app=live&flashver=FMLE&swfurl=&tcurl=rtmp://h/live&pageurl=&addr=10.0.0.7&clientid=8"
)
FORGED = {"call": "play", "name": "evil", "app": "x", "addr": "6.6.6.6", "clientid": "99"}
# call, per-call fields (upstream order), action
CALLS = [
    ("publish", "name=cam1&type=live", "publish"),
    ("play", "name=cam1&start=0&duration=0&reset=0", "play"),
    ("update_publish", "time=4&timestamp=3983&name=cam1", "update"),
    ("publish_done", "name=cam1", "publish_done"),
    ("done", "name=cam1", "done"),
    ("record_done", "recorder=&name=cam1&path=/r/cam1.flv", "record_done"),
]


def _spoofed_bodies(call: str, fields: str, key: str, value: str) -> dict[str, bytes]:
    forged = f"{key}={value}"
    return {
        # forged first among the args: right where upstream's optional fields would stand
        "": f"{ARUT_SESSION}&call={call}&{fields}&{forged}&k=1".encode(),
        "fork": f"k=1&{forged}&call={call}&{fields}&app=live&addr=10.0.0.7&clientid=8".encode(),
    }


@pytest.mark.parametrize("route", ["", "fork"])
@pytest.mark.parametrize(("call", "fields", "action"), CALLS)
@pytest.mark.parametrize("key", sorted(FORGED))
def test_a_forged_reserved_key_changes_nothing(
    route: str, call: str, fields: str, action: str, key: str
) -> None:
    honest = parse(_spoofed_bodies(call, fields, "k2", "v")[route], route)
    event = parse(_spoofed_bodies(call, fields, key, FORGED[key])[route], route)
    assert (event.action, event.app, event.stream) == (action, "live", "cam1")
    assert (event.client_ip, event.session_id) == ("10.0.0.7", "8")
    assert (event.action, event.app, event.stream, event.client_ip, event.session_id) == (
        honest.action,
        honest.app,
        honest.stream,
        honest.client_ip,
        honest.session_id,
    )
    assert event.raw["spoofed"] == [key]
    assert honest.raw["spoofed"] == []
    assert event.params[key] == FORGED[key]  # still visible, as the client's own arg


@pytest.mark.parametrize("route", ["", "fork"])
def test_forged_connect_args_change_nothing(route: str) -> None:
    forged = "&".join(f"{key}={value}" for key, value in FORGED.items())
    body = {
        "": f"{ARUT_SESSION.replace('clientid=8', 'epoch=5')}&call=connect&{forged}",
        "fork": f"{forged}&call=connect&app=live&flashver=&epoch=5&&addr=10.0.0.7&clientid=8",
    }[route]
    event = parse(body.encode(), route)
    assert (event.action, event.app, event.client_ip) == ("connect", "live", "10.0.0.7")
    assert event.raw["spoofed"] == sorted(FORGED)


def test_args_named_like_raw_metadata_are_overwritten_and_reported() -> None:
    body = f"{ARUT_SESSION}&call=publish&name=cam1&type=live&ordering=fork&spoofed=&fields=x"
    event = parse(body.encode())
    assert event.raw["ordering"] == "arut"
    assert event.raw["spoofed"] == ["fields", "ordering", "spoofed"]
    assert event.raw["fields"]["name"] == "cam1"
    assert event.params["ordering"] == "fork"


# --- absent values, duplicates, garbage ---------------------------------------------------------


def test_empty_nil_and_space_values_are_absent() -> None:
    body = (
        "app=live&flashver=nil&swfurl=+&tcurl=&pageurl=&addr=%20&clientid=nil"
        "&call=publish&name=cam1&type=live&a=&b=nil&c=+&d=%20&e=ok&flag"
    )
    event = parse(body.encode())
    assert (event.client_ip, event.session_id) == ("", "")
    assert dict(event.params) == {"e": "ok"}
    assert event.raw["b"] == "nil"  # raw keeps what was sent
    assert event.raw["flag"] == ""


def test_nil_app_is_absent() -> None:
    body = f"{ARUT_SESSION}&call=publish&name=cam1&type=live".replace("app=live", "app=nil")
    assert parse(body.encode()).app == ""


def test_repeated_client_arg_first_value_in_params_all_in_raw() -> None:
    body = f"{ARUT_SESSION}&call=publish&name=cam1&type=live&key=a&key=b&key=c"
    event = parse(body.encode())
    assert event.params["key"] == "a"
    assert event.raw["key"] == ["a", "b", "c"]


def test_invalid_utf8_in_the_stream_name_is_refused() -> None:
    body = f"{ARUT_SESSION}&call=publish&name=cam%FF&type=live".encode()
    with pytest.raises(MalformedRequest, match="UTF-8") as caught:
        parse(body)
    assert caught.value.action == "publish"


def test_invalid_utf8_in_args_is_replaced() -> None:
    body = f"{ARUT_SESSION}&call=publish&name=cam1&type=live&k=%FFx".encode() + b"&r=\xfe"
    event = parse(body)
    assert event.params == {"k": "\ufffdx", "r": "\ufffd"}


def test_content_type_does_not_matter() -> None:
    body = fixture("recorded/post/publish.body")
    for content_type in ("text/plain", "application/json", None):
        assert parse(body, content_type=content_type).stream == "cam1"


def test_empty_request_is_malformed() -> None:
    with pytest.raises(MalformedRequest, match="no call"):
        parse(b"")


def test_unknown_route_is_malformed() -> None:
    with pytest.raises(MalformedRequest, match="route"):
        parse(fixture("recorded/post/publish.body"), route="nope")


# --- GET and the node --------------------------------------------------------------------------

GET_CALLS = {
    "connect": "connect",
    "publish": "publish",
    "update_publish": "update",
    "publish_done": "publish_done",
    "done": "done",
    "disconnect": "disconnect",
}


@pytest.mark.parametrize(("name", "action"), sorted(GET_CALLS.items()))
def test_recorded_get_request(name: str, action: str) -> None:
    target = fixture(f"recorded/get/{name}.target").decode("latin-1")
    event = parse(b"", method="GET", target=target, content_type=FORM_TYPE, content_length="0")
    assert (event.action, event.app, event.client_ip) == (action, "live", "127.0.0.1")
    assert event.node == "edge1"  # from the hook URL's own query, ahead of the second "?"
    assert event.raw["method"] == "GET"
    assert "node" not in event.raw
    if action not in ("connect", "disconnect"):
        assert event.stream == "cam2"
        assert dict(event.params) == SPOOF
        assert event.raw["spoofed"] == ["addr", "app", "call", "clientid", "name"]


FORM_TYPE = "application/x-www-form-urlencoded"


def test_get_without_operator_query_uses_the_peer_as_node() -> None:
    target = fixture("recorded/get/publish.target").decode().replace("?node=edge1", "")
    event = parse(b"", method="GET", target=target, client=("192.0.2.9", 5555))
    assert (event.stream, event.node) == ("cam2", "192.0.2.9")


def test_fork_get_with_and_without_node() -> None:
    body = fixture("fork/publish.body").decode()
    event = parse(b"", "fork", method="GET", target=f"/hooks/nginx_rtmp/fork?node=e7?{body}")
    assert (event.node, event.stream, event.params["key"]) == ("e7", "cam1", "k1")
    event = parse(b"", "fork", method="GET", target=f"/hooks/nginx_rtmp/fork?{body}")
    assert (event.node, event.stream) == ("10.1.2.3", "cam1")


def test_post_node_comes_from_the_hook_url() -> None:
    body = fixture("recorded/post/publish.body")
    assert parse(body, target="/hooks/nginx_rtmp?node=edge1").node == "edge1"
    assert parse(body, target="/hooks/nginx_rtmp?x=1&node=e%202").node == "e 2"
    assert parse(body, target="/hooks/nginx_rtmp?node=nil").node == "10.1.2.3"
    assert parse(body, target="/hooks/nginx_rtmp?node=").node == "10.1.2.3"
    assert parse(body, client=None).node == ""
    # a client's node= arg in the body never names the node
    forged = body + b"&node=evil"
    assert parse(forged).node == "10.1.2.3"


# --- hostile input never raises anything but MalformedRequest -----------------------------------

_ALPHABET = st.sampled_from(
    [b"&", b"=", b"%", b"%2", b"%FF", b"+", b"?", b"\xff", b"\x00", b" ", b"nil", b"a", b"1"]
    + [f"{key}=".encode() for key in ("call", "name", "app", "addr", "clientid", "node")]
    + [f"call={call}&".encode() for call in ("publish", "play", "update", "done", "connect")]
    + [ARUT_SESSION.encode() + b"&", b"addr=1.2.3.4&clientid=1&"]
)


def _parse_or_refuse(body: bytes, route: str, method: str) -> Event | None:
    request = make_request(
        body if method == "POST" else b"",
        method=method,
        target="/hooks/nginx_rtmp?" + body.decode("latin-1") if method == "GET" else "/h",
    )
    try:
        return asyncio.run(NginxRtmp().parse(request, route))
    except MalformedRequest as error:
        assert error.reason
        return None


@settings(max_examples=300, deadline=None)
@given(
    body=st.one_of(st.binary(max_size=300), st.lists(_ALPHABET, max_size=25).map(b"".join)),
    route=st.sampled_from(["", "fork"]),
    method=st.sampled_from(["POST", "GET"]),
)
def test_garbage_parses_or_is_refused(body: bytes, route: str, method: str) -> None:
    event = _parse_or_refuse(body, route, method)
    if event is not None:
        assert event.action in ACTIONS
        assert isinstance(event.raw["spoofed"], list)
        if event.action in ("publish", "play"):
            assert event.stream
