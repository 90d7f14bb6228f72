"""Error messages, pinned by golden files: ``golden/NAME.policy`` must report ``NAME.expected``.

Regenerate after a deliberate change with ``CASTGATE_UPDATE_GOLDEN=1 pytest tests/lang``, then
read the diff: these messages are the interface a new user meets first.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from castgate import PolicyFunction, Vendor
from castgate.lang import compile_sources
from castgate.lang.errors import PolicyError

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("policy", sorted(GOLDEN.glob("*.policy")), ids=lambda p: p.stem)
def test_error_report_matches_golden(
    policy: Path, vendors: dict[str, Vendor], functions: dict[str, PolicyFunction]
) -> None:
    with pytest.raises(PolicyError) as raised:
        compile_sources(
            [(policy.name, policy.read_text(encoding="utf-8"), GOLDEN)],
            vendors=vendors,
            functions=functions,
            env={},
        )
    report = raised.value.report() + "\n"
    expected = policy.with_suffix(".expected")
    if os.environ.get("CASTGATE_UPDATE_GOLDEN"):
        expected.write_text(report, encoding="utf-8")
    assert report == expected.read_text(encoding="utf-8")


def test_errors_are_sorted_by_position(
    vendors: dict[str, Vendor], functions: dict[str, PolicyFunction]
) -> None:
    source = (GOLDEN / "names.policy").read_text(encoding="utf-8")
    with pytest.raises(PolicyError) as raised:
        compile_sources(
            [("names.policy", source, GOLDEN)], vendors=vendors, functions=functions, env={}
        )
    positions = [(d.line, d.column) for d in raised.value.diagnostics]
    assert positions == sorted(positions)
    assert len(positions) >= 7


def test_secret_values_never_appear_in_reports(
    vendors: dict[str, Vendor], functions: dict[str, PolicyFunction]
) -> None:
    source = 'let key = env("SIGNING")\nrule r { on play  allow if params.sig == key }\n'
    with pytest.raises(PolicyError) as raised:
        compile_sources(
            [("s.policy", source, GOLDEN)],
            vendors=vendors,
            functions=functions,
            env={"SIGNING": "hunter2-very-secret"},
        )
    assert "E308" in raised.value.report()
    assert "hunter2" not in raised.value.report()


def _report(source: str) -> str:
    with pytest.raises(PolicyError) as raised:
        compile_sources([("c.policy", source, GOLDEN)], vendors={}, functions={}, env={})
    return raised.value.report()


def test_a_control_character_in_a_string_is_named_and_shown_under_a_caret() -> None:
    # The snippet shows a tab as one space and another control character as its picture, so the
    # caret stays under it and nothing raw reaches the terminal.
    assert _report('let x = "a\x01b"\nlet y =\t"c\td"\n') == (
        "c.policy:1:11: E103: control character U+0001 in a string: write \\u0001\n"
        '   1 | let x = "a\u2401b"\n'
        "     |           ^\n"
        "\n"
        "c.policy:2:11: E103: control character U+0009 in a string: write \\t\n"
        '   2 | let y = "c d"\n'
        "     |           ^\n"
        "\n"
        "2 errors in policy"
    )


def test_a_lone_surrogate_is_reported_in_printable_text() -> None:
    report = _report('let x = "\\ud800"\r\nlet y = "\ud800"\r\n')
    assert report == (
        "c.policy:1:10: E103: lone surrogate `\\ud800` in a string: it is half of a pair and no "
        "character\n"
        '   1 | let x = "\\ud800"\n'
        "     |          ^^^^^^\n"
        "     = a character past U+FFFF is written as itself or as a pair of escapes, like "
        "`\\ud83d\\ude00`\n"
        "\n"
        "c.policy:2:10: E103: lone surrogate `U+D800` in a string: it is half of a pair and no "
        "character\n"
        '   2 | let y = "\ufffd"\n'
        "     |          ^\n"
        "     = a character past U+FFFF is written as itself or as a pair of escapes, like "
        "`\\ud83d\\ude00`\n"
        "\n"
        "2 errors in policy"
    )
    report.encode("utf-8")


def test_a_number_too_large_is_reported_with_the_limit_and_a_window_of_its_line() -> None:
    digits = "9" * 310
    # The line was printed whole: 5,000 digits made a 5,000-column snippet and caret row.
    assert _report(f"rule r {{ allow if client.port < {digits} }}\n") == (
        "c.policy:1:33: E309: integer literal too long: 310 digits\n"
        f"   1 | rule r {{ allow if client.port < {digits[:88]}…\n"
        f"     |                                 {'^' * 88}\n"
        "     = a number, or a duration in seconds, is at most about 1.8e308 (309 digits)\n"
        "\n"
        "1 error in policy"
    )


def test_a_spot_far_along_a_long_line_is_shown_with_what_comes_before_it() -> None:
    name = "x" * 300
    report = _report(f'rule r {{ allow if stream.name == "{name}" and zz == 1 }}\n')
    head, line, caret = report.splitlines()[:3]
    assert head == "c.policy:1:341: E201: unknown name `zz`"
    assert line == f'   1 | …{"x" * 105}" and zz == 1 }}'
    assert caret == "     | " + " " * 112 + "^^"
    assert caret.index("^") == line.index("zz")


def test_a_control_character_quoted_in_a_message_shows_as_its_picture() -> None:
    # The zone name reached the terminal raw: a NUL (or an escape sequence) in the message.
    report = _report('let w = weekdays mon "Eu\\u0000\\u001b[2J"\nrule r { allow if now in w }\n')
    assert report.splitlines()[0] == "c.policy:1:22: E306: unknown time zone `Eu␀␛[2J`"


def test_an_unprintable_character_outside_a_string_is_named_by_its_code() -> None:
    report = _report("let x = 1 \x1b[2J\nlet y = 2\u00a0\n")
    assert report.startswith("c.policy:1:11: E101: unexpected character U+001B; expected "), report
    assert "   1 | let x = 1 \u241b[2J\n     |           ^\n" in report
    assert "c.policy:2:10: E101: unexpected character U+00A0; expected " in report
    assert "\x1b" not in report
