"""The folder: moves the deltas the triggers append (migration `0015`) into the rollup tables, so the
deltas a reader adds up stay few. Readers count folded rows and pending deltas together, so folding
changes no number; it only keeps reads fast. The worker runs `fold_forever`; `aftercare analytics fold`
runs it once."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

FOLD_SECONDS = 1.0


async def fold(engine: AsyncEngine) -> int:
    """Fold every pending delta now, in one transaction; the number of rollup rows written, or -1 when
    another folder holds the turn (its transaction takes the deltas committed before it)."""
    async with engine.begin() as connection:
        return int((await connection.execute(text("SELECT analytics_fold()"))).scalar_one())


async def fold_forever(engine: AsyncEngine, every: float = FOLD_SECONDS) -> None:
    """Fold every `every` seconds until cancelled; a failed round is logged and the next one tries."""
    while True:
        try:
            await fold(engine)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("analytics fold failed")
        await asyncio.sleep(every)
