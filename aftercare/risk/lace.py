"""The LACE index of a discharge (van Walraven C, Dhalla IA, Bell C, et al. "Derivation and validation
of an index to predict early death or unplanned readmission after discharge from hospital to the
community", CMAJ 2010;182(6):551-557). Pure: the caller gathers the patient's visits and conditions.

- L, length of stay: calendar days from admission to discharge in the hospital's time zone;
  <1 → 0, 1 → 1, 2 → 2, 3 → 3, 4-6 → 4, 7-13 → 5, ≥14 → 7.
- A, acute (emergent) admission, 3 points: `Encounter.priority` EM or UR, `hospitalization.admitSource`
  `emd`, or an emergency visit whose period reaches the admission within an hour (the stay began there).
- C, Charlson comorbidity index of the conditions known by discharge (not refuted): 0-3 as is, ≥4 → 5.
- E, emergency visits in the six calendar months before admission, not counting the one the stay began
  from: as many points as visits, at most 4.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from aftercare.risk.charlson import Condition, charlson_index
from aftercare.risk.discharges import URGENT_PRIORITIES, Visit
from aftercare.risk.scores import Component, Score

ALGORITHM = "lace-vanwalraven-2010/1"
HANDOVER = timedelta(hours=1)
LOOKBACK_MONTHS = 6
MAX_EMERGENCY_POINTS = 4


@dataclass(frozen=True)
class DatedCondition:
    """A condition with the moment it was known from (onset, else recorded; None: unknown)."""

    condition: Condition
    known_from: datetime | None


def length_of_stay_points(days: int) -> int:
    """LACE's L points for a stay of `days` calendar days."""
    if days < 4:
        return max(days, 0)
    if days <= 6:
        return 4
    return 5 if days <= 13 else 7


def charlson_points(index: int) -> int:
    """LACE's C points for a Charlson index."""
    return index if index < 4 else 5


def months_before(moment: datetime, months: int) -> datetime:
    """The same day and time `months` calendar months earlier (the month's last day when shorter)."""
    month_index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(month_index, 12)
    day = min(moment.day, _days_in_month(year, month + 1))
    return moment.replace(year=year, month=month + 1, day=day)


def _days_in_month(year: int, month: int) -> int:
    following = date(year + month // 12, month % 12 + 1, 1)
    return (following - timedelta(days=1)).day


def stay_days(stay: Visit, zone: ZoneInfo) -> int:
    """Calendar days between admission and discharge, in the hospital's zone."""
    start, end = stay.period()
    return (end.astimezone(zone).date() - start.astimezone(zone).date()).days


def admitting_emergency_visit(stay: Visit, visits: Sequence[Visit]) -> Visit | None:
    """The emergency visit the stay began from: its period reaches the admission within an hour."""
    start, _ = stay.period()
    for visit in visits:
        if not visit.is_emergency or visit.reference == stay.reference or visit.start is None:
            continue
        end = visit.end or visit.start
        if visit.start <= start + HANDOVER and end >= start - HANDOVER:
            return visit
    return None


def admission_acuity(stay: Visit, visits: Sequence[Visit], *, points: int) -> Component:
    """Whether the admission was acute (emergent), why, and from which resources; `points` when it was."""
    via_emergency = admitting_emergency_visit(stay, visits)
    reasons = [
        reason
        for reason, applies in (
            (f"priority {stay.priority}", stay.priority in URGENT_PRIORITIES),
            ("admitted from the emergency department", stay.admit_source == "emd"),
            (f"began at {via_emergency.reference}" if via_emergency else "", via_emergency is not None),
        )
        if applies
    ]
    return Component(
        value=bool(reasons),
        points=points if reasons else 0,
        basis=[stay.reference, *([via_emergency.reference] if via_emergency else [])] if reasons else [],
        detail={"reasons": reasons},
    )


def lace(stay: Visit, visits: Sequence[Visit], conditions: Sequence[DatedCondition], zone: ZoneInfo) -> Score:
    """The LACE index of a discharge, with its components and their basis."""
    start, end = stay.period()
    days = stay_days(stay, zone)
    length = Component(value=days, points=length_of_stay_points(days), basis=[stay.reference])

    acuity = admission_acuity(stay, visits, points=3)

    known = [item.condition for item in conditions if item.known_from is None or item.known_from <= end]
    index = charlson_index(known)
    comorbidity = Component(
        value=index.score,
        points=charlson_points(index.score),
        basis=index.basis,
        detail={"categories": index.categories},
    )

    since = months_before(start, LOOKBACK_MONTHS)
    emergencies = sorted(
        (
            visit
            for visit in visits
            if visit.is_emergency
            and visit.reference not in acuity.basis
            and visit.start is not None
            and since <= visit.start < start
        ),
        key=lambda visit: (visit.start, visit.reference),
    )
    emergency = Component(
        value=len(emergencies),
        points=min(len(emergencies), MAX_EMERGENCY_POINTS),
        basis=[visit.reference for visit in emergencies],
    )
    return Score(
        score="lace",
        algorithm=ALGORITHM,
        encounter_id=stay.reference.partition("/")[2],
        components={"L": length, "A": acuity, "C": comorbidity, "E": emergency},
    )
