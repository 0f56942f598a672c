"""`aftercare analytics check` says whether the rollups equal their recomputation; `rebuild` mends."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from aftercare.analytics.commands import run_analytics
from aftercare.settings import Settings


async def test_check_passes_on_kept_rollups_fails_on_a_drift_and_rebuild_mends_it(
    settings: Settings, empty_database: AsyncEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    clean = await run_analytics(settings, "check")
    async with empty_database.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO analytics_decisions (facility, hour, channel, journey_key, decision, rule, shard, n) "
                "VALUES ('', date_trunc('hour', now()), 'sms', '', 'skipped', 'consent', 0, 3)"
            )
        )
    drifted = await run_analytics(settings, "check")
    drift_report = capsys.readouterr().out
    rebuilt = await run_analytics(settings, "rebuild")
    mended = await run_analytics(settings, "check")

    assert (clean, drifted, rebuilt, mended) == (0, 1, 0, 0)
    assert "analytics_decisions: differs from its recomputation" in drift_report
    assert "'skipped', 'consent', 0, 3)" in drift_report
