"""Tenant tokens: short-lived tokens minted offline from an API key, to hand to an end user.

A tenant token is sent as ``X-API-Key`` like the key itself, holds only the ``search``
scope, and can only narrow its key: to some of its indexes, and to filters every search,
chat and MCP call is held to. Revoking or rotating the key ends its tokens.

    from videovector_client.tenant_token import tenant_token

    token = tenant_token(
        key_id="key_...", secret=os.environ["VIDEOVECTOR_SEARCH_KEY"],
        expires_in_seconds=3600, index_ids=["idx_tenant_42"], labels=["tenant:42"])
"""

import base64
import hashlib
import hmac
import json
import time
from typing import Optional, Sequence

#: The message the signing key is derived with (HMAC-SHA-256, keyed by the secret).
DERIVATION_LABEL = b"videovector tenant token v1"
#: The longest a token may live.
MAX_LIFETIME_SECONDS = 24 * 3600


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def signing_key(secret: str) -> bytes:
    """The key the tenant tokens of ``secret`` are signed with."""
    return hmac.new(secret.encode("utf-8"), DERIVATION_LABEL, hashlib.sha256).digest()


def tenant_token(
    key_id: str,
    secret: str,
    expires_in_seconds: int,
    index_ids: Optional[Sequence[str]] = None,
    media_ids: Sequence[str] = (),
    labels: Sequence[str] = (),
    subject: Optional[str] = None,
    now: Optional[int] = None,
) -> str:
    """A tenant token of the key ``key_id`` (whose secret is ``secret``).

    ``index_ids``: the indexes it may search (within the key's; ``None``: the key's).
    ``media_ids`` and ``labels``: filters forced on every search (only these media; only
    segments carrying every one of these labels). ``subject``: your end user's id.
    """
    if not 0 < expires_in_seconds <= MAX_LIFETIME_SECONDS:
        raise ValueError(f"expires_in_seconds must be 1..{MAX_LIFETIME_SECONDS}")
    if index_ids is not None and len(index_ids) == 0:
        raise ValueError("index_ids, when given, must name at least one index")
    issued = int(time.time()) if now is None else now
    claims: dict = {"exp": issued + expires_in_seconds, "iat": issued}
    if index_ids is not None:
        claims["index_ids"] = list(index_ids)
    filters = {}
    if media_ids:
        filters["media_ids"] = list(media_ids)
    if labels:
        filters["labels"] = list(labels)
    if filters:
        claims["filters"] = filters
    if subject is not None:
        claims["sub"] = subject
    header = {"alg": "HS256", "typ": "JWT", "kid": key_id}
    signing_input = ".".join(
        _b64(json.dumps(part, separators=(",", ":")).encode("utf-8")) for part in (header, claims)
    )
    signature = hmac.new(signing_key(secret), signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"
