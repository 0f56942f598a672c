"""A/B results of a campaign run: per variant, the messages sent (exposures) and those that converted
(delivered, opened, clicked or replied, as the campaign's results count them), compared by
`aftercare.analytics.stats`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

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
