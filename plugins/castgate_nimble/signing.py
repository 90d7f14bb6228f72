"""Nimble's and WMSPanel's MD5 signatures: the push-API sync signature and the management API hash.

Both are ``base64(md5_raw(...))`` of text joined without separators (sync) or with ``"/"``
(management). MD5 is what Nimble speaks; castgate only ever verifies or reproduces it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac


def sync_signature(sync_id: str, puzzle: str, token: str) -> str:
    """``Signature`` of a push-API request: ``base64(md5_raw(ID + Puzzle + Token))``."""
    return _md5_base64(sync_id + puzzle + token)


def sync_signature_matches(sync_id: str, puzzle: str, signature: str, token: str) -> bool:
    """Whether ``signature`` is the sync signature for ``token``, compared in constant time."""
    expected = sync_signature(sync_id, puzzle, token).encode("ascii")
    return hmac.compare_digest(expected, signature.encode("utf-8", errors="replace"))


def management_hash(salt: int, token: str) -> str:
    """``hash`` of a management API call: ``base64(md5_raw(salt + "/" + token))``."""
    return _md5_base64(f"{salt}/{token}")


def _md5_base64(text: str) -> str:
    digest = hashlib.md5(text.encode("utf-8"), usedforsecurity=False).digest()
    return base64.b64encode(digest).decode("ascii")
