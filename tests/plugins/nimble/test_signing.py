"""The MD5 signatures, against values from ``printf ... | openssl dgst -md5 -binary | base64``."""

from __future__ import annotations

import pytest

from castgate_nimble.signing import (
    management_hash,
    sync_signature,
    sync_signature_matches,
)


def test_sync_signature_is_base64_of_md5_of_the_three_joined() -> None:
    # md5("abc") = 900150983cd24fb0d6963f7d28e17f72 (RFC 1321)
    assert sync_signature("a", "b", "c") == "kAFQmDzST7DWlj99KOF/cg=="


def test_sync_signature_matches_only_the_exact_text() -> None:
    assert sync_signature_matches("a", "b", "kAFQmDzST7DWlj99KOF/cg==", "c")
    for wrong in ("kAFQmDzST7DWlj99KOF/cg=", "kAFQmDzST7DWlj99KOF/cg== ", "", "é", "\ud800"):
        assert not sync_signature_matches("a", "b", wrong, "c")
    assert not sync_signature_matches("a", "b", "kAFQmDzST7DWlj99KOF/cg==", "d")


@pytest.mark.parametrize(
    ("salt", "token", "expected"),
    [(12345, "nimble-token", "wNnCKy5na/UhGTBGnHacTQ=="), (0, "", "dryCdMsgxU3j7J2txsIs0w==")],
)
def test_management_hash_is_base64_of_md5_of_salt_slash_token(
    salt: int, token: str, expected: str
) -> None:
    assert management_hash(salt, token) == expected
