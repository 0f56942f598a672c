"""Signed, opaque, expiring link tokens for the patients' public pages.

A token is Fernet (AES-CBC with HMAC-SHA256, from `cryptography`) over a small JSON object of claims:
what it carries cannot be read from the URL, and any change to it is detected. Every token names the
one page it opens (`p`, its link purpose) and when it stops working (`x`); each kind of link derives its
own key from the install's secret (`domain`), so a token of one kind never opens another's page."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.fernet import Fernet, InvalidToken


class LinkRefused(Exception):
    """A token that is not a genuine, current link; `reason` is `invalid`, `expired` or `used`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _fernet(secret: bytes, domain: str) -> Fernet:
    key = hashlib.sha256(f"{domain}:".encode() + secret).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def seal(
    secret: bytes,
    domain: str,
    purpose: str,
    claims: dict[str, Any],
    *,
    ttl: timedelta,
    now: datetime | None = None,
) -> tuple[str, datetime]:
    """A token carrying `claims` for the page of `purpose`, and when it expires (whole seconds)."""
    expiry = int(((now or datetime.now(UTC)) + ttl).timestamp())
    body = {"p": purpose, **claims, "x": expiry}
    token = _fernet(secret, domain).encrypt(json.dumps(body, separators=(",", ":")).encode()).decode()
    return token, datetime.fromtimestamp(expiry, UTC)


def unseal(
    secret: bytes, domain: str, purpose: str, token: str, *, now: datetime | None = None
) -> tuple[dict[str, Any], datetime]:
    """The claims of a genuine, current token for `purpose`, and its expiry; `LinkRefused` otherwise."""
    try:
        claims = json.loads(_fernet(secret, domain).decrypt(token.encode()))
    except (InvalidToken, ValueError, UnicodeError):
        raise LinkRefused("invalid") from None
    if not isinstance(claims, dict) or claims.get("p") != purpose or not isinstance(claims.get("x"), int):
        raise LinkRefused("invalid")
    expires_at = datetime.fromtimestamp(claims["x"], UTC)
    if expires_at <= (now or datetime.now(UTC)):
        raise LinkRefused("expired")
    return claims, expires_at
