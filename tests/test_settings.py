from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from castgate.settings import DEFAULT_PORT, Settings, SettingsError


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_defaults_serve_the_shipped_policy_on_loopback() -> None:
    settings = Settings.from_env({})
    assert settings.policies[0].parts[-2:] in (
        ("castgate", "default_policy"),
        ("policies", "default"),
    )
    assert (settings.policies[0] / "default.policy").is_file()
    assert (settings.host, settings.port, settings.workers) == ("127.0.0.1", DEFAULT_PORT, 1)
    assert (settings.log_level, settings.explain, settings.disabled_plugins) == (
        "info",
        False,
        frozenset(),
    )


def test_the_log_format_defaults_to_text_at_a_terminal_and_json_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("sys.stderr", Terminal())
    assert Settings().log_format == "text"
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert Settings().log_format == "json"


def test_every_setting_is_read_from_its_variable() -> None:
    settings = Settings.from_env(
        {
            "CASTGATE_POLICIES": os.pathsep.join(["/etc/castgate/a.policy", "/etc/castgate/more"]),
            "CASTGATE_HOST": "::",
            "CASTGATE_PORT": "9000",
            "CASTGATE_WORKERS": "4",
            "CASTGATE_DISABLE_PLUGINS": "nginx_rtmp, acme ,",
            "CASTGATE_LOG_LEVEL": "DEBUG",
            "CASTGATE_LOG_FORMAT": "Text",
            "CASTGATE_EXPLAIN": "yes",
            "UNRELATED": "ignored",
        }
    )
    assert settings == Settings(
        policies=(Path("/etc/castgate/a.policy"), Path("/etc/castgate/more")),
        host="::",
        port=9000,
        workers=4,
        disabled_plugins=frozenset({"nginx_rtmp", "acme"}),
        log_level="debug",
        log_format="text",
        explain=True,
    )


def test_settings_written_to_the_environment_read_back_equal() -> None:
    settings = Settings(
        policies=(Path("a.policy"), Path("dir")),
        port=9001,
        disabled_plugins=frozenset({"b", "a"}),
        log_format="text",
        explain=True,
    )
    assert Settings.from_env(settings.to_env()) == settings
    assert settings.to_env()["CASTGATE_DISABLE_PLUGINS"] == "a,b"


def test_production_settings_are_read_and_written_back_equal() -> None:
    env = {
        "CASTGATE_DECISION_LOG": "/var/log/castgate/decisions.log",
        "CASTGATE_DECISION_LOG_FLUSH": "0",
        "CASTGATE_DECISION_LOG_FSYNC": "on",
        "CASTGATE_DECISION_LOG_MAX_BYTES": "64m",
        "CASTGATE_DECISION_LOG_KEEP": "3",
        "CASTGATE_DECISION_LOG_REDACT": "stream, raw.url",
        "CASTGATE_LOG_DECISIONS": "debug",
        "CASTGATE_MAX_BODY": "512k",
        "CASTGATE_HOOK_SECRET": "0123456789abcdef-secret",
        "CASTGATE_HOOK_NETWORKS": "10.0.0.0/8, 2001:db8::/32,192.0.2.7",
        "CASTGATE_TRUSTED_PROXIES": "127.0.0.1",
        "CASTGATE_HOOK_RATE": "600/m",
        "CASTGATE_SIGNING_KEYS": "ome=OME_SECRET",
        "CASTGATE_STATE_DEADLINE": "100ms",
        "CASTGATE_FAIL_OPEN": "nginx_rtmp:play,*:update",
    }
    settings = Settings.from_env(env)
    assert settings.decision_log == Path("/var/log/castgate/decisions.log")
    assert (settings.decision_log_flush, settings.decision_log_fsync) == (0.0, True)
    assert settings.decision_log_max_bytes == 64 * 1024 * 1024
    assert settings.decision_log_keep == 3
    assert settings.decision_log_redact == {"stream", "raw.url"}
    assert settings.max_body == 512 * 1024
    assert [str(network) for network in settings.hook_networks] == [
        "10.0.0.0/8",
        "2001:db8::/32",
        "192.0.2.7/32",
    ]
    assert settings.hook_rate == 10.0
    assert settings.signing_keys == {"ome": "OME_SECRET"}
    assert settings.state_deadline == 0.1
    assert settings.fails_open("nginx_rtmp", "play") and settings.fails_open("kls", "update")
    assert not settings.fails_open("nginx_rtmp", "publish")
    assert Settings.from_env(settings.to_env()) == settings


def test_the_hook_secret_never_shows_in_a_repr() -> None:
    settings = Settings.from_env({"CASTGATE_HOOK_SECRET": "0123456789abcdef-secret"})
    assert settings.hook_secret is not None
    assert settings.hook_secret.reveal() == "0123456789abcdef-secret"
    assert "0123456789abcdef" not in repr(settings)


def test_an_empty_plugin_list_disables_nothing() -> None:
    assert Settings.from_env({"CASTGATE_DISABLE_PLUGINS": ""}).disabled_plugins == frozenset()


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "CASTGATE_PORT",
            "http",
            "CASTGATE_PORT: expected a whole number from 1 to 65535, got 'http'",
        ),
        ("CASTGATE_PORT", "70000", "CASTGATE_PORT: expected a whole number from 1 to 65535"),
        (
            "CASTGATE_WORKERS",
            "0",
            "CASTGATE_WORKERS: expected a whole number from 1 to 512, got '0'",
        ),
        ("CASTGATE_HOST", " ", "CASTGATE_HOST: expected an address to listen on"),
        ("CASTGATE_POLICIES", os.pathsep, "CASTGATE_POLICIES: expected one or more policy files"),
        ("CASTGATE_LOG_LEVEL", "loud", "CASTGATE_LOG_LEVEL: expected one of debug, info, warning"),
        (
            "CASTGATE_LOG_FORMAT",
            "xml",
            "CASTGATE_LOG_FORMAT: expected one of json, text, got 'xml'",
        ),
        ("CASTGATE_EXPLAIN", "maybe", "CASTGATE_EXPLAIN: expected true or false"),
        ("CASTGATE_MAX_BODY", "1 MB", "CASTGATE_MAX_BODY: expected a size such as 1048576"),
        ("CASTGATE_HOOK_RATE", "fast", "CASTGATE_HOOK_RATE: expected a rate such as 50/s"),
        ("CASTGATE_HOOK_NETWORKS", "10.0.0.0/33", "CASTGATE_HOOK_NETWORKS: expected addresses"),
        ("CASTGATE_TRUSTED_PROXIES", "proxy.local", "CASTGATE_TRUSTED_PROXIES: expected"),
        ("CASTGATE_HOOK_SECRET", "short", "CASTGATE_HOOK_SECRET: expected a secret of at least"),
        ("CASTGATE_HOOK_SECRET", "a/secret/with/slashes", "CASTGATE_HOOK_SECRET: expected print"),
        ("CASTGATE_SIGNING_KEYS", "ome", "CASTGATE_SIGNING_KEYS: expected vendor=VARIABLE"),
        ("CASTGATE_FAIL_OPEN", "nginx_rtmp", "CASTGATE_FAIL_OPEN: expected vendor:action"),
        ("CASTGATE_LOG_DECISIONS", "warning", "CASTGATE_LOG_DECISIONS: expected one of info"),
        ("CASTGATE_DECISION_LOG_FLUSH", "-1s", "CASTGATE_DECISION_LOG_FLUSH: expected a dur"),
        ("CASTGATE_DECISION_LOG_KEEP", "0", "CASTGATE_DECISION_LOG_KEEP: expected a whole"),
        ("CASTGATE_STATE_DEADLINE", "0", "CASTGATE_STATE_DEADLINE: expected a duration above"),
    ],
)
def test_an_invalid_value_is_an_error_naming_the_variable(
    variable: str, value: str, message: str
) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({variable: value})
    assert str(raised.value).startswith(message)
