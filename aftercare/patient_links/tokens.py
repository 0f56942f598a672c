"""Patient links: signed, opaque, expiring tokens bound to one patient, one message purpose and one
page (`unsubscribe`, `preferences`, `survey`). The URL carries no patient id and no PHI.

Built on the signed links of `aftercare/security/signed_links.py` (the event self-service links use the
same machinery under their own key)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from urllib.parse import quote

from aftercare.security.signed_links import LinkRefused, seal, unseal
from aftercare.settings import Settings, event_link_secret

__all__ = ["LinkKind", "LinkRefused", "PatientLinkClaims", "PatientLinks", "patient_links"]

LinkKind = Literal["unsubscribe", "preferences", "survey"]
DOMAIN = "aftercare-patient-link"
# The path each kind of link opens.
PATHS: dict[str, str] = {"unsubscribe": "/u", "preferences": "/p", "survey": "/s"}
DEV_BASE_URL = "http://localhost:8000"


@dataclass(frozen=True)
class PatientLinkClaims:
    """Whose link it is, for which purpose, until when; `ref` names the thing it is about (a survey)."""

    kind: str
    patient_id: str
    purpose: str
    expires_at: datetime
    ref: str | None = None

    @property
    def fingerprint(self) -> str:
        """A stable, non-reversible name of the link (for single-use bookkeeping and logs)."""
        text = f"{self.kind}:{self.patient_id}:{self.purpose}:{self.ref}:{int(self.expires_at.timestamp())}"
        return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class PatientLinks:
    """Makes and reads patient links for one install (its secret and public base URL)."""

    secret: bytes
    base_url: str
    ttl: timedelta = timedelta(days=90)
    mailto: str | None = None

    def token(
        self,
        kind: LinkKind,
        patient_id: str,
        purpose: str,
        *,
        ref: str | None = None,
        ttl: timedelta | None = None,
        now: datetime | None = None,
    ) -> tuple[str, datetime]:
        """A token for the patient's page of `kind`, and when it expires."""
        claims: dict[str, str] = {"s": patient_id, "u": purpose}
        if ref is not None:
            claims["r"] = ref
        return seal(self.secret, DOMAIN, kind, claims, ttl=ttl or self.ttl, now=now)

    def url(self, kind: LinkKind, patient_id: str, purpose: str, **options: object) -> str:
        """The absolute URL of a new link."""
        token, _ = self.token(kind, patient_id, purpose, **options)  # type: ignore[arg-type]
        return f"{self.base_url.rstrip('/')}{PATHS[kind]}/{token}"

    def read(self, kind: LinkKind, token: str, *, now: datetime | None = None) -> PatientLinkClaims:
        """The claims of a genuine, current link of `kind`; `LinkRefused` otherwise."""
        claims, expires_at = unseal(self.secret, DOMAIN, kind, token, now=now)
        patient_id, purpose = claims.get("s"), claims.get("u")
        if not isinstance(patient_id, str) or not isinstance(purpose, str):
            raise LinkRefused("invalid")
        ref = claims.get("r")
        return PatientLinkClaims(kind, patient_id, purpose, expires_at, ref if isinstance(ref, str) else None)

    def mailto_uri(self, token: str) -> str | None:
        """The `mailto:` unsubscribe address with the token in the subject, when one is configured."""
        if not self.mailto:
            return None
        return f"mailto:{self.mailto}?subject={quote('unsubscribe ' + token)}"


def patient_links(settings: Settings) -> PatientLinks:
    """The install's patient links: `PUBLIC_BASE_URL` (https in production), the event link secret."""
    return PatientLinks(
        secret=event_link_secret(settings),
        base_url=settings.public_base_url or DEV_BASE_URL,
        ttl=timedelta(days=settings.patient_link_days),
        mailto=settings.unsubscribe_mailto,
    )
