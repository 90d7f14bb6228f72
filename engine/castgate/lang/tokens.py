"""Token checks policies call: signed expiring links (HMAC) and JWTs (PyJWT).

Both take the event's time as *now*, so a decision replayed from a log or run in a policy test
judges expiry at the moment the request arrived, not when it is re-evaluated.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from typing import Any

import jwt as pyjwt

from castgate.lang.values import MISSING, Missing, Secret

#: Algorithms ``jwt()`` accepts. ``none`` is not among them: an unsigned token is never valid.
JWT_ALGORITHMS: frozenset[str] = frozenset(
    {
        "HS256",
        "HS384",
        "HS512",
        "RS256",
        "RS384",
        "RS512",
        "ES256",
        "ES384",
        "ES512",
        "PS256",
        "PS384",
        "PS512",
        "EdDSA",
    }
)


def link_signature(secret: str, message: str, expires: int) -> str:
    """The signature ``secure_link`` expects: unpadded base64url of HMAC-SHA256 over
    ``"<expires>:<message>"`` keyed with ``secret``. ``castgate sign`` prints the same."""
    digest = hmac.new(secret.encode(), f"{expires}:{message}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def secure_link(
    message: str, expires: object, signature: object, secret: Secret, now: float
) -> bool:
    """True when ``signature`` signs ``message`` until ``expires`` (epoch seconds) and that moment
    has not passed. The signature may be base64url (as minted) or lowercase hex; it is compared in
    constant time."""
    if not isinstance(signature, str) or not signature:
        return False
    try:
        deadline = int(str(expires))
    except ValueError:
        return False
    if deadline < now:
        return False
    key = secret.reveal().encode()
    digest = hmac.new(key, f"{deadline}:{message}".encode(), hashlib.sha256).digest()
    as_base64 = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    given = signature.strip().rstrip("=")
    # Compare against both encodings every time so timing does not reveal which one was tried.
    matches_base64 = hmac.compare_digest(given, as_base64)
    matches_hex = hmac.compare_digest(given.lower(), digest.hex())
    return matches_base64 | matches_hex


def verify_jwt(
    token: object, key: Secret, algorithms: Sequence[str], now: float
) -> dict[str, Any] | Missing:
    """The claims of a valid token, or *missing* for any invalid, expired or unsigned one.

    ``exp`` is required and judged against ``now``; ``nbf`` too when present. The audience is not
    checked here: compare ``jwt(...).aud`` in the policy, where the expected value is visible.
    """
    if not isinstance(token, str) or not token:
        return MISSING
    try:
        claims = pyjwt.decode(
            token,
            key.reveal(),
            algorithms=list(algorithms),
            options={
                "require": ["exp"],
                "verify_exp": False,
                "verify_nbf": False,
                "verify_aud": False,
                "verify_iat": False,
            },
        )
    except pyjwt.PyJWTError:
        return MISSING
    expiry = claims.get("exp")
    if not isinstance(expiry, int | float) or isinstance(expiry, bool) or expiry <= now:
        return MISSING
    not_before = claims.get("nbf")
    if (
        isinstance(not_before, int | float)
        and not isinstance(not_before, bool)
        and now < not_before
    ):
        return MISSING
    return dict(claims)
