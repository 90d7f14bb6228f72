"""docs/policy-language.md keeps its promises: every example in it compiles.

Fenced blocks tagged ``policy`` must compile; blocks tagged ``policy-error`` must fail with exactly
the codes named on their first line (``# error: E204``). Outputs shown in the document (the
``castgate check`` report, the formatter's canonical form, an explained decision), the policy
test example and the link-signing recipes are reproduced against the implementation too.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.requests import Request
from starlette.responses import Response

from castgate import Decision, Event, MalformedRequest, ResponseField, Vendor
from castgate.lang import compile_sources
from castgate.lang.builtins import BUILTINS
from castgate.lang.errors import Code, PolicyError
from castgate.lang.testing import run_test_file
from castgate.lang.tokens import link_signature, secure_link
from castgate.lang.values import Secret
from castgate.state import FixedState

DOC = Path(__file__).resolve().parents[2] / "docs" / "policy-language.md"
TEXT = DOC.read_text(encoding="utf-8")


# The vendors the examples are written for ------------------------------------------------------


class _DocVendor(Vendor):
    """Renders nothing real: the examples are only compiled and decided, never served."""

    async def parse(self, request: Request, route: str) -> Event:
        raise MalformedRequest(f"{self.name} is a documentation stand-in")

    def render(self, decision: Decision, event: Event) -> Response:
        return Response(status_code=200 if decision.allowed else 403)

    def render_malformed(self, error: MalformedRequest, route: str) -> Response:
        return Response(error.reason, status_code=400)


class NginxRtmp(_DocVendor):
    name = "nginx_rtmp"
    actions = frozenset(
        {
            "connect",
            "publish",
            "play",
            "update",
            "publish_done",
            "play_done",
            "done",
            "record_done",
            "disconnect",
            "notify",
        }
    )
    response_fields: ClassVar[Mapping[str, ResponseField]] = {
        "rename": ResponseField("string", "publish/play under this stream name instead"),
    }

    def validate_response(self, data: Mapping[str, Any]) -> list[str]:
        rename = data.get("rename")
        if rename is None:
            return []
        if not isinstance(rename, str) or not rename:
            return ["rename must be a non-empty string"]
        if any(char.isspace() or not char.isprintable() for char in rename):
            return ["rename must not contain whitespace or control characters"]
        if "?" in rename:
            return ["rename must not contain '?'"]
        return []


class Livepeer(_DocVendor):
    name = "livepeer"
    actions = frozenset({"publish", "discover"})
    response_fields: ClassVar[Mapping[str, ResponseField]] = {
        "manifestID": ResponseField("string"),
        "streamKey": ResponseField("string"),
        "presets": ResponseField("list"),
        "profiles": ResponseField("list"),
        "priceInfo": ResponseField("object"),
    }


VENDORS: dict[str, Vendor] = {"nginx_rtmp": NginxRtmp(), "livepeer": Livepeer()}
ENV = {
    "CASTGATE_SIGNING_KEY": "doc-signing-key",
    "JWT_SECRET": "doc-jwt-secret-0123456789abcdef-0123456789",
}


# The document's blocks -------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    info: str
    text: str
    #: 1-based line of the opening fence.
    line: int
    #: The ``<!-- marker -->`` comment right before the fence, if any.
    marker: str


_FENCE = re.compile(
    r"(?:<!--\s*(?P<marker>.*?)\s*-->\n)?^```(?P<info>[\w-]*)[^\n]*\n(?P<body>.*?)^```[ \t]*$",
    re.MULTILINE | re.DOTALL,
)


def _blocks() -> list[Block]:
    return [
        Block(m["info"], m["body"], TEXT.count("\n", 0, m.start("info")) + 1, m["marker"] or "")
        for m in _FENCE.finditer(TEXT)
    ]


BLOCKS = _blocks()
POLICIES = [b for b in BLOCKS if b.info == "policy"]
ERRORS = [b for b in BLOCKS if b.info == "policy-error"]
#: The complete policy of the overview, which the eval and test examples run against.
OVERVIEW = next(b for b in POLICIES if b.text.startswith("# policies/ingest.policy"))


def _block_id(block: Block) -> str:
    return f"line{block.line}"


def _marked(marker: str) -> Block:
    found = [b for b in BLOCKS if b.marker == marker or b.marker.startswith(marker + ":")]
    assert len(found) == 1, f"expected one block marked <!-- {marker} -->, found {len(found)}"
    return found[0]


def _before(block: Block, info: str) -> Block:
    earlier = [b for b in BLOCKS if b.line < block.line and b.info == info]
    assert earlier, f"no {info} block before line {block.line}"
    return earlier[-1]


# Data files the examples read ------------------------------------------------------------------


def _shown_data_files() -> dict[str, str]:
    """Data files the document shows in ``text`` blocks whose first line is ``# NAME.txt...``."""
    shown = {}
    for block in BLOCKS:
        first = block.text.split("\n", 1)[0]
        named = re.match(r"# ([\w.-]+\.txt)\b", first)
        if block.info == "text" and named:
            shown[named[1]] = block.text
    return shown


DATA_FILES = {
    "studio.txt": "# Studio encoders\n10.20.0.0/16\n2001:db8:10::/48\n192.0.2.10   # the van\n",
    "stream-keys.txt": "# contributor keys\nk-7d3f9a21\nk-51c0e8b4\n",
    "revoked-keys.txt": "k-00000000\n",
    # Only read at load; the examples never verify a token with it.
    "keys/issuer.pem": "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n",
    "bad-networks.txt": "10.0.0.0/8\n10.1.2.3/16\n",
    **_shown_data_files(),
}


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "policies"
    for name, content in DATA_FILES.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    return directory


def _compile(text: str, directory: Path, name: str = "example.policy") -> Any:
    return compile_sources([(name, text, directory)], vendors=VENDORS, functions={}, env=ENV)


# Tests -----------------------------------------------------------------------------------------


def test_the_document_has_examples_for_everything() -> None:
    assert len(POLICIES) >= 25, f"only {len(POLICIES)} ```policy blocks"
    assert len(ERRORS) >= 15, f"only {len(ERRORS)} ```policy-error blocks"
    assert {"office.txt", "public-names.txt"} <= set(_shown_data_files())
    # An indented fence would be skipped silently by the extraction above.
    assert not re.search(r"^[ \t]+```policy", TEXT, re.MULTILINE)


@pytest.mark.parametrize("block", POLICIES, ids=_block_id)
def test_policy_example_compiles(block: Block, policy_dir: Path) -> None:
    try:
        policy = _compile(block.text, policy_dir)
    except PolicyError as err:
        pytest.fail(f"the example at docs/policy-language.md:{block.line} fails:\n{err.report()}")
    assert policy.rules, f"the example at line {block.line} has no rules"


@pytest.mark.parametrize("block", ERRORS, ids=_block_id)
def test_error_example_fails_with_its_code(block: Block, policy_dir: Path) -> None:
    first = block.text.split("\n", 1)[0]
    assert first.startswith("# error:"), f"line {block.line}: start with `# error: E...`"
    expected = set(re.findall(r"\bE\d{3}\b", first))
    assert expected, f"line {block.line}: no error code in {first!r}"
    with pytest.raises(PolicyError) as caught:
        _compile(block.text, policy_dir)
    found = {d.code.value for d in caught.value.diagnostics}
    assert found == expected, caught.value.report()


def test_every_error_code_is_documented() -> None:
    for code in Code:
        assert re.search(rf"^\| `{code.value}` \|", TEXT, re.MULTILINE), f"{code.value} missing"


def test_every_builtin_function_is_documented() -> None:
    for name in BUILTINS:
        assert f"`{name}(" in TEXT, f"built-in `{name}` is not documented"


def test_the_check_report_shown_is_what_check_prints(policy_dir: Path) -> None:
    shown = _marked("check-output")
    name = shown.marker.split(":", 1)[1].strip()
    source = _before(shown, "policy-error")
    with pytest.raises(PolicyError) as caught:
        _compile(source.text, policy_dir, name)
    assert caught.value.report() == shown.text.rstrip("\n")


def test_the_formatted_example_is_what_fmt_prints() -> None:
    formatter = pytest.importorskip("castgate.lang.formatter")
    shown = _marked("fmt-output")
    source = _before(shown, "policy")
    assert formatter.format_source(source.text) == shown.text


def test_the_explained_decision_shown_is_what_eval_prints(policy_dir: Path) -> None:
    policy = _compile(OVERVIEW.text, policy_dir, "ingest.policy")
    event = Event.from_dict(json.loads(_marked("eval-event").text))
    decision = policy.decide(event, FixedState(), explain=True)
    assert decision.to_dict() == json.loads(_marked("eval-output").text)


def test_the_policy_test_example_passes_against_the_overview_policy(policy_dir: Path) -> None:
    (policy_dir / "ingest.policy").write_text(OVERVIEW.text, encoding="utf-8")
    yaml_block = _marked("test-yaml")
    test_file = policy_dir / "ingest.test.yaml"
    test_file.write_text(yaml_block.text, encoding="utf-8")
    results = run_test_file(test_file, vendors=VENDORS, functions={})
    assert results
    assert all(r.passed for r in results), "\n".join(f"{r.name}: {r.detail}" for r in results)


def test_the_signing_test_vector() -> None:
    signature = link_signature("link-secret", "signed/cam1", 1795424400)
    assert f"`{signature}`" in TEXT
    assert secure_link("signed/cam1", "1795424400", signature, Secret("link-secret", "t"), 0)
    hex_digest = re.search(r"in hex\s+`([0-9a-f]{64})`", TEXT)
    assert hex_digest
    assert secure_link("signed/cam1", 1795424400, hex_digest[1], Secret("link-secret", "t"), 0)


def _link_is_valid(url: str, secret: str) -> bool:
    parts = urlsplit(url.strip())
    app, stream = parts.path.strip("/").split("/", 1)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    expires = int(query["expires"])
    return secure_link(
        f"{app}/{stream}", query["expires"], query["sig"], Secret(secret, "t"), expires - 60
    )


def test_the_python_link_recipe_mints_valid_links() -> None:
    recipe = next(b for b in BLOCKS if b.info == "python" and "def signed_url" in b.text)
    namespace: dict[str, Any] = {}
    exec(compile(recipe.text, "docs/policy-language.md", "exec"), namespace)
    assert _link_is_valid(namespace["signed_url"]("s3cret", "live", "cam1"), "s3cret")


@pytest.mark.skipif(
    not (shutil.which("bash") and shutil.which("openssl")), reason="needs bash and openssl"
)
def test_the_shell_link_recipe_mints_valid_links() -> None:
    recipe = next(b for b in BLOCKS if b.info == "sh" and "openssl dgst" in b.text)
    secret = re.search(r"SECRET='([^']*)'", recipe.text)
    assert secret
    result = subprocess.run(
        ["bash", "-c", recipe.text], capture_output=True, text=True, check=True, timeout=30
    )
    assert _link_is_valid(result.stdout, secret[1])
