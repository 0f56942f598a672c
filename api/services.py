"""What the API's routes share for the life of the process."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import Client

from aftercare.enrollment.starter import EnrollmentStarter
from aftercare.fhir_sync.receive import Ingestion
from aftercare.security.authenticate import Authenticator
from aftercare.security.codec import EncryptionCodec
from aftercare.security.rate_limit import RateLimiter
from aftercare.settings import Settings


@dataclass(frozen=True)
class Services:
    """Settings, the database engine and sessions, the Temporal client, the enrollment starter, and
    security: the authenticator, the rate limiter, the payload codec and the development UI's codec
    credential."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    temporal: Client
    starter: EnrollmentStarter
    authenticator: Authenticator
    rate_limiter: RateLimiter
    codec: EncryptionCodec | None = None
    codec_ui_token: str | None = None

    def ingestion(self) -> Ingestion:
        """Where FHIR resources arriving by any route go: validated, stored, triggers fired."""
        return Ingestion(
            self.sessions,
            self.starter,
            self.temporal,
            self.settings.phone_default_region,
            self.settings.identity_rules,
            self.settings.write_back_queue,
        )
