"""Which pairs nginx-rtmp wrote and which the client wrote, in both field orders."""

from __future__ import annotations

import pytest

from castgate import MalformedRequest
from castgate_nginx_rtmp.form import split_pairs
from castgate_nginx_rtmp.layout import RESERVED, split_arut, split_fork, split_query

from .support import fixture

SESSION = "app=live&flashver=FMLE&swfurl=&tcurl=rtmp://h/live&pageurl=&addr=127.0.0.1&clientid=4"


def test_arut_reads_the_recorded_publish_by_position() -> None:
    split = split_arut(split_pairs(fixture("recorded/post/publish.body")))
    assert split.ordering == "arut"
    assert split.call == "publish"
    assert split.fields["name"] == "cam1"
    assert split.fields["addr"] == "127.0.0.1"
    assert split.fields["type"] == "live"
    assert split.args == [
        ("key", "k1"),
        ("addr", "6.6.6.6"),
        ("call", "play"),
        ("name", "evil"),
        ("app", "x"),
        ("clientid", "99"),
    ]
    assert split.spoofed == ["addr", "app", "call", "clientid", "name"]
    assert len(split.pairs) == 7 + 3 + 6


def test_arut_disconnect_keeps_the_session_app_and_takes_connect_args() -> None:
    split = split_arut(split_pairs(fixture("recorded/post/disconnect_args.body")))
    assert split.fields["app"] == "live"
    assert split.args == [("ck", "c1"), ("addr", "6.6.6.6"), ("call", "publish")]


def test_arut_connect_has_epoch_instead_of_clientid() -> None:
    split = split_arut(split_pairs(fixture("recorded/post/connect_args.body")))
    assert split.call == "connect"
    assert "clientid" not in split.fields
    assert split.fields["epoch"].isdigit()
    assert split.args == [("ck", "c1"), ("addr", "6.6.6.6"), ("call", "publish")]


def test_arut_optional_name_may_be_absent() -> None:
    split = split_arut(split_pairs(f"{SESSION}&call=done&k=v".encode()))
    assert "name" not in split.fields
    assert split.args == [("k", "v")]


def test_arut_refuses_a_fork_body_and_names_the_fork_route() -> None:
    with pytest.raises(MalformedRequest, match="/hooks/nginx_rtmp/fork") as caught:
        split_arut(split_pairs(fixture("bintu/publish.body")))
    assert caught.value.action == "publish"


def test_arut_refuses_a_missing_required_field() -> None:
    with pytest.raises(MalformedRequest, match="lack 'type'") as caught:
        split_arut(split_pairs(f"{SESSION}&call=publish&name=cam1&key=k".encode()))
    assert caught.value.action == "publish"


@pytest.mark.parametrize("split", [split_arut, split_fork])
def test_no_call_is_malformed(split: object) -> None:
    with pytest.raises(MalformedRequest, match="no call") as caught:
        split(split_pairs(SESSION.encode()))  # type: ignore[operator]
    assert caught.value.action == ""


def test_unknown_call_is_malformed_without_an_action() -> None:
    with pytest.raises(MalformedRequest, match="unknown call") as caught:
        split_arut(split_pairs(f"{SESSION}&call=bogus".encode()))
    assert caught.value.action == ""
    with pytest.raises(MalformedRequest, match="unknown call"):
        split_fork(split_pairs(b"call=bogus&addr=1.2.3.4&clientid=1"))


def test_fork_takes_the_last_call_and_everything_after_it() -> None:
    split = split_fork(split_pairs(fixture("fork/publish.body")))
    assert split.ordering == "fork"
    assert split.call == "publish"
    assert split.fields["name"] == "cam1"
    assert split.fields["addr"] == "127.0.0.1"
    assert split.fields["clientid"] == "4"
    assert split.args[0] == ("key", "k1")
    assert split.spoofed == ["addr", "app", "call", "clientid", "name"]


def test_fork_refuses_an_upstream_body_and_names_the_upstream_route() -> None:
    with pytest.raises(MalformedRequest, match=r"use /hooks/nginx_rtmp$") as caught:
        split_fork(split_pairs(fixture("recorded/post/publish.body")))
    assert caught.value.action == "play"  # the client's forged call is the last one there


def test_fork_is_not_fooled_by_a_forged_upstream_prefix() -> None:
    forged = f"{SESSION.replace('127.0.0.1', '6.6.6.6')}&call=play&name=evil"
    body = f"{forged}&call=publish&name=cam1&type=live&app=live&addr=10.0.0.7&clientid=8"
    split = split_fork(split_pairs(body.encode()))
    assert (split.call, split.fields["name"], split.fields["addr"]) == (
        "publish",
        "cam1",
        "10.0.0.7",
    )
    assert split.fields["clientid"] == "8"


def test_reserved_keys_are_the_identity_fields() -> None:
    assert {"call", "name", "app", "addr", "clientid"} == RESERVED


@pytest.mark.parametrize(
    ("route", "query", "params", "operator"),
    [
        ("", "app=live&call=publish", "app=live&call=publish", ""),
        ("", "node=edge1?app=live&call=publish&k=a?b", "app=live&call=publish&k=a?b", "node=edge1"),
        # client args in upstream order come last, so their "?" never looks like the operator's
        ("", "app=live&call=publish&k=a?b", "app=live&call=publish&k=a?b", ""),
        ("", "node=edge1", "node=edge1", ""),
        ("fork", "k=a?b&call=publish", "k=a?b&call=publish", ""),
        ("fork", "node=e1?k=a?b&call=publish", "k=a?b&call=publish", "node=e1"),
        ("fork", "node=e1&node=e2?call=play", "call=play", "node=e1&node=e2"),
        ("fork", "call=play&addr=1", "call=play&addr=1", ""),
    ],
)
def test_split_query_separates_the_operator_query(
    route: str, query: str, params: str, operator: str
) -> None:
    assert split_query(query.encode(), route) == (params.encode(), operator.encode())
