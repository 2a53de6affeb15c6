"""Bootstrap tokens: ``<id>.<secret>``; only sha256(secret) is stored.

The id lets the registrar find the record without scanning; the secret is
compared in constant time. A token carries its expiry, its remaining uses,
the site and labels boxes enrolled with it get, and whether they need approval.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field

TOKEN_RE = re.compile(r"^([0-9a-f]{12})\.([A-Za-z0-9_-]{20,100})$")


@dataclass(frozen=True)
class TokenRecord:
    token_id: str
    secret_hash: str
    expires_at: float
    uses_left: int
    site: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    require_approval: bool = False
    created_at: float = 0.0


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def mint() -> tuple[str, str, str]:
    """(token_id, secret hash, the full token to hand out once)."""
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return token_id, hash_secret(secret), f"{token_id}.{secret}"


def split(token: str) -> tuple[str, str] | None:
    m = TOKEN_RE.match(token)
    return (m.group(1), m.group(2)) if m else None


def matches(record: TokenRecord, secret: str) -> bool:
    return hmac.compare_digest(record.secret_hash, hash_secret(secret))
