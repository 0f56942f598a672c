"""A/B results of a campaign run: per variant, the messages sent (exposures) and those that converted
(delivered, opened, clicked or replied, as the campaign's results count them), compared by
`aftercare.analytics.stats`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.analytics.live import PATHS, STEPS
from aftercare.analytics.stats import Comparison, compare_variants
from aftercare.campaigns.results import run_results
from aftercare.store.campaigns import get_run, runs_of

Conversion = Literal["delivered", "opened", "clicked", "replied"]


@dataclass(frozen=True)
class CampaignAb:
    """The compared run and its comparison."""

    campaign_key: str
    run_id: str
    metric: Conversion
    comparison: Comparison


async def campaign_ab(
    session: AsyncSession, campaign_key: str, metric: Conversion, run_id: str | None = None
) -> CampaignAb | None:
    """The run's variants compared (the latest run when `run_id` is None); None without such a run."""
    if run_id is None:
        runs = await runs_of(session, campaign_key, limit=1)
        run_id = runs[0].id if runs else None
    run = await get_run(session, run_id) if run_id is not None else None
    if run is None or run.campaign_key != campaign_key:
        return None
    results = await run_results(session, run.id)
    counts = {name: (tally.sent, getattr(tally, metric)) for name, tally in results.variants.items()}
    return CampaignAb(campaign_key, run.id, metric, compare_variants(counts))


async def journey_split_ab(
    session: AsyncSession, journey_key: str, step: str, goal: str, version: int | None = None
) -> Comparison:
    """A journey's split step compared: per path, the enrollments sent down it (exposures) and those
    of them that ended with the outcome `goal` (conversions). Enrollments still running count as
    exposed, not converted."""
    recorded = STEPS
    exposed = select(recorded.result, func.sum(recorded.n)).where(
        recorded.journey_key == journey_key, recorded.step == step, recorded.result.startswith("path ")
    )
    paths = PATHS
    converted = select(paths.path, func.sum(paths.n)).where(
        paths.journey_key == journey_key, paths.step == step, paths.outcome == goal
    )
    if version is not None:
        exposed = exposed.where(recorded.journey_version == version)
        converted = converted.where(paths.journey_version == version)
    exposures = {
        result.removeprefix("path "): int(n)
        for result, n in await session.execute(exposed.group_by(recorded.result))
    }
    conversions = {path: int(n) for path, n in await session.execute(converted.group_by(paths.path))}
    return compare_variants({path: (n, conversions.get(path, 0)) for path, n in exposures.items() if n})
