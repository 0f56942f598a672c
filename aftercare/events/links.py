"""Self-service links: one opaque, signed, expiring token per patient and event, good for the event's
public page and nothing else.

The token is a signed link (`aftercare/security/signed_links.py`): what it carries (the patient and
event ids) cannot be read from the URL, and any change to it is detected."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from aftercare.security.signed_links import LinkRefused, seal, unseal

__all__ = ["DEFAULT_LINK_TTL", "PURPOSE", "LinkClaims", "LinkRefused", "link_token", "read_link_token"]

PURPOSE = "event-self-service"
DOMAIN = "aftercare-event-link"
DEFAULT_LINK_TTL = timedelta(days=30)


@dataclass(frozen=True)
class LinkClaims:
    """Who the link is for, for which event, until when."""

    event_key: str
    patient_id: str
    expires_at: datetime


def link_token(
    secret: bytes,
    event_key: str,
    patient_id: str,
    *,
    ttl: timedelta = DEFAULT_LINK_TTL,
    now: datetime | None = None,
) -> tuple[str, datetime]:
    """A token for the patient's page of the event, and when it expires."""
    return seal(secret, DOMAIN, PURPOSE, {"e": event_key, "s": patient_id}, ttl=ttl, now=now)


def read_link_token(secret: bytes, token: str, *, now: datetime | None = None) -> LinkClaims:
    """The claims of a genuine, current link; `LinkRefused` otherwise."""
    claims, expires_at = unseal(secret, DOMAIN, PURPOSE, token, now=now)
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
