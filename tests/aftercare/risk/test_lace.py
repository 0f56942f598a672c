"""LACE, component by component, on hand-built visits and conditions: every length-of-stay band edge,
admissions through the emergency department, Charlson conditions in ICD-10 and SNOMED CT, emergency
visits just inside and just outside six months."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from aftercare.risk.charlson import Condition
from aftercare.risk.discharges import Visit, visit_of
from aftercare.risk.lace import DatedCondition, charlson_points, lace, length_of_stay_points, months_before

ADMITTED = datetime(2025, 3, 10, 14, 0, tzinfo=UTC)
UTC_ZONE = ZoneInfo("UTC")
ICD10 = "http://hl7.org/fhir/sid/icd-10"
SNOMED = "http://snomed.info/sct"


def stay(days: float = 3, **more: object) -> Visit:
    return Visit(
        reference="Encounter/stay",
        class_code="IMP",
        status="finished",
        start=ADMITTED,
        end=ADMITTED + timedelta(days=days),
        **more,  # type: ignore[arg-type]
    )


def emergency(name: str, start: datetime, hours: float = 4) -> Visit:
    return Visit(f"Encounter/{name}", "EMER", "finished", start, start + timedelta(hours=hours))


def condition(name: str, token: str, known: datetime | None = None) -> DatedCondition:
    return DatedCondition(Condition(f"Condition/{name}", (token,)), known)


@pytest.mark.parametrize(
    ("days", "points"),
    [(0, 0), (1, 1), (2, 2), (3, 3), (4, 4), (6, 4), (7, 5), (13, 5), (14, 7), (40, 7)],
)
def test_length_of_stay_points_at_every_band_edge(days: int, points: int) -> None:
    assert length_of_stay_points(days) == points
    score = lace(stay(days), [], [], UTC_ZONE)
    assert score.components["L"].value == days
    assert score.components["L"].points == points
    assert score.components["L"].basis == ["Encounter/stay"]


def test_length_of_stay_counts_calendar_days_in_the_hospitals_zone() -> None:
    # 22:00 to 01:00 the next day UTC is the same evening in New York: a stay of less than a day.
    evening = Visit(
        "Encounter/short",
        "IMP",
        "finished",
        datetime(2025, 3, 10, 22, 0, tzinfo=UTC),
        datetime(2025, 3, 11, 1, 0, tzinfo=UTC),
    )
    assert lace(evening, [], [], UTC_ZONE).components["L"].value == 1
    assert lace(evening, [], [], ZoneInfo("America/New_York")).components["L"].value == 0


@pytest.mark.parametrize(
    ("more", "acute"),
    [
        ({"priority": "EM"}, True),
        ({"priority": "UR"}, True),
        ({"priority": "EL"}, False),
        ({"admit_source": "emd"}, True),
        ({"admit_source": "gp"}, False),
        ({}, False),
    ],
)
def test_an_emergent_admission_by_priority_or_admit_source_scores_three(
    more: dict[str, str], acute: bool
) -> None:
    component = lace(stay(**more), [], [], UTC_ZONE).components["A"]
    assert (component.value, component.points) == (acute, 3 if acute else 0)
    assert component.basis == (["Encounter/stay"] if acute else [])


def test_a_stay_that_began_in_the_emergency_department_is_acute_and_that_visit_is_not_an_e_visit() -> None:
    handover = emergency("ed-today", ADMITTED - timedelta(hours=5), hours=5)
    earlier = emergency("ed-last-month", ADMITTED - timedelta(days=30))
    score = lace(stay(), [handover, earlier], [], UTC_ZONE)
    assert score.components["A"].points == 3
    assert score.components["A"].basis == ["Encounter/stay", "Encounter/ed-today"]
    assert score.components["E"].value == 1
    assert score.components["E"].basis == ["Encounter/ed-last-month"]


def test_an_emergency_visit_that_ended_hours_before_admission_is_not_where_the_stay_began() -> None:
    morning = emergency("ed-morning", ADMITTED - timedelta(hours=8), hours=4)
    score = lace(stay(), [morning], [], UTC_ZONE)
    assert score.components["A"].points == 0
    assert score.components["E"].basis == ["Encounter/ed-morning"]


def test_emergency_visits_just_inside_six_months_count_and_just_outside_do_not() -> None:
    six_months = months_before(ADMITTED, 6)
    assert six_months == datetime(2024, 9, 10, 14, 0, tzinfo=UTC)
    inside = emergency("inside", six_months)
    outside = emergency("outside", six_months - timedelta(minutes=1))
    score = lace(stay(), [inside, outside], [], UTC_ZONE)
    assert score.components["E"].basis == ["Encounter/inside"]
    assert score.components["E"].points == 1


def test_emergency_points_stop_at_four() -> None:
    visits = [emergency(f"ed-{n}", ADMITTED - timedelta(days=10 * (n + 1))) for n in range(6)]
    component = lace(stay(), visits, [], UTC_ZONE).components["E"]
    assert (component.value, component.points, len(component.basis)) == (6, 4, 6)


def test_six_months_before_the_31st_is_the_last_day_of_a_shorter_month() -> None:
    assert months_before(datetime(2025, 8, 31, tzinfo=UTC), 6) == datetime(2025, 2, 28, tzinfo=UTC)
    assert months_before(datetime(2025, 3, 10, tzinfo=UTC), 14) == datetime(2024, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize(("index", "points"), [(0, 0), (1, 1), (2, 2), (3, 3), (4, 5), (9, 5)])
def test_charlson_points(index: int, points: int) -> None:
    assert charlson_points(index) == points


def test_charlson_conditions_in_icd10_and_snomed_known_by_discharge() -> None:
    conditions = [
        condition("chf", f"{SNOMED}|88805009", ADMITTED - timedelta(days=400)),  # 1
        condition("ckd", f"{ICD10}|N18.4", None),  # 2, date unknown: counts
        condition("copd", f"{SNOMED}|13645005", ADMITTED + timedelta(days=1)),  # 1, during the stay
        condition("later", f"{ICD10}|C78.0", ADMITTED + timedelta(days=30)),  # after discharge: not yet
    ]
    component = lace(stay(3), [], conditions, UTC_ZONE).components["C"]
    assert (component.value, component.points) == (4, 5)
    assert component.basis == ["Condition/copd", "Condition/chf", "Condition/ckd"]  # by category
    assert component.detail == {
        "categories": {
            "chronic_pulmonary_disease": ["Condition/copd"],
            "congestive_heart_failure": ["Condition/chf"],
            "renal_disease": ["Condition/ckd"],
        }
    }


def test_a_known_answer_high_risk_discharge() -> None:
    # 8 days (5) + through the ED (3) + CHF and diabetes with complications (3) + 2 ED visits (2) = 13.
    visits = [
        emergency("ed-admit", ADMITTED - timedelta(hours=3), hours=3),
        emergency("ed-1", ADMITTED - timedelta(days=20)),
        emergency("ed-2", ADMITTED - timedelta(days=90)),
    ]
    conditions = [condition("chf", f"{ICD10}|I50.0"), condition("dm", f"{SNOMED}|368581000119106")]
    score = lace(stay(8), visits, conditions, UTC_ZONE)
    assert {name: part.points for name, part in score.components.items()} == {"L": 5, "A": 3, "C": 3, "E": 2}
    assert score.value == 13
    assert score.encounter_id == "stay"


def test_an_encounter_resource_is_read_for_class_priority_and_admit_source() -> None:
    visit = visit_of(
        {
            "resourceType": "Encounter",
            "id": "e-1",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "ACUTE"},
            "priority": {"coding": [{"code": "UR"}]},
            "hospitalization": {"admitSource": {"coding": [{"code": "emd"}]}},
            "period": {"start": "2025-03-10T14:00:00Z", "end": "2025-03-12T10:00:00+01:00"},
        }
    )
    assert visit.is_discharge
    assert (visit.priority, visit.admit_source) == ("UR", "emd")
    assert visit.end == datetime(2025, 3, 12, 9, 0, tzinfo=UTC)
    unfinished = visit_of(
        {"resourceType": "Encounter", "id": "e-2", "status": "in-progress", "class": {"code": "IMP"}}
    )
    assert not unfinished.is_discharge
