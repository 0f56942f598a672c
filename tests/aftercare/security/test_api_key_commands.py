"""`aftercare api-keys create`: keys made straight in the database, never already expired."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aftercare.security.commands import run_api_keys
from aftercare.settings import Settings
from models.security_tables import ApiKey

pytestmark = pytest.mark.usefixtures("empty_database")


def create(expires_at: str | None) -> argparse.Namespace:
    return argparse.Namespace(
        api_keys_command="create", name="ops", roles=["admin"], scopes=[], expires_at=expires_at
    )


async def keys(sessions: async_sessionmaker[AsyncSession]) -> list[ApiKey]:
    async with sessions() as session:
        return list(await session.scalars(select(ApiKey)))


@pytest.mark.parametrize("expires_at", ["2001-01-01T00:00:00+00:00", "yesterday"])
async def test_a_key_already_expired_or_unreadable_is_refused_naming_the_option(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    capsys: pytest.CaptureFixture[str],
    expires_at: str,
) -> None:
    assert await run_api_keys(settings, create(expires_at)) == 2
    assert "--expires-at" in capsys.readouterr().err
    assert await keys(sessions) == []


async def test_a_key_expiring_later_is_made_with_its_expiry(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    later = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    assert await run_api_keys(settings, create(later.isoformat())) == 0
    [key] = await keys(sessions)
    assert key.expires_at == later
