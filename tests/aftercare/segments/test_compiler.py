"""Segment criteria, compiled to SQL, select exactly the patients they describe (rows written here by
hand, evaluated on the real database)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from aftercare.segments.compiler import CompileContext, SegmentReferenceError, members_query
from aftercare.segments.evaluate import members, preview, segments_of_patient
from aftercare.store.segments import publish_segment
from models.segment import SegmentDefinition
from models.tables import (
    ClinicalAllergy,
    ClinicalAppointment,
    ClinicalCondition,
    ClinicalEncounter,
    ClinicalImmunization,
    ClinicalMedication,
    ClinicalObservation,
    ClinicalProcedure,
    ConsentEvent,
    InboundMessage,
    Message,
    Patient,
)

AS_OF = datetime(2024, 6, 1, 12, tzinfo=UTC)
DAY = timedelta(days=1)
SNOMED = "http://snomed.info/sct"
HBA1C = {"system": "http://loinc.org", "code": "4548-4"}
DIABETES = f"{SNOMED}|44054006"


def segment(criteria: dict[str, Any], key: str = "s", **extra: Any) -> SegmentDefinition:
    return SegmentDefinition.model_validate({"key": key, "name": key, "criteria": criteria, **extra})


def patient(identifier: str, **values: Any) -> Patient:
    return Patient(id=identifier, version_id="1", **values)


@pytest.fixture
async def people(sessions: async_sessionmaker[AsyncSession], empty_database: AsyncEngine) -> None:
    """ann (70, f, es, diabetic, HbA1c 9.6 now after 7.0), bob (40, m, en-US, HbA1c 7.1 after 9.8,
    discharged 3 days ago), cy (10, deceased, diabetic), dee (no birth date, missed appointment,
    contacted and replied, SMS revoked)."""
    async with sessions.begin() as session:
        session.add_all(
            [
                patient(
                    "ann",
                    birth_date=date(1954, 1, 1),
                    gender="female",
                    language="es",
                    address={"postalCode": "02139"},
                ),
                patient(
                    "bob",
                    birth_date=date(1984, 5, 1),
                    gender="male",
                    language="en-US",
                    address={"postalCode": "10001"},
                ),
                patient("cy", birth_date=date(2014, 1, 1), gender="male", deceased=True),
                patient("dee", gender="female"),
                ClinicalCondition(resource_id="c1", patient_id="ann", codes=[DIABETES], status="active"),
                ClinicalCondition(resource_id="c2", patient_id="bob", codes=[DIABETES], status="resolved"),
                ClinicalCondition(resource_id="c3", patient_id="cy", codes=[DIABETES], status="active"),
                ClinicalObservation(
                    resource_id="o1",
                    patient_id="ann",
                    codes=["http://loinc.org|4548-4"],
                    effective_at=AS_OF - 200 * DAY,
                    value_number=7.0,
                ),
                ClinicalObservation(
                    resource_id="o2",
                    patient_id="ann",
                    codes=["http://loinc.org|4548-4"],
                    effective_at=AS_OF - 10 * DAY,
                    value_number=9.6,
                ),
                ClinicalObservation(
                    resource_id="o3",
                    patient_id="bob",
                    codes=["http://loinc.org|4548-4"],
                    effective_at=AS_OF - 100 * DAY,
                    value_number=9.8,
                ),
                ClinicalObservation(
                    resource_id="o4",
                    patient_id="bob",
                    codes=["http://loinc.org|4548-4"],
                    effective_at=AS_OF - 5 * DAY,
                    value_number=7.1,
                ),
                ClinicalObservation(
                    resource_id="o5",
                    patient_id="bob",
                    codes=["http://loinc.org|4548-4"],
                    effective_at=AS_OF + 5 * DAY,
                    value_number=12.0,
                ),
                ClinicalEncounter(
                    resource_id="e1",
                    patient_id="bob",
                    class_code="IMP",
                    start_at=AS_OF - 6 * DAY,
                    end_at=AS_OF - 3 * DAY,
                    diagnosis_codes=[f"{SNOMED}|84114007"],
                ),
                ClinicalEncounter(
                    resource_id="e2",
                    patient_id="ann",
                    class_code="AMB",
                    start_at=AS_OF - 3 * DAY,
                    end_at=AS_OF - 3 * DAY,
                ),
                ClinicalMedication(
                    resource_id="m1",
                    patient_id="ann",
                    codes=["rx|1"],
                    status="active",
                    authored_at=AS_OF - 3 * DAY,
                ),
                ClinicalMedication(
                    resource_id="m2",
                    patient_id="bob",
                    codes=["rx|1"],
                    status="stopped",
                    authored_at=AS_OF - 3 * DAY,
                ),
                ClinicalProcedure(
                    resource_id="p1", patient_id="bob", codes=["sct|1"], performed_at=AS_OF - DAY
                ),
                ClinicalAllergy(resource_id="a1", patient_id="ann", codes=["sct|peanut"], status="active"),
                ClinicalAllergy(resource_id="a2", patient_id="bob", codes=["sct|peanut"], status="resolved"),
                ClinicalImmunization(
                    resource_id="i1",
                    patient_id="ann",
                    codes=["http://hl7.org/fhir/sid/cvx|140"],
                    occurred_at=AS_OF - 100 * DAY,
                ),
                ClinicalImmunization(
                    resource_id="i2",
                    patient_id="bob",
                    codes=["http://hl7.org/fhir/sid/cvx|140"],
                    occurred_at=AS_OF - 400 * DAY,
                ),
                ClinicalAppointment(
                    resource_id="ap1", patient_id="dee", status="noshow", start_at=AS_OF - 9 * DAY
                ),
                ClinicalAppointment(
                    resource_id="ap2", patient_id="ann", status="booked", start_at=AS_OF + 2 * DAY
                ),
                ClinicalAppointment(
                    resource_id="ap3", patient_id="bob", status="noshow", start_at=AS_OF - 40 * DAY
                ),
                Message(
                    id="msg1",
                    idempotency_key="k1",
                    patient_id="dee",
                    channel="sms",
                    status="delivered",
                    sent_at=AS_OF - 2 * DAY,
                ),
                Message(
                    id="msg2",
                    idempotency_key="k2",
                    patient_id="ann",
                    channel="email",
                    status="delivered",
                    sent_at=AS_OF - 20 * DAY,
                    opened_at=AS_OF - 19 * DAY,
                ),
                InboundMessage(
                    provider_message_id="in1",
                    provider="twilio",
                    channel="sms",
                    from_address="+1",
                    patient_id="dee",
                    received_at=AS_OF - DAY,
                ),
                ConsentEvent(
                    patient_id="dee",
                    channel="sms",
                    purpose="*",
                    status="granted",
                    source="t",
                    recorded_at=AS_OF - 30 * DAY,
                ),
                ConsentEvent(
                    patient_id="dee",
                    channel="sms",
                    purpose="*",
                    status="revoked",
                    source="t",
                    recorded_at=AS_OF - 2 * DAY,
                ),
                ConsentEvent(
                    patient_id="ann",
                    channel="sms",
                    purpose="*",
                    status="granted",
                    source="t",
                    recorded_at=AS_OF - 2 * DAY,
                ),
            ]
        )


async def who(
    sessions: async_sessionmaker[AsyncSession], criteria: dict[str, Any], **extra: Any
) -> list[str]:
    async with sessions() as session:
        return await members(session, segment(criteria, **extra), AS_OF)


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        ({"age": {"gte": 65}}, ["ann"]),
        ({"age": {"gte": 18, "lt": 65}}, ["bob"]),
        ({"not": {"age": {"gte": 18}}}, ["dee"]),  # no birth date: not an adult
        ({"gender": {"eq": "female"}}, ["ann", "dee"]),
        ({"language": {"in": ["en"]}}, ["bob"]),  # en-US is English
        ({"postal_code": {"eq": "02139"}}, ["ann"]),
        ({"condition": {"code": {"value_set": "diabetes"}, "clinical_status": "active"}}, ["ann"]),
        ({"condition": {"code": {"system": SNOMED, "code": "44054006"}}}, ["ann", "bob"]),
        ({"observation": {"code": HBA1C, "value": {"gt": 9}}}, ["ann"]),  # bob's latest is 7.1
        ({"observation": {"code": HBA1C, "latest": False, "value": {"gt": 9}}}, ["ann", "bob"]),
        ({"observation": {"code": HBA1C, "value": {"gt": 9}, "within": "P7D"}}, []),
        ({"observation": {"code": HBA1C, "within": "P7D"}}, ["bob"]),
        ({"encounter": {"class": "IMP", "discharged_within": "P7D"}}, ["bob"]),
        ({"encounter": {"discharged_within": "P7D"}}, ["ann", "bob"]),
        ({"encounter": {"diagnosis": {"value_set": "heart-failure"}}}, ["bob"]),
        ({"medication": {"authored_within": "P14D"}}, ["ann"]),  # active by default
        ({"procedure": {"code": {"system": "sct", "code": "1"}, "within": "P7D"}}, ["bob"]),
        ({"allergy": {"code": {"system": "sct", "code": "peanut"}}}, ["ann"]),
        ({"immunization": {"code": {"value_set": "influenza-vaccine"}, "within": "P365D"}}, ["ann"]),
        ({"appointment": {"missed_within": "P30D"}}, ["dee"]),
        ({"appointment": {"upcoming_within": "P7D"}}, ["ann"]),
        ({"engagement": {"contacted_within": "P7D"}}, ["dee"]),
        ({"engagement": {"contacted_within": "P30D", "replied_within": "P7D"}}, ["dee"]),
        ({"engagement": {"opened_within": "P30D"}}, ["ann"]),
        ({"consent": {"channel": "sms", "status": "revoked"}}, ["dee"]),
        ({"consent": {"channel": "sms", "purpose": "surveys", "status": "granted"}}, ["ann"]),
        ({"any": [{"age": {"gte": 65}}, {"gender": {"eq": "male"}}]}, ["ann", "bob"]),
        ({"all": [{"gender": {"eq": "female"}}, {"not": {"age": {"gte": 65}}}]}, ["dee"]),
    ],
)
async def test_each_criterion_selects_the_patients_it_describes(
    sessions: async_sessionmaker[AsyncSession], people: None, criteria: dict[str, Any], expected: list[str]
) -> None:
    assert await who(sessions, criteria) == expected


async def test_the_deceased_are_left_out_unless_the_segment_includes_them(
    sessions: async_sessionmaker[AsyncSession], people: None
) -> None:
    active_diabetes = {"condition": {"code": {"value_set": "diabetes"}, "clinical_status": "active"}}
    assert await who(sessions, active_diabetes) == ["ann"]
    assert await who(sessions, active_diabetes, include_deceased=True) == ["ann", "cy"]


async def test_membership_of_another_segment_is_its_criteria_at_the_same_time(
    sessions: async_sessionmaker[AsyncSession], people: None
) -> None:
    async with sessions.begin() as session:
        await publish_segment(session, segment({"age": {"gte": 18}}, key="adults"))
    assert await who(sessions, {"all": [{"segment": "adults"}, {"gender": {"eq": "male"}}]}) == ["bob"]
    assert await who(sessions, {"not": {"segment": "adults"}}) == ["dee"]


async def test_a_missing_or_circular_segment_reference_is_refused(
    sessions: async_sessionmaker[AsyncSession], people: None
) -> None:
    with pytest.raises(SegmentReferenceError, match="no segment 'nowhere'"):
        members_query(segment({"segment": "nowhere"}), CompileContext(as_of=AS_OF))
    loop = {"a": segment({"segment": "b"}, key="a"), "b": segment({"segment": "a"}, key="b")}
    with pytest.raises(SegmentReferenceError, match="a → b → a"):
        members_query(loop["a"], CompileContext(as_of=AS_OF, segments=loop))


async def test_a_segment_is_evaluated_by_one_sql_statement(
    sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine, people: None
) -> None:
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    definition = segment(
        {
            "all": [
                {"age": {"gte": 18}},
                {
                    "any": [
                        {"observation": {"code": HBA1C, "value": {"gt": 9}}},
                        {"not": {"segment": "adults"}},
                    ]
                },
            ]
        }
    )
    async with sessions.begin() as session:
        await publish_segment(session, segment({"age": {"gte": 18}}, key="adults"))
    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        async with sessions() as session:
            assert await members(session, definition, AS_OF) == ["ann"]
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    queries = [sql for sql in statements if not sql.startswith("SET") and "FROM segments" not in sql]
    assert len(queries) == 1
    assert queries[0].startswith("SELECT patients.id")


async def test_preview_counts_each_criterion_on_its_own_and_explains_it_in_words(
    sessions: async_sessionmaker[AsyncSession], people: None
) -> None:
    definition = segment(
        {"all": [{"gender": {"eq": "female"}}, {"not": {"observation": {"code": HBA1C, "value": {"gt": 9}}}}]}
    )
    async with sessions() as session:
        result = await preview(session, definition, AS_OF, sample_size=10)
    assert (result.count, result.sample) == (1, ["dee"])
    assert [(c.path, c.description, c.count) for c in result.criteria] == [
        ("criteria", "all of 2 criteria", 1),
        ("criteria.all[0]", "gender = female", 2),
        ("criteria.all[1]", "not: latest observation 4548-4 > 9", 2),
        ("criteria.all[1].not", "latest observation 4548-4 > 9", 1),
    ]


async def test_the_segments_of_one_patient(sessions: async_sessionmaker[AsyncSession], people: None) -> None:
    definitions = [
        segment({"age": {"gte": 65}}, key="seniors"),
        segment({"encounter": {"class": "IMP", "discharged_within": "P7D"}}, key="discharged"),
        segment({"observation": {"code": HBA1C, "value": {"gt": 9}}}, key="a1c-high"),
    ]
    async with sessions() as session:
        assert await segments_of_patient(session, "ann", definitions, AS_OF) == ["seniors", "a1c-high"]
        assert await segments_of_patient(session, "bob", definitions, AS_OF) == ["discharged"]
        assert await segments_of_patient(session, "cy", definitions, AS_OF) == []
        assert await segments_of_patient(session, "nobody", definitions, AS_OF) == []
