"""The TCM compliance and readmission report (pure): per group of discharges (journey, version, variant,
risk band, TCM contacted or not) the counts and rates CMS and the readmission programme ask about, with
a 95 % Wilson score interval for the 30-day readmission rate."""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from models.tcm_api import TcmReportRowView as ReportRow

Z_95 = 1.959963984540054


@dataclass(frozen=True)
class Outcome:
    """One discharge's outcome, with the group it is reported in."""

    journey: str | None
    version: int | None
    variant: str | None
    band: str | None
    contacted_in_time: bool
    seen_within: int | None  # 7, 14 or None
    candidate: str | None  # 99495 | 99496 | None
    readmitted: bool
    tcm: str | None = None  # contacted | not_contacted (in time); None: the discharge had no TCM episode


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion (None without trials)."""
    if trials <= 0:
        return None
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    margin = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - margin), min(1.0, centre + margin)


def _rate(count: int, total: int) -> float | None:
    return round(count / total, 4) if total else None


def summarise(outcomes: Iterable[Outcome], *, by_group: bool = True) -> list[ReportRow]:
    """One row per group (ordered), or a single total row with `by_group` false."""
    Key = tuple[str | None, int | None, str | None, str | None, str | None]
    groups: dict[Key, list[Outcome]] = defaultdict(list)
    everything: Key = (None, None, None, None, None)
    if not by_group:
        groups[everything] = []
    for outcome in outcomes:
        key: Key = (
            (outcome.journey, outcome.version, outcome.variant, outcome.band, outcome.tcm)
            if by_group
            else everything
        )
        groups[key].append(outcome)
    rows = []
    for key in sorted(groups, key=lambda k: tuple((v is None, str(v)) for v in k)):
        items = groups[key]
        total = len(items)
        contacted = sum(item.contacted_in_time for item in items)
        seen7 = sum(item.seen_within == 7 for item in items)
        seen14 = sum(item.seen_within in (7, 14) for item in items)
        readmitted = sum(item.readmitted for item in items)
        interval = wilson_interval(readmitted, total)
        rows.append(
            ReportRow(
                journey=key[0],
                version=key[1],
                variant=key[2],
                band=key[3],
                tcm=key[4],
                discharges=total,
                tcm_episodes=sum(item.tcm is not None for item in items),
                contacted_within_2_business_days=contacted,
                contacted_rate=_rate(contacted, total),
                seen_within_7_days=seen7,
                seen_within_14_days=seen14,
                seen_within_7_rate=_rate(seen7, total),
                seen_within_14_rate=_rate(seen14, total),
                candidates_99495=sum(item.candidate == "99495" for item in items),
                candidates_99496=sum(item.candidate == "99496" for item in items),
                readmissions_30_days=readmitted,
                readmission_rate=_rate(readmitted, total),
                readmission_ci_low=round(interval[0], 4) if interval else None,
                readmission_ci_high=round(interval[1], 4) if interval else None,
            )
        )
    return rows


def as_csv(rows: Iterable[ReportRow]) -> str:
    """The rows as CSV with a header line."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(ReportRow.model_fields), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({name: "" if value is None else value for name, value in row.model_dump().items()})
    return buffer.getvalue()
