"""What each vendor's real requests look like, and what a request must have to be one.

For every hook endpoint this module holds the recorded or hand-built requests of
``tests/fixtures/<vendor>/`` (the seeds the fuzzer mutates) and a *requirement*: a check that a
request carries what that vendor cannot do without. Requirements are necessary conditions
only, written from each plugin's documented contract and deliberately loose (any reading the
vendor might take counts), so that a request failing one is certainly not a valid request of
that vendor, and an answer admitting it is a bug. They are written independently of the
plugins' code, so that a plugin that stops checking something is caught.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

FIXTURES = Path(__file__).parents[1] / "fixtures"

#: The push-API token Nimble's signed fixtures were signed with (tests/fixtures/nimble/README.md).
NIMBLE_TOKEN = "castgate-test-push-token"

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


@dataclass(frozen=True, slots=True)
class HookRequest:
    """One request to a hook: where it goes and what it carries."""

    method: str
    path: str
    query: bytes
    body: bytes
    content_type: str | None

    @property
    def target(self) -> str:
        """Path and query as sent: bytes an HTTP client would escape are escaped here, so the
        app decodes exactly :attr:`query`'s bytes."""
        query = "".join(chr(byte) if byte in _SENT_AS_IS else f"%{byte:02X}" for byte in self.query)
        return self.path + ("?" + query if query else "")


#: Query bytes a request target carries unescaped: printable ASCII but ``#`` (a fragment).
_SENT_AS_IS = frozenset(range(0x21, 0x7F)) - {ord("#")}


def hook_path(vendor: str, route: str) -> str:
    return f"/hooks/{vendor}" + (f"/{route}" if route else "")


# --- the seeds -----------------------------------------------------------------------------------


def seeds(vendor: str, route: str) -> list[HookRequest]:
    """The fixture requests of one endpoint; empty for a vendor this module does not know."""
    return _SEEDS.get(vendor, lambda route: [])(route)


def _posts(path: str, files: Iterable[Path], content_type: str | None) -> list[HookRequest]:
    return [HookRequest("POST", path, b"", file.read_bytes(), content_type) for file in files]


def _requests(folder: str, pattern: str = "*.json") -> list[Path]:
    return sorted(
        file
        for file in (FIXTURES / folder).glob(pattern)
        if not file.name.endswith(".expected.json")
    )


def _nginx_rtmp(route: str) -> list[HookRequest]:
    path = hook_path("nginx_rtmp", route)
    if route == "fork":
        files = _requests("nginx_rtmp/fork", "*.body") + _requests("nginx_rtmp/bintu", "*.body")
        return _posts(path, files, FORM)
    posts = _posts(path, _requests("nginx_rtmp/recorded/post", "*.body"), FORM)
    gets = []
    for file in _requests("nginx_rtmp/recorded/get", "*.target"):
        # notify_method get: everything rides in the query, after the operator's ?node=.
        _, _, query = file.read_bytes().partition(b"?")
        gets.append(HookRequest("GET", path, query, b"", None))
    return posts + gets


def _livepeer(route: str) -> list[HookRequest]:
    caller = "orchestrator" if route == "orchestrator" else "broadcaster"
    return _posts(hook_path("livepeer", route), _requests(f"livepeer/requests/{caller}"), JSON)


def _antmedia(route: str) -> list[HookRequest]:
    found = []
    for expected in sorted((FIXTURES / "antmedia").glob("*/*.expected.json")):
        meta = json.loads(expected.read_text())
        if meta["route"] == route:
            body = expected.with_name(expected.name.replace(".expected.json", ".body"))
            found += _posts(hook_path("antmedia", route), [body], meta["content_type"])
    return found


def _kls(route: str) -> list[HookRequest]:
    path = hook_path("kls", route)
    # KLS sends its old form callback without a Content-Type, the new one as JSON.
    return (
        _posts(path, _requests("kls/new"), JSON)
        + _posts(path, _requests("kls/old", "*.body"), None)
        + _posts(path, _requests("kls/string", "*.body"), None)
    )


def _nimble(route: str) -> list[HookRequest]:
    if route == "ppv":
        files = [file for file in _requests("nimble/ppv") if file.name != "official_response.json"]
    else:
        files = _requests("nimble/auth")
    return _posts(hook_path("nimble", route), files, JSON)


_SEEDS: Mapping[str, Callable[[str], list[HookRequest]]] = {
    "nginx_rtmp": _nginx_rtmp,
    "livepeer": _livepeer,
    "antmedia": _antmedia,
    "kls": _kls,
    "nimble": _nimble,
}


# --- reading requests loosely --------------------------------------------------------------------


def blank(value: object, *, trim: bool = False) -> bool:
    """castgate's "no value": null, empty or only whitespace, or ``nil`` (padded too with trim)."""
    if value is None:
        return True
    if not isinstance(value, str):
        return False
    return not value.strip() or (value.strip() if trim else value) == "nil"


def text_present(value: object, *, trim: bool = False) -> bool:
    return isinstance(value, str) and not blank(value, trim=trim)


def raw_form_pairs(data: bytes) -> list[tuple[bytes, bytes]]:
    """``k=v&k=v`` as percent-decoded byte pairs (``+`` is a space), every pair kept."""
    pairs = []
    for piece in data.split(b"&"):
        key, _, value = piece.partition(b"=")
        pairs.append((_unquote(key), _unquote(value)))
    return pairs


def form_pairs(data: bytes, *, strip: bool = False) -> list[tuple[str, str]]:
    """:func:`raw_form_pairs` as text, the way castgate documents reading forms: UTF-8 with
    U+FFFD for what is not, keys stripped of whitespace with ``strip``."""
    pairs = []
    for key, value in raw_form_pairs(data):
        text = key.decode("utf-8", errors="replace")
        pairs.append((text.strip() if strip else text, value.decode("utf-8", errors="replace")))
    return pairs


def _unquote(part: bytes) -> bytes:
    return unquote_to_bytes(part.replace(b"+", b" "))


def json_objects(data: bytes, encodings: Iterable[str] = ("utf-8",)) -> list[dict[str, Any]]:
    """The body as a JSON object under each encoding that reads it without a repeated key."""
    found = []
    for encoding in encodings:
        try:
            value = json.loads(
                data.decode(encoding),
                object_pairs_hook=_unique_keys,
                parse_constant=_no_constant,
            )
        except (ValueError, RecursionError):
            continue
        if isinstance(value, dict):
            found.append(value)
    return found


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    if len({key for key, _ in pairs}) != len(pairs):
        raise ValueError("repeated key")
    return dict(pairs)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# --- what each vendor requires -------------------------------------------------------------------

#: The methods a hook is served for: GET and POST as declared, and HEAD, which Starlette serves
#: wherever GET is (so a HEAD request is decided like any other, its answer without a body).
HOOK_METHODS = frozenset({"GET", "POST", "HEAD"})

_NGINX_CALLS = frozenset(
    {
        "connect",
        "publish",
        "play",
        "update_publish",
        "update_play",
        "update",
        "publish_done",
        "play_done",
        "done",
        "record_done",
        "disconnect",
        "playlist",
    }
)


def nginx_rtmp_requires(route: str, request: HookRequest) -> bool:
    """A ``call`` nginx-rtmp makes, ``addr`` and (fork) ``clientid`` or (upstream) ``app``; a
    publish or play also names its stream."""
    # GET, or an empty POST, carries the parameters in the query, after any operator query.
    carrier = request.query if request.method == "GET" or not request.body else request.body
    values: dict[str, list[str]] = {}
    for key, value in form_pairs(carrier.replace(b"?", b"&")):
        values.setdefault(key, []).append(value)
    calls = set(values.get("call", [])) & _NGINX_CALLS
    session = ("addr", "clientid") if route == "fork" else ("addr", "app")
    if not calls or not all(key in values for key in session):
        return False
    if calls <= {"publish", "play"}:
        return any(not blank(name) for name in values.get("name", []))
    return True


def livepeer_requires(route: str, request: HookRequest) -> bool:
    """A JSON object with a non-blank ``url`` (broadcaster) or ``id`` (orchestrator) string."""
    key = "id" if route == "orchestrator" else "url"
    return any(
        isinstance(body.get(key), str) and body[key].strip() for body in json_objects(request.body)
    )


#: Ant Media writes these from Java strings: any other JSON type there is not Ant Media.
_ANTMEDIA_HOOK_TEXT = (
    "id",
    "action",
    "streamName",
    "category",
    "vodName",
    "vodId",
    "mainTrackId",
    "roomId",
    "subscriberId",
    "app",
    "host",
    "appNames",
)
_ANTMEDIA_AUTH_TEXT = (
    "appName",
    "name",
    "streamId",
    "mode",
    "token",
    "subscriberId",
    "subscriberCode",
    "origin",
    "ipAddress",
)
#: Every charset an Ant Media body may be read in: a requirement met in any of them counts.
_ANTMEDIA_ENCODINGS = ("utf-8", "latin-1", "cp1252")


def antmedia_requires(route: str, request: HookRequest) -> bool:
    """Event hooks: a non-blank ``action``; authentication: a stream id and fields of the right
    types for the route. Keys never repeat (Ant Media builds bodies from Java maps)."""
    data = request.body
    if route == "":
        if data.lstrip(b" \t\r\n").startswith(b"{"):
            bodies = json_objects(data, _ANTMEDIA_ENCODINGS)
            return any(_antmedia_event(body) for body in bodies)
        return _antmedia_form_event(data)
    return any(_antmedia_auth(body, route) for body in json_objects(data, _ANTMEDIA_ENCODINGS))


def _text_fields_are_text(body: Mapping[str, Any], keys: Iterable[str]) -> bool:
    return all(blank(body.get(key)) or isinstance(body.get(key), str) for key in keys)


def _antmedia_event(body: Mapping[str, Any]) -> bool:
    return text_present(body.get("action")) and _text_fields_are_text(body, _ANTMEDIA_HOOK_TEXT)


def _antmedia_form_event(data: bytes) -> bool:
    if not data.strip() or not data.isascii():
        return False
    pairs = [pair for pair in raw_form_pairs(data) if pair != (b"", b"")]
    keys = [key for key, _ in pairs]
    actions = [text for key, value in pairs if key == b"action" for text in _decodings(value)]
    return len(set(keys)) == len(keys) and any(not blank(action) for action in actions)


def _decodings(value: bytes) -> list[str]:
    texts = []
    for encoding in _ANTMEDIA_ENCODINGS:
        try:
            texts.append(value.decode(encoding))
        except UnicodeDecodeError:
            continue
    return texts


def _antmedia_auth(body: Mapping[str, Any], route: str) -> bool:
    if not _text_fields_are_text(body, _ANTMEDIA_AUTH_TEXT):
        return False
    names = {body.get(key) for key in ("streamId", "name") if text_present(body.get(key))}
    mode = body.get("mode")
    if route == "publish" and mode == "play":
        return False
    if route == "play" and text_present(mode) and mode != "play":
        return False
    query = body.get("queryParams")
    return len(names) == 1 and (blank(query) or isinstance(query, str | dict))


def kls_requires(route: str, request: HookRequest) -> bool:
    """A JSON callback with a ``NotifyType`` (any case, keys never differing in case only), or a
    form callback with a non-blank first ``call`` or a ``NotifyType``."""
    data = request.body.removeprefix(b"\xef\xbb\xbf").strip()
    if data.startswith((b"{", b"[", b'"')):
        return any(_kls_new(body) for body in _kls_json_bodies(data))
    pairs = form_pairs(data, strip=True)
    calls = [value for key, value in pairs if key == "call"]
    if calls:
        return not blank(calls[0], trim=True)
    fields: dict[str, str] = {}
    for key, value in pairs:
        if key and key in fields:
            return False
        fields[key] = value
    return _kls_new(fields)


def _kls_json_bodies(data: bytes) -> list[dict[str, Any]]:
    try:
        inner = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError):
        return []
    if isinstance(inner, str):
        # The "string" encoding: the callback's JSON object inside a JSON string.
        return json_objects(inner.encode("utf-8", errors="surrogatepass"))
    return json_objects(data)


def _kls_new(body: Mapping[str, Any]) -> bool:
    folded = [key.casefold() for key in body]
    if len(set(folded)) != len(folded):
        return False
    notify = next((value for key, value in body.items() if key.casefold() == "notifytype"), None)
    if isinstance(notify, bool):
        return False
    return isinstance(notify, int | float) or text_present(notify, trim=True)


#: Field names (lower case, no ``_`` or ``-``) under which Nimble may name the stream.
_NIMBLE_NAMING = frozenset(
    {
        "app",
        "application",
        "appname",
        "applicationname",
        "stream",
        "streamname",
        "url",
        "uri",
        "requesturl",
        "requesturi",
        "fullurl",
        "path",
    }
)


def nimble_requires(route: str, request: HookRequest) -> bool:
    """Auth: a JSON object naming an app, stream or URL. PPV: an envelope signed with the
    token (``base64(md5(ID + Puzzle + token))``)."""
    bodies = json_objects(request.body.removeprefix(b"\xef\xbb\xbf"))
    if route == "ppv":
        return any(_signed(body) for body in bodies)
    return any(_names_a_stream(body) for body in bodies)


def _names_a_stream(body: Mapping[str, Any]) -> bool:
    return any(
        key.lower().replace("_", "").replace("-", "") in _NIMBLE_NAMING and text_present(value)
        for key, value in body.items()
    )


def _signed(body: Mapping[str, Any]) -> bool:
    envelope = body.get("ApiSyncRequest", body)
    if "ApiSyncRequest" in body and (len(body) != 1 or not isinstance(envelope, dict)):
        return False
    sync_id, puzzle, signature = (envelope.get(key) for key in ("ID", "Puzzle", "Signature"))
    texts = [value for value in (sync_id, puzzle, signature) if isinstance(value, str) and value]
    return len(texts) == 3 and signature == nimble_signature(texts[0], texts[1])


def nimble_signature(sync_id: str, puzzle: str, token: str = NIMBLE_TOKEN) -> str:
    digest = hashlib.md5((sync_id + puzzle + token).encode("utf-8", errors="replace")).digest()
    return base64.b64encode(digest).decode("ascii")


#: Vendor -> its requirement. A vendor missing here is reported by the fuzz tests.
REQUIREMENTS: Mapping[str, Callable[[str, HookRequest], bool]] = {
    "nginx_rtmp": nginx_rtmp_requires,
    "livepeer": livepeer_requires,
    "antmedia": antmedia_requires,
    "kls": kls_requires,
    "nimble": nimble_requires,
}


def meets_requirements(vendor: str, route: str, request: HookRequest) -> bool:
    return request.method in HOOK_METHODS and REQUIREMENTS[vendor](route, request)


# --- what an admitting answer looks like ---------------------------------------------------------


def admits(vendor: str, status: int) -> bool:
    """Whether an answer lets the request through, as the vendor reads it.

    Every built-in vendor reads only the status: nginx-rtmp goes on with any 2xx (a 3xx renames);
    Livepeer admits on exactly 200 (empty body or its JSON answer); Ant Media's authentication
    hooks admit, and its event hooks count as delivered, on exactly 200; KLS takes 200 as the
    acknowledgement of a callback; Nimble admits a session on 200 (``{"status":200}``) and
    applies a PPV sync's deny list on 200. So an answer admits when it is a 2xx or 3xx.
    """
    return 200 <= status < 400
