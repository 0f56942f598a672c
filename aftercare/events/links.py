"""Self-service links: one opaque, signed, expiring token per patient and event, good for the event's
public page and nothing else.

The token is Fernet (AES-CBC with HMAC-SHA256, from `cryptography`): what it carries (the patient and
event ids) cannot be read from the URL, and any change to it is detected."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography.fernet import Fernet, InvalidToken

PURPOSE = "event-self-service"
DEFAULT_LINK_TTL = timedelta(days=30)


class LinkRefused(Exception):
    """A token that is not a genuine, current self-service link; `reason` is `invalid` or `expired`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class LinkClaims:
    """Who the link is for, for which event, until when."""

    event_key: str
    patient_id: str
    expires_at: datetime


def _fernet(secret: bytes) -> Fernet:
    key = hashlib.sha256(b"aftercare-event-link:" + secret).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def link_token(
    secret: bytes,
    event_key: str,
    patient_id: str,
    *,
    ttl: timedelta = DEFAULT_LINK_TTL,
    now: datetime | None = None,
) -> tuple[str, datetime]:
    """A token for the patient's page of the event, and when it expires."""
    expires_at = (now or datetime.now(UTC)) + ttl
    expiry = int(expires_at.timestamp())
    claims = {"p": PURPOSE, "e": event_key, "s": patient_id, "x": expiry}
    token = _fernet(secret).encrypt(json.dumps(claims, separators=(",", ":")).encode()).decode()
    return token, datetime.fromtimestamp(expiry, UTC)


def read_link_token(secret: bytes, token: str, *, now: datetime | None = None) -> LinkClaims:
    """The claims of a genuine, current link; `LinkRefused` otherwise."""
    try:
        claims = json.loads(_fernet(secret).decrypt(token.encode()))
    except (InvalidToken, ValueError, UnicodeError):
        raise LinkRefused("invalid") from None
    if not isinstance(claims, dict) or claims.get("p") != PURPOSE:
        raise LinkRefused("invalid")
    expires_at = datetime.fromtimestamp(int(claims["x"]), UTC)
    if expires_at <= (now or datetime.now(UTC)):
        raise LinkRefused("expired")
    return LinkClaims(event_key=str(claims["e"]), patient_id=str(claims["s"]), expires_at=expires_at)


@dataclass(frozen=True)
class SelfServiceLink:
    """A patient's link to an event's page: the URL (on `PUBLIC_BASE_URL`), its token and expiry."""

    url: str
    token: str
    expires_at: datetime


def self_service_link(
    secret: bytes, public_base_url: str | None, event_key: str, patient_id: str, *, ttl: timedelta
) -> SelfServiceLink:
    """The link `/e/<token>` for the patient's page of the event."""
    token, expires_at = link_token(secret, event_key, patient_id, ttl=ttl)
    return SelfServiceLink(
        url=f"{(public_base_url or '').rstrip('/')}/e/{token}", token=token, expires_at=expires_at
    )
