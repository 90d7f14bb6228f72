"""Policy tests: YAML cases beside the policies, each an event in and the expected decision out.

A test file ``NAME.test.yaml`` tests the policies in its own directory, or inline policy text
given under ``policy:`` (how the language's own semantics are pinned). Format::

    env: {SIGNING_SECRET: test-secret}      # the only environment env() sees: tests are hermetic
    files: {keys.txt: "k1\\nk2\\n"}           # inline data files (only with `policy:`)
    defaults: {vendor: nginx_rtmp, app: live, time: "2026-11-23T10:00:00+01:00"}
    cases:
      - name: a known key publishes
        event: {action: publish, stream: cam1, params: {key: k1}}
        state: {"publisher:stream:cam1": 0}  # live session counts, role:scope:key
        rates: {"deny:192.0.2.1": 3}           # recent denials per key
        returning: false                        # what sessions.returning(...) answers
        expect: {effect: allow, rule: keyed_ingest, response: {rename: public1}}

``expect`` compares only the keys it names; ``response`` must match exactly when given.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from castgate.events import Event
from castgate.lang import compile_policies, compile_sources
from castgate.lang.errors import PolicyError
from castgate.lang.functions import PolicyFunction
from castgate.lang.policyset import PolicySet
from castgate.state import FixedState
from castgate.vendor import Vendor

TEST_SUFFIX = ".test.yaml"
_EXPECTABLE = ("effect", "rule", "reason", "response", "failed", "flagged")


@dataclass(frozen=True, slots=True)
class CaseResult:
    file: str
    name: str
    passed: bool
    #: Why it failed: a diff of expected and actual decision, or the error that stopped it.
    detail: str = ""


class CaseFileError(Exception):
    """A test file that cannot be used; the message names the file and the problem."""


def find_test_files(paths: Sequence[Path]) -> list[Path]:
    """``*.test.yaml`` files: those given, and those in given directories (recursively)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(path.rglob(f"*{TEST_SUFFIX}")))
        elif path.name.endswith(TEST_SUFFIX):
            found.append(path)
        elif path.suffix == ".policy":
            found.extend(sorted(path.parent.glob(f"*{TEST_SUFFIX}")))
    return sorted(set(found), key=found.index)


def run_test_file(
    path: Path, *, vendors: Mapping[str, Vendor], functions: Mapping[str, PolicyFunction]
) -> list[CaseResult]:
    """Run every case in one test file; a file that cannot run yields one failed result."""
    try:
        spec = _load(path)
        policy = _compile(path, spec, vendors, functions)
        cases = spec.get("cases")
        if not isinstance(cases, list) or not cases:
            raise CaseFileError("`cases` must be a non-empty list")
        defaults = spec.get("defaults") or {}
        if not isinstance(defaults, dict):
            raise CaseFileError("`defaults` must be a mapping")
    except CaseFileError as err:
        return [CaseResult(str(path), "(file)", False, str(err))]
    except PolicyError as err:
        return [CaseResult(str(path), "(policy)", False, err.report())]
    return [_run_case(str(path), i, case, defaults, policy) for i, case in enumerate(cases, 1)]


def _load(path: Path) -> dict[str, Any]:
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise CaseFileError(f"cannot read: {err}") from None
    except yaml.YAMLError as err:
        raise CaseFileError(f"not valid YAML: {err}") from None
    if not isinstance(spec, dict):
        raise CaseFileError("a test file is a mapping with `cases`")
    unknown = set(spec) - {"env", "files", "defaults", "cases", "policy"}
    if unknown:
        raise CaseFileError(f"unknown key(s): {', '.join(sorted(unknown))}")
    return spec


def _compile(
    path: Path,
    spec: Mapping[str, Any],
    vendors: Mapping[str, Vendor],
    functions: Mapping[str, PolicyFunction],
) -> PolicySet:
    env = {str(k): str(v) for k, v in (spec.get("env") or {}).items()}
    inline = spec.get("policy")
    if inline is None:
        if spec.get("files"):
            raise CaseFileError("`files` can only be used with an inline `policy`")
        return compile_policies([path.parent], vendors=vendors, functions=functions, env=env)
    if not isinstance(inline, str):
        raise CaseFileError("`policy` must be policy text")
    with tempfile.TemporaryDirectory(prefix="castgate-test-") as scratch:
        directory = Path(scratch)
        for name, content in (spec.get("files") or {}).items():
            (directory / str(name)).write_text(str(content), encoding="utf-8")
        return compile_sources(
            [(f"{path}#policy", inline, directory)], vendors=vendors, functions=functions, env=env
        )


def _run_case(
    file: str, number: int, case: Any, defaults: Mapping[str, Any], policy: PolicySet
) -> CaseResult:
    if not isinstance(case, dict):
        return CaseResult(file, f"case {number}", False, "a case is a mapping")
    name = str(case.get("name") or f"case {number}")
    expect = case.get("expect")
    if not isinstance(expect, dict) or not expect:
        return CaseResult(
            file, name, False, "`expect` must name at least one of " + ", ".join(_EXPECTABLE)
        )
    unknown = set(expect) - set(_EXPECTABLE)
    if unknown:
        return CaseResult(file, name, False, f"unknown expect key(s): {', '.join(sorted(unknown))}")
    try:
        event = Event.from_dict(_plain({**defaults, **(case.get("event") or {})}))
        state = FixedState(
            case.get("state") or {},
            case.get("rates") or {},
            returning=bool(case.get("returning", False)),
        )
    except (ValueError, TypeError, AttributeError) as err:
        return CaseResult(file, name, False, f"bad event: {err}")
    actual = policy.decide(event, state).to_dict()
    got = {key: actual.get(key, False) for key in expect}
    wanted = {key: _plain(value) for key, value in expect.items()}
    if got == wanted:
        return CaseResult(file, name, True)
    return CaseResult(file, name, False, _diff(wanted, got))


def _plain(value: Any) -> Any:
    """YAML reads unquoted timestamps as datetimes; events want ISO text."""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _diff(wanted: Mapping[str, Any], got: Mapping[str, Any]) -> str:
    expected = json.dumps(wanted, indent=2, sort_keys=True, default=str).splitlines()
    actual = json.dumps(got, indent=2, sort_keys=True, default=str).splitlines()
    return "\n".join(difflib.unified_diff(expected, actual, "expected", "actual", lineterm=""))
