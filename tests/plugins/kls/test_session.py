"""The session id built where KLS sends no Sequence, and the domain read from a push URL."""

from __future__ import annotations

import pytest

from castgate_kls.session import domain_name, push_key, tcurl_domain


def test_push_key() -> None:
    assert push_key("push.example.com", "live", "cam1", "") == "push.example.com/live/cam1"
    assert push_key("push.example.com", "live", "cam1", "7781") == "push.example.com/live/cam1/7781"


def test_no_stream_name_no_key() -> None:
    assert push_key("push.example.com", "live", "", "7781") == ""


def test_parts_cannot_run_into_each_other() -> None:
    keys = {
        push_key("d", "a/b", "c", ""),
        push_key("d", "a", "b/c", ""),
        push_key("d", "a", "b", "c"),
        push_key("d", "a", "b%2Fc", ""),
        push_key("d/a", "b", "c", ""),
    }
    assert len(keys) == 5
    assert push_key("d", "a", "50%/x", "") == "d/a/50%25%2Fx"


@pytest.mark.parametrize(
    ("tcurl", "domain"),
    [
        ("rtmp://test.uplive.ks-cdn.com/live", "test.uplive.ks-cdn.com"),
        ("rtmp://Push.Example.COM:1935/live", "push.example.com"),
        ("rtmp://push.example.com./live?vhost=x", "push.example.com"),
        ("rtmp://user:pw@push.example.com:1935/live", "push.example.com"),
        ("rtmp://push.example.com", "push.example.com"),
        ("rtmp://push.example.com?x=1", "push.example.com"),
        ("RTMPS://push.example.com/live", "push.example.com"),
        ("rtmp://198.51.100.7:1935/live", "198.51.100.7"),
        ("rtmp://[2001:DB8::7]:1935/live", "2001:db8::7"),
        ("rtmp://[2001:db8::7/live", "2001:db8::7"),  # an unclosed bracket
        ("push.example.com/live", ""),
        ("", ""),
        ("rtmp:///live", ""),
    ],
)
def test_tcurl_domain(tcurl: str, domain: str) -> None:
    assert tcurl_domain(tcurl) == domain


def test_domain_name() -> None:
    assert domain_name(" Push.Example.COM. ") == "push.example.com"
