"""Published journeys read back: a key and version parsed once per process, but never another
database's content under the same key and version."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from aftercare.store.journeys import get_journey
from tests.conftest import truncate_all
from tests.helpers import publish


def _journey(event: str) -> dict[str, object]:
    return {
        "key": "cache-test",
        "version": 1,
        "name": "Cache test",
        "steps": [{"id": "wait", "wait_for": {"event": event, "timeout": "P1D"}}],
    }


async def test_the_same_key_and_version_in_a_fresh_database_reads_its_own_content(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await truncate_all(engine)
    await publish(sessions, _journey("sms.reply"))
    async with sessions() as session:
        first = await get_journey(session, "cache-test", 1)
    assert first is not None
    assert first.listened_event_types() == {"sms.reply"}

    await truncate_all(engine)  # as a restore, or the next test's database, would
    await publish(sessions, _journey("survey.completed"))
    async with sessions() as session:
        second = await get_journey(session, "cache-test", 1)
        again = await get_journey(session, "cache-test", 1)
    assert second is not None
    assert second.listened_event_types() == {"survey.completed"}
    assert again is second  # an equal document is parsed once
