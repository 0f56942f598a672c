"""An episode's progress from evidence: attempts, CMS's two timely unsuccessful attempts, the visit
day and the billing candidate, readmission within 30 days; and the report's 95 % interval."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aftercare.tcm.progress import Attempt, Event, Evidence, Progress, progress
from aftercare.tcm.report import Outcome, as_csv, summarise, wilson_interval

DISCHARGED = datetime(2025, 11, 26, 15, 0, tzinfo=UTC)  # Wednesday 10:00 in New York
DUE = datetime(2025, 12, 2, 4, 59, 59, tzinfo=UTC)  # Monday's end (Thursday a holiday)
ZONE = "America/New_York"


def call(hours: float, outcome: str) -> Attempt:
    return Attempt(
        DISCHARGED + timedelta(hours=hours), "call", outcome, outcome == "reached", f"Task/{hours}"
    )


def run(evidence: Evidence, complexity: str = "high", now_days: float = 3) -> Progress:
    return progress(
        discharged_at=DISCHARGED,
        contact_due_at=DUE,
        complexity=complexity,
        timezone=ZONE,
        closed=False,
        evidence=evidence,
        now=DISCHARGED + timedelta(days=now_days),
    )


def test_two_timely_unsuccessful_calls_meet_the_contact_requirement_one_does_not() -> None:
    one = run(Evidence(attempts=[call(20, "no_answer")]))
    assert (one.contact_met, one.contact_met_by) == (False, None)
    two = run(Evidence(attempts=[call(20, "no_answer"), call(100, "left_message")]))
    assert (two.contact_met, two.contact_met_by) == (True, "attempts")
    late = run(Evidence(attempts=[call(20, "no_answer"), call(140, "no_answer")]))  # the second after Monday
    assert late.contact_met is False


def test_a_reached_call_after_the_deadline_is_contact_but_not_in_time() -> None:
    done = run(Evidence(attempts=[call(140, "reached")]))
    assert done.contacted_at == DISCHARGED + timedelta(hours=140)
    assert done.contact_met is False


def test_attempts_before_the_discharge_do_not_count() -> None:
    done = run(Evidence(attempts=[call(-5, "reached")]))
    assert (done.attempts, done.contacted_at) == ([], None)


@pytest.mark.parametrize(
    ("day", "complexity", "within", "candidate"),
    [
        (7, "high", 7, "99496"),
        (8, "high", 14, "99495"),
        (5, "moderate", 7, "99495"),
        (14, "moderate", 14, "99495"),
        (15, "moderate", None, None),
    ],
)
def test_the_visit_day_in_the_hospitals_zone_decides_the_candidate(
    day: int, complexity: str, within: int | None, candidate: str | None
) -> None:
    # 23:00 New York time on the day: 04:00 UTC the next day, still that day locally.
    visit_at = datetime(2025, 11, 26, 23, 0, tzinfo=UTC) + timedelta(days=day, hours=5)
    done = run(
        Evidence(attempts=[call(3, "reached")], visits=[Event(visit_at, "Appointment/a")]),
        complexity,
        now_days=20,
    )
    assert (done.visit_within_days, done.billing_candidate) == (within, candidate)


def test_a_stay_within_30_days_is_a_readmission_after_it_is_not() -> None:
    inside = run(Evidence(admissions=[Event(DISCHARGED + timedelta(days=29), "Encounter/b")]), now_days=40)
    assert inside.status == "readmitted"
    outside = run(Evidence(admissions=[Event(DISCHARGED + timedelta(days=31), "Encounter/c")]), now_days=40)
    assert (outside.status, outside.readmission) == ("closed", None)
    assert run(Evidence(), now_days=3).status == "open"


def test_the_wilson_interval_of_known_proportions() -> None:
    low, high = wilson_interval(1, 2) or (0, 0)
    assert (round(low, 4), round(high, 4)) == (0.0945, 0.9055)
    low, high = wilson_interval(0, 10) or (0, 0)
    assert (low, round(high, 4)) == (0.0, 0.2775)
    assert wilson_interval(0, 0) is None


def test_the_report_groups_by_journey_variant_and_band_and_exports_csv() -> None:
    def outcome(variant: str, readmitted: bool, band: str = "high") -> Outcome:
        return Outcome("tcm", 1, variant, band, True, 7, "99496", readmitted)

    rows = summarise(
        [outcome("A", True), outcome("A", False), outcome("B", False), outcome("B", False, "low")]
    )
    assert [(r.variant, r.band, r.discharges, r.readmissions_30_days) for r in rows] == [
        ("A", "high", 2, 1),
        ("B", "high", 1, 0),
        ("B", "low", 1, 0),
    ]
    assert (rows[0].readmission_rate, rows[0].readmission_ci_low) == (0.5, 0.0945)
    (total,) = summarise([outcome("A", True), outcome("B", False)], by_group=False)
    assert (total.journey, total.discharges, total.candidates_99496) == (None, 2, 2)
    text = as_csv(rows)
    assert text.splitlines()[0].startswith("journey,version,variant,band,tcm,discharges,tcm_episodes,")
    assert text.splitlines()[1].startswith("tcm,1,A,high,,2,0,2,1.0,2,2,")
