"""What the API's routes share for the life of the process."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import Client

from aftercare.enrollment.starter import EnrollmentStarter
from aftercare.settings import Settings


@dataclass(frozen=True)
class Services:
    """Settings, the database engine and sessions, the Temporal client, and the enrollment starter."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    temporal: Client
    starter: EnrollmentStarter
