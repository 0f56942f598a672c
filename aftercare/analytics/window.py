"""The filters every analytics query shares: a time window over the rollups' UTC hours."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, true


@dataclass(frozen=True)
class Window:
    """Facts from `start` (inclusive) to `end` (exclusive); hours are the rollups' resolution, so a
    bound inside an hour counts that hour's facts from its start."""

    start: datetime | None = None
    end: datetime | None = None

    def over(self, hour: Any) -> ColumnElement[bool]:
        """The condition on a rollup's `hour` column."""
        conditions = []
        if self.start is not None:
            conditions.append(hour >= self.start.replace(minute=0, second=0, microsecond=0))
        if self.end is not None:
            conditions.append(hour < self.end)
        return and_(true(), *conditions)


# The histogram's bucket upper bounds in seconds (migration `0010`'s `analytics_le`): 1, 5, 15, 30
# minutes; 1, 2, 4, 8, 12 hours; 1, 2, 3, 5, 7, 10, 14, 21, 30, 60, 90 days; then "longer".
BUCKET_BOUNDS = (
    60, 300, 900, 1800, 3600, 7200, 14400, 28800, 43200, 86400, 172800, 259200, 432000, 604800,
    864000, 1209600, 1814400, 2592000, 5184000, 7776000,
)  # fmt: skip
LONGER = 2147483647


def bucket_of(seconds: float) -> int:
    """The bucket an elapsed time falls in."""
    return next((bound for bound in BUCKET_BOUNDS if seconds <= bound), LONGER)


def percentile_bound(histogram: dict[int, int], fraction: float) -> int | None:
    """The upper bound (seconds) of the histogram bucket holding the `fraction` quantile; None when
    empty. Buckets are the `le` ladder of migration `0010`."""
    total = sum(histogram.values())
    if total <= 0:
        return None
    rank, seen = fraction * total, 0
    for bound in sorted(histogram):
        seen += histogram[bound]
        if seen >= rank:
            return bound
    return max(histogram)
