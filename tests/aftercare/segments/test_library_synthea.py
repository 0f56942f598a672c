"""Each predefined segment, evaluated over the whole Synthea sample, has exactly the members computed
here from the source files (`synthea_facts`), at an evaluation time chosen from the data so that the
"relative to now" windows fall on Synthea's dates."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aftercare.bulk.files import import_files
from aftercare.db.engine import create_engine, session_factory
from aftercare.segments.evaluate import members
from aftercare.segments.library import library_segment, segment_library
from tests.aftercare.segments.synthea_facts import (
    PatientFacts,
    age,
    codes,
    instant,
    observations,
    status_code,
    synthea_patients,
)
from tests.conftest import SYNTHEA_BULK, SYNTHEA_BUNDLES, create_test_database, drop_test_database

SNOMED = "http://snomed.info/sct|"
HEART_FAILURE_OR_COPD = {
    SNOMED + code for code in ("84114007", "88805009", "42343007", "13645005", "185086009", "87433001")
}
DIABETES = {SNOMED + code for code in ("44054006", "46635009", "73211009")}
HYPERTENSION = {SNOMED + "59621000", SNOMED + "38341003"}
HBA1C = {"http://loinc.org|4548-4", "http://loinc.org|17856-6"}
SYSTOLIC, DIASTOLIC = {"http://loinc.org|8480-6"}, {"http://loinc.org|8462-4"}
FLU = {
    f"http://hl7.org/fhir/sid/cvx|{code}"
    for code in (
        "88",
        "140",
        "141",
        "150",
        "153",
        "155",
        "158",
        "161",
        "166",
        "168",
        "171",
        "185",
        "186",
        "197",
        "205",
    )
}
DAY = timedelta(days=1)


@pytest.fixture(scope="module")
def synthea_database(postgres_server: str) -> Iterator[str]:
    """A database of its own holding the whole Synthea sample (never truncated by other tests)."""
    url = create_test_database(postgres_server)
    yield url
    drop_test_database(postgres_server, url)


@pytest.fixture(scope="module")
async def synthea_sessions(synthea_database: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the Synthea database, loaded once with the bulk importer."""
    engine = create_engine(synthea_database, pool_size=2)
    sessions = session_factory(engine)
    await import_files(sessions, [SYNTHEA_BUNDLES, SYNTHEA_BULK], phone_region="US")
    yield sessions
    await engine.dispose()


def alive() -> list[PatientFacts]:
    return [patient for patient in synthea_patients().values() if not patient.deceased]


def active_condition(patient: PatientFacts, tokens: set[str]) -> bool:
    return any(
        codes(c.get("code")) & tokens and status_code(c.get("clinicalStatus")) == "active"
        for c in patient.resources["Condition"]
    )


def inpatient_ends(patient: PatientFacts) -> list[datetime]:
    return [
        end
        for e in patient.resources["Encounter"]
        if e.get("class", {}).get("code") == "IMP" and (end := instant(e.get("period", {}).get("end")))
    ]


def latest_value(patient: PatientFacts, tokens: set[str], as_of: datetime, window: timedelta) -> float | None:
    found = [(when, value) for when, value in observations(patient, tokens) if as_of - window < when <= as_of]
    return max(found, key=lambda item: item[0])[1] if found else None


def within(moment: datetime | None, as_of: datetime, window: timedelta) -> bool:
    return moment is not None and as_of - window < moment <= as_of


def expected(as_of: datetime, rule: Callable[[PatientFacts], bool]) -> list[str]:
    return sorted(patient.id for patient in alive() if rule(patient))


async def evaluate(sessions: async_sessionmaker[AsyncSession], key: str, as_of: datetime) -> list[str]:
    segment = library_segment(key)
    assert segment is not None
    async with sessions() as session:
        found = await members(session, segment, as_of)
    print(f"\n{key} at {as_of:%Y-%m-%d}: {len(found)} of {len(alive())} living patients")
    return found


def test_the_library_ships_the_seven_predefined_segments() -> None:
    assert [segment.key for segment in segment_library()] == [
        "diabetes-hba1c-above-9",
        "discharged-last-7-days",
        "hypertension-uncontrolled",
        "influenza-vaccination-due",
        "missed-appointment-30-days",
        "new-medication-14-days",
        "readmission-risk-30-day",
    ]


async def test_discharged_in_the_last_7_days(synthea_sessions: async_sessionmaker[AsyncSession]) -> None:
    as_of = max(end for patient in alive() for end in inpatient_ends(patient)) + 2 * DAY
    want = expected(as_of, lambda p: any(within(end, as_of, 7 * DAY) for end in inpatient_ends(p)))
    assert want
    assert await evaluate(synthea_sessions, "discharged-last-7-days", as_of) == want


async def test_30_day_readmission_risk(synthea_sessions: async_sessionmaker[AsyncSession]) -> None:
    at_risk = [p for p in alive() if active_condition(p, HEART_FAILURE_OR_COPD)]
    ends = [end for patient in at_risk for end in inpatient_ends(patient)]
    as_of = (max(ends) if ends else datetime(2020, 1, 1, tzinfo=UTC)) + DAY
    want = expected(
        as_of,
        lambda p: (
            active_condition(p, HEART_FAILURE_OR_COPD)
            and any(within(end, as_of, 30 * DAY) for end in inpatient_ends(p))
        ),
    )
    assert bool(want) == bool(ends)
    assert await evaluate(synthea_sessions, "readmission-risk-30-day", as_of) == want


async def test_diabetes_with_hba1c_above_9(synthea_sessions: async_sessionmaker[AsyncSession]) -> None:
    diabetic = [p for p in alive() if active_condition(p, DIABETES)]
    times = [when for p in diabetic for when, _ in observations(p, HBA1C)]
    high = [
        when for p in diabetic for when, value in observations(p, HBA1C) if value is not None and value > 9
    ]
    as_of = max(high or times) + DAY

    def rule(patient: PatientFacts) -> bool:
        value = latest_value(patient, HBA1C, as_of, 365 * DAY)
        return active_condition(patient, DIABETES) and value is not None and value > 9

    want = expected(as_of, rule)
    assert bool(want) == bool(high)
    assert await evaluate(synthea_sessions, "diabetes-hba1c-above-9", as_of) == want


async def test_hypertension_not_controlled(synthea_sessions: async_sessionmaker[AsyncSession]) -> None:
    hypertensive = [p for p in alive() if active_condition(p, HYPERTENSION)]
    as_of = max(when for p in hypertensive for when, _ in observations(p, SYSTOLIC)) + DAY

    def rule(patient: PatientFacts) -> bool:
        systolic = latest_value(patient, SYSTOLIC, as_of, 365 * DAY)
        diastolic = latest_value(patient, DIASTOLIC, as_of, 365 * DAY)
        return active_condition(patient, HYPERTENSION) and (
            (systolic is not None and systolic >= 140) or (diastolic is not None and diastolic >= 90)
        )

    assert await evaluate(synthea_sessions, "hypertension-uncontrolled", as_of) == expected(as_of, rule)


async def test_due_for_influenza_vaccination(synthea_sessions: async_sessionmaker[AsyncSession]) -> None:
    as_of = datetime(2020, 1, 1, tzinfo=UTC)

    def rule(patient: PatientFacts) -> bool:
        years = age(patient.birth_date, as_of.date())
        vaccinated = any(
            codes(i.get("vaccineCode")) & FLU
            and within(instant(i.get("occurrenceDateTime")), as_of, 365 * DAY)
            for i in patient.resources["Immunization"]
        )
        return years is not None and years >= 1 and not vaccinated

    want = expected(as_of, rule)
    got = await evaluate(synthea_sessions, "influenza-vaccination-due", as_of)
    assert got == want
    assert 0 < len(got) < len(alive())


async def test_missed_appointment_in_the_last_30_days(
    synthea_sessions: async_sessionmaker[AsyncSession],
) -> None:
    # Synthea has no Appointments: nobody is in the segment (its logic is specified in test_compiler).
    as_of = datetime(2020, 1, 1, tzinfo=UTC)
    assert not any(p.resources["Appointment"] for p in alive())
    assert await evaluate(synthea_sessions, "missed-appointment-30-days", as_of) == []


async def test_new_medication_in_the_last_14_days(synthea_sessions: async_sessionmaker[AsyncSession]) -> None:
    authored = [
        instant(m.get("authoredOn"))
        for p in alive()
        for m in p.resources["MedicationRequest"]
        if m.get("status") == "active"
    ]
    as_of = max(when for when in authored if when is not None) + DAY
    want = expected(
        as_of,
        lambda p: any(
            m.get("status") == "active" and within(instant(m.get("authoredOn")), as_of, 14 * DAY)
            for m in p.resources["MedicationRequest"]
        ),
    )
    assert want
    assert await evaluate(synthea_sessions, "new-medication-14-days", as_of) == want
