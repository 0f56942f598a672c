"""HOSPITAL, component by component, on hand-built stays: haemoglobin and sodium at discharge either
side of their thresholds, oncology, a procedure during the stay, a non-elective admission, admissions
in the 12 months before at every band edge, a stay either side of 5 days; no score without the labs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from aftercare.risk.discharges import Visit
from aftercare.risk.hospital import Measurement, Performed, admissions_points, hospital

ADMITTED = datetime(2025, 3, 10, 14, 0, tzinfo=UTC)
ZONE = ZoneInfo("UTC")
HB = "http://loinc.org|718-7"
NA = "http://loinc.org|2951-2"


def stay(days: float = 3, **more: object) -> Visit:
    return Visit("Encounter/stay", "IMP", "finished", ADMITTED, ADMITTED + timedelta(days=days), **more)  # type: ignore[arg-type]


def lab(name: str, code: str, value: float, hours: float, unit: str | None = None) -> Measurement:
    return Measurement(f"Observation/{name}", (code,), value, unit, ADMITTED + timedelta(hours=hours))


def admissions(count: int, every_days: int) -> list[Visit]:
    """`count` earlier stays of a day, one every `every_days` before this admission."""
    starts = [ADMITTED - timedelta(days=every_days * (n + 1)) for n in range(count)]
    return [
        Visit(f"Encounter/e{n}", "IMP", "finished", start, start + timedelta(days=1))
        for n, start in enumerate(starts)
    ]


NORMAL = [lab("hb", HB, 13.5, 40), lab("na", NA, 140, 40)]


def test_no_score_without_haemoglobin_and_sodium_during_the_stay() -> None:
    assert hospital(stay(), [], [lab("hb", HB, 10, 40)], [], ZONE) is None
    before = [lab("hb", HB, 10, -5), lab("na", NA, 130, -5)]  # before admission: not at discharge
    assert hospital(stay(), [], before, [], ZONE) is None


def test_a_low_risk_stay_scores_zero_and_names_its_labs() -> None:
    score = hospital(stay(), [], NORMAL, [], ZONE)
    assert score is not None
    assert score.value == 0
    assert score.components["H"].basis == ["Observation/hb"]
    assert score.components["S"].basis == ["Observation/na"]


@pytest.mark.parametrize(("value", "unit", "points"), [(11.9, "g/dL", 1), (12.0, "g/dL", 0), (119, "g/L", 1)])
def test_haemoglobin_below_12_g_dl_at_discharge(value: float, unit: str, points: int) -> None:
    labs = [lab("hb-early", HB, 9.0, 2), lab("hb-last", HB, value, 60, unit), lab("na", NA, 140, 40)]
    score = hospital(stay(), [], labs, [], ZONE)
    assert score is not None
    assert (score.components["H"].points, score.components["H"].basis) == (points, ["Observation/hb-last"])


@pytest.mark.parametrize(("value", "points"), [(134, 1), (135, 0)])
def test_sodium_below_135_at_discharge(value: float, points: int) -> None:
    score = hospital(stay(), [], [lab("hb", HB, 13, 10), lab("na", NA, value, 10)], [], ZONE)
    assert score is not None
    assert score.components["S"].points == points


def test_oncology_a_procedure_and_a_non_elective_admission() -> None:
    oncology = stay(services=("394593009", "medical oncology"), priority="EM")
    procedures = [
        Performed("Procedure/during", ADMITTED + timedelta(days=1)),
        Performed("Procedure/before", ADMITTED - timedelta(days=9)),
    ]
    score = hospital(oncology, [], NORMAL, procedures, ZONE)
    assert score is not None
    points = {name: part.points for name, part in score.components.items()}
    assert points == {"H": 0, "O": 2, "S": 0, "P": 1, "I": 1, "T": 0, "A": 0}
    assert score.components["P"].basis == ["Procedure/during"]


@pytest.mark.parametrize(("count", "points"), [(0, 0), (1, 0), (2, 2), (5, 2), (6, 5)])
def test_admissions_in_the_previous_12_months(count: int, points: int) -> None:
    assert admissions_points(count) == points
    earlier = admissions(count, every_days=30)
    outside = Visit(
        "Encounter/old", "IMP", "finished", ADMITTED - timedelta(days=370), ADMITTED - timedelta(days=368)
    )
    score = hospital(stay(), [*earlier, outside], NORMAL, [], ZONE)
    assert score is not None
    assert (score.components["T"].value, score.components["T"].points) == (count, points)


@pytest.mark.parametrize(("days", "points"), [(4, 0), (5, 2)])
def test_a_stay_of_five_days_or_more(days: int, points: int) -> None:
    score = hospital(stay(days), [], [lab("hb", HB, 13, 10), lab("na", NA, 140, 10)], [], ZONE)
    assert score is not None
    assert score.components["A"].points == points


def test_a_known_answer_high_risk_discharge() -> None:
    # Hb 10.5 (1) + oncology (2) + Na 131 (1) + procedure (1) + via the ED (1) + 3 admissions (2) + 6 days (2) = 10
    emergency = Visit("Encounter/ed", "EMER", "finished", ADMITTED - timedelta(hours=4), ADMITTED)
    earlier = admissions(3, every_days=60)
    score = hospital(
        stay(6, services=("clinical oncology",)),
        [emergency, *earlier],
        [lab("hb", HB, 10.5, 100), lab("na", NA, 131, 100)],
        [Performed("Procedure/p", ADMITTED + timedelta(days=2))],
        ZONE,
    )
    assert score is not None
    assert score.value == 10
    assert score.components["I"].basis == ["Encounter/stay", "Encounter/ed"]
