"""`aftercare analytics check`, `rebuild` and `fold`: the rollups against the raw facts, and the
pending deltas folded into them."""

from __future__ import annotations

from aftercare.analytics.fold import fold
from aftercare.analytics.rebuild import compare, rebuild
from aftercare.db.engine import create_engine
from aftercare.settings import Settings


async def run_analytics(settings: Settings, action: str) -> int:
    """Compare (exit status 1 on a difference, with samples of the differing rows), rebuild or fold."""
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        if action == "fold":
            folded = await fold(engine)
            print(f"analytics deltas folded: {max(folded, 0)} rollup rows written")
            return 0
        if action == "rebuild":
            await rebuild(engine)
            print("analytics rollups rebuilt from the facts")
            return 0
        differences = await compare(engine)
    finally:
        await engine.dispose()
    for difference in differences:
        print(f"{difference.table}: differs from its recomputation")
        for row in difference.only_kept:
            print(f"  kept only:       {row}")
        for row in difference.only_recomputed:
            print(f"  recomputed only: {row}")
    if differences:
        return 1
    print("analytics rollups equal their recomputation from the facts")
    return 0
