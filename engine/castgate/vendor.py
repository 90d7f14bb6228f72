"""What a vendor plugin provides: the :class:`Vendor` interface and its small companions."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import Response

from castgate.events import Decision, Event


@dataclass(frozen=True, slots=True)
class ResponseField:
    """One key a vendor can render from a policy's ``allow with { ... }``.

    ``type`` is the policy-language type the value must have (``string``, ``number``, ``bool``,
    ``duration``, ``list``, ``object`` or ``any``); the checker refuses anything else at load.
    """

    type: str
    doc: str = ""


@dataclass(frozen=True, slots=True)
class RequestSignature:
    """How a vendor signs its webhook requests: an HMAC of the exact body bytes, in a header.

    OvenMediaEngine's ``X-OME-Signature`` is ``RequestSignature("X-OME-Signature", "sha1",
    "base64url")``. The operator supplies the key (``CASTGATE_SIGNING_KEYS``); castgate checks
    every request to the vendor before its plugin sees it.
    """

    header: str
    #: A :mod:`hashlib` name: ``sha1``, ``sha256``, ...
    digest: str = "sha256"
    #: ``hex``, ``base64`` or ``base64url`` (padding optional; receivers in the wild strip it).
    encoding: str = "hex"

    def __post_init__(self) -> None:
        if self.encoding not in ("hex", "base64", "base64url"):
            raise ValueError(
                f"signature encoding must be hex, base64 or base64url, not {self.encoding!r}"
            )
        hashlib.new(self.digest)  # an unknown digest fails at plugin load, not per request

    def sign(self, key: bytes, body: bytes) -> str:
        """The header value for ``body``: what the vendor sends, and what tests send."""
        mac = hmac.digest(key, body, self.digest)
        if self.encoding == "hex":
            return mac.hex()
        if self.encoding == "base64":
            return base64.b64encode(mac).decode("ascii")
        return base64.urlsafe_b64encode(mac).decode("ascii").rstrip("=")

    def verify(self, key: bytes, body: bytes, presented: str) -> bool:
        """Whether ``presented`` signs ``body``; compared in constant time."""
        try:
            received = self._decoded(presented.strip())
        except (ValueError, binascii.Error):
            return False
        return hmac.compare_digest(received, hmac.digest(key, body, self.digest))

    def _decoded(self, text: str) -> bytes:
        if self.encoding == "hex":
            return bytes.fromhex(text)
        padded = text + "=" * (-len(text) % 4)
        if self.encoding == "base64":
            return base64.b64decode(padded, validate=True)
        return base64.urlsafe_b64decode(padded.encode("ascii"))


@dataclass(frozen=True, slots=True)
class Batch:
    """Several events in one request, such as Nimble's pay-per-view sync listing every viewer.

    Each event is decided on its own (and logged and observed like any other); the vendor then
    answers once for all of them with :meth:`Vendor.render_batch`.
    """

    events: tuple[Event, ...]
    #: Whatever the vendor needs again to answer (envelope ids, a signature check's outcome).
    context: Mapping[str, Any] = field(default_factory=dict)


class MalformedRequest(Exception):  # noqa: N818 - reads as what happened, like KeyError
    """Raised by :meth:`Vendor.parse` for a body it cannot read. The message is the reason sent
    back (4xx) or logged (deny), so it must name what was wrong and never echo secrets."""

    def __init__(self, reason: str, *, action: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        #: The action the request was for, when it could be told; decides deny vs. 400.
        self.action = action


class Vendor(ABC):
    """A streaming server's webhook dialect.

    Plugins subclass this and return instances from ``castgate_register_vendors``. A vendor only
    translates: it never decides, and it never touches session state.
    """

    #: The vendor id: one lowercase word used in ``/hooks/<name>``, ``from <name>`` in policies,
    #: the entry-point name and the fixture folder.
    name: ClassVar[str]
    #: Sub-paths served under ``/hooks/<name>``; ``""`` is the bare path.
    routes: ClassVar[Sequence[str]] = ("",)
    #: Actions this vendor's events carry: some of :data:`castgate.ACTIONS`, plus any of its own.
    actions: ClassVar[frozenset[str]]
    #: Response data this vendor can express, by key of ``allow with { ... }``.
    response_fields: ClassVar[Mapping[str, ResponseField]] = {}
    #: How the vendor signs its requests, if it does.
    signature: ClassVar[RequestSignature | None] = None

    @abstractmethod
    async def parse(self, request: Request, route: str) -> Event | Batch:
        """Read one request into an :class:`Event` (or a :class:`Batch` of them); raise
        :class:`MalformedRequest` if it is unusable."""

    @abstractmethod
    def render(self, decision: Decision, event: Event) -> Response:
        """The vendor's answer for ``decision``. Must close promptly: some callers (nginx-rtmp) act
        only when the connection closes."""

    @abstractmethod
    def render_malformed(self, error: MalformedRequest, route: str) -> Response:
        """The answer for an unreadable request: a deny in the vendor's form for decision hooks,
        a 4xx with the reason for notifications."""

    def render_batch(self, batch: Batch, decisions: Sequence[Decision]) -> Response:
        """The one answer for a :class:`Batch`; ``decisions[i]`` is for ``batch.events[i]``.
        Only vendors whose ``parse`` returns batches implement it."""
        raise NotImplementedError(f"vendor {self.name!r} returned a Batch but cannot answer one")

    def validate_response(self, data: Mapping[str, Any]) -> list[str]:
        """Problems with response data beyond its type, one message each; empty when renderable.

        Called by the checker on constant data at load and by the server before rendering."""
        return []
