"""A rate-limited provider's calls, counted across every worker: a sliding window.

One row per provider keeps the times of its most recent calls, as many as the limit allows in one
window (one second, or `1 / rate` seconds below one a second). A worker takes a turn only when the
oldest of them has left the window, and records its own in the same statement, so no window of that
length ever holds more calls than the limit, by the database's clock, whichever workers make them.
Temporal paces the queue in front; this makes the limit exact.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_ENSURE = text("INSERT INTO provider_pace (provider) VALUES (:provider) ON CONFLICT (provider) DO NOTHING")
_TAKE_TURN = text(
    "UPDATE provider_pace SET recent = (recent || clock_timestamp())"
    "[GREATEST(1, cardinality(recent) + 2 - :calls):] "
    "WHERE provider = :provider AND (cardinality(recent) < :calls "
    "OR recent[cardinality(recent) + 1 - :calls] <= clock_timestamp() - :window) "
    "RETURNING recent[cardinality(recent)]"
)
_TURN_IN = text(
    "SELECT EXTRACT(EPOCH FROM (recent[cardinality(recent) + 1 - :calls] + :window - clock_timestamp())) "
    "FROM provider_pace WHERE provider = :provider"
)


def window_of(per_second: float) -> tuple[int, timedelta]:
    """How many calls fit in how long a window: `(floor(rate), 1 s)`, or one call per `1 / rate` s."""
    if per_second >= 1:
        return math.floor(per_second), timedelta(seconds=1)
    return 1, timedelta(seconds=1 / per_second)


async def take_turn(session: AsyncSession, provider: str, per_second: float) -> datetime | float:
    """The moment this call's turn was taken, or how many seconds until a turn may be taken."""
    calls, window = window_of(per_second)
    values = {"provider": provider, "calls": calls, "window": window}
    for _ in range(2):
        taken = (await session.execute(_TAKE_TURN, values)).scalar()
        if isinstance(taken, datetime):
            return taken
        wait = (await session.execute(_TURN_IN, values)).scalar()
        if wait is not None:
            return max(0.0, float(wait))
        await session.execute(_ENSURE, {"provider": provider})
    raise RuntimeError(f"no rate-limit row for {provider}")
