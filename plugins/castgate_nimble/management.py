"""A client for Nimble's management HTTP API (castgate -> Nimble): list viewer sessions, drop some.

Nimble serves the API when ``management_listen_interfaces`` is set in ``nimble.conf`` (port
``management_port``, default 8082). With ``management_token`` set, every call carries
``?salt=<random int>&hash=<base64(md5_raw(salt + "/" + token))>``, the hash percent-encoded
(it holds ``+``, ``/`` and ``=``).

The shape of ``GET /manage/sessions`` is **[unverified]**: Softvelum's reference says each
session has an id, app, stream, client IP "and further parameters". So the list is read
leniently: a JSON array, or an object holding one under a known key; each session's fields
under the usual spellings (:data:`FIELDS`); sessions grouped per stream inherit the group's app
and stream. Everything Nimble sent stays in :attr:`Session.raw`. Deleting is
``POST /manage/sessions/delete`` with a JSON array of ids, sent as Nimble listed them.

This module needs ``httpx``; castgate does not import it unless you do.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from castgate_nimble.signing import management_hash

#: Field -> spellings in a session object, compared without case, ``_`` or ``-``.
FIELDS: Mapping[str, tuple[str, ...]] = {
    "id": ("id", "sessionid", "session", "sid"),
    "app": ("app", "application", "appname"),
    "stream": ("stream", "streamname", "name"),
    "ip": ("ip", "clientip", "remoteip", "remoteaddr", "addr", "address"),
    "protocol": ("protocol", "proto", "type"),
}
#: Keys under which an object may hold the session list (or a group's sessions).
_LIST_KEYS = ("sessions", "sessionlist", "items", "data", "result", "clients", "players")

#: Seconds; the API answers from memory, so a slow answer means Nimble is in trouble.
DEFAULT_TIMEOUT = 5.0


class ManagementError(Exception):
    """A management API call failed; the message says which call and why, never the token."""


@dataclass(frozen=True, slots=True)
class Session:
    """One viewer session as Nimble lists it."""

    #: The session id as text (the value :meth:`NimbleManagement.delete_sessions` needs).
    id: str
    app: str = ""
    stream: str = ""
    ip: str = ""
    protocol: str = ""
    #: The session object as Nimble sent it (for a grouped list, with the group's app/stream).
    raw: Mapping[str, Any] = field(default_factory=dict)

    @property
    def wire_id(self) -> Any:
        """The id exactly as Nimble listed it (a string or a number), for deleting it."""
        for key, value in self.raw.items():
            if _normal(key) in FIELDS["id"] and _text(value) == self.id:
                return value
        return self.id


class NimbleManagement:
    """Async client for one Nimble instance's management API.

    ``base_url`` is ``http://host:port`` of the management interface; ``token`` is
    ``management_token`` from ``nimble.conf`` (``None`` when Nimble has none). Use as an async
    context manager, or call :meth:`aclose`.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
            raise ValueError(f"Nimble management URL must be http(s)://host:port, not {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._token = token or None
        self._client = httpx.AsyncClient(timeout=timeout, transport=transport)

    async def __aenter__(self) -> NimbleManagement:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def list_sessions(self) -> list[Session]:
        """Every session Nimble lists (``GET /manage/sessions``)."""
        response = await self._call("GET", "/manage/sessions")
        try:
            data = response.json()
        except ValueError:
            raise ManagementError(
                f"GET /manage/sessions on {self.base_url}: the answer is not JSON"
            ) from None
        if _list_in(data) is None:
            # An error object would otherwise read as "no sessions".
            raise ManagementError(
                f"GET /manage/sessions on {self.base_url}: no session list in the answer"
            )
        return sessions_from(data)

    async def delete_sessions(self, sessions: Iterable[Session | str | int]) -> None:
        """Drop sessions (``POST /manage/sessions/delete``): HLS and DASH viewers get 403 on
        their next request, MPEG-TS, Icecast, RTMP, RTSP and SRT viewers are disconnected."""
        ids = [each.wire_id if isinstance(each, Session) else each for each in sessions]
        if not ids:
            return
        await self._call("POST", "/manage/sessions/delete", json=ids)

    def auth_query(self, salt: int | None = None) -> str:
        """The ``salt=...&hash=...`` query for one call; empty without a token."""
        if self._token is None:
            return ""
        salt = secrets.randbelow(1_000_000_000) if salt is None else salt
        return f"salt={salt}&hash={quote(management_hash(salt, self._token), safe='')}"

    async def _call(self, method: str, path: str, *, json: Any = None) -> httpx.Response:
        query = self.auth_query()
        url = f"{self.base_url}{path}" + (f"?{query}" if query else "")
        where = f"{method} {path} on {self.base_url}"
        try:
            response = await self._client.request(method, url, json=json)
        except httpx.TimeoutException:
            raise ManagementError(f"{where}: no answer in time") from None
        except httpx.HTTPError as error:
            raise ManagementError(f"{where}: {type(error).__name__}: {error}") from None
        if response.status_code in (401, 403):
            raise ManagementError(
                f"{where}: refused ({response.status_code}); check management_token"
            )
        if not response.is_success:
            raise ManagementError(f"{where}: HTTP {response.status_code} {response.text[:200]!r}")
        return response


def sessions_from(data: Any) -> list[Session]:
    """Sessions from a ``/manage/sessions`` answer, whatever of the plausible shapes it has;
    entries without an id (which could not be dropped) are skipped."""
    return list(_walk(_list_in(data) or [], {}, depth=0))


def _walk(items: Sequence[Any], inherited: Mapping[str, str], depth: int) -> Iterable[Session]:
    for item in items:
        if not isinstance(item, Mapping):
            continue
        fields = {**inherited, **_fields(item)}
        children = (_list_in(item) or []) if depth < 2 else []
        if children:
            group = {key: fields[key] for key in ("app", "stream") if fields.get(key)}
            yield from _walk(children, group, depth + 1)
        elif fields.get("id"):
            yield Session(
                id=fields["id"],
                app=fields.get("app", ""),
                stream=fields.get("stream", ""),
                ip=fields.get("ip", ""),
                protocol=fields.get("protocol", ""),
                raw={**{k: v for k, v in inherited.items() if k in ("app", "stream")}, **item},
            )


def _list_in(data: Any) -> list[Any] | None:
    """The list ``data`` is or holds under a known key; ``None`` when there is none."""
    if isinstance(data, list):
        return data
    if isinstance(data, Mapping):
        for key, value in data.items():
            if _normal(key) in _LIST_KEYS and isinstance(value, list):
                return value
    return None


def _fields(item: Mapping[str, Any]) -> dict[str, str]:
    found: dict[str, str] = {}
    normal = {_normal(key): value for key, value in item.items()}
    for name, spellings in FIELDS.items():
        for spelling in spellings:
            text = _text(normal.get(spelling))
            if text:
                found[name] = text
                break
    return found


def _normal(key: str) -> str:
    return key.lower().replace("_", "").replace("-", "")


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return ""
