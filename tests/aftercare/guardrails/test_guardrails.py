"""The guardrails, rule by rule, through the send activity (the one place every send passes through):
each decision is recorded with the rule that made it, and only an allowed send records a message."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment

from activities.messaging.outbox import OutboxProvider
from activities.messaging.providers import ProviderRegistry
from activities.messaging.send import MessagingActivities
from aftercare.guardrails import FrequencyCap, GuardrailPolicy
from aftercare.guardrails.quiet_hours import quiet_until
from aftercare.store.consents import record_consent
from aftercare.store.fhir_consents import record_fhir_consents
from models.journey import SendSpec
from models.tables import ConsentEvent, Message, Patient, SendDecision
from models.temporal import SendMessageInput, SendMessageResult
from tests.conftest import ABDUL_PATIENT_ID
from tests.helpers import ingest_patient, load_synthea_patient, publish_templates, send_request

pytestmark = pytest.mark.usefixtures("empty_database")

QUIET = (time(21), time(8))
# 03:00 in New York, and 00:00 in Los Angeles, on a winter night still ahead of the test's clock.
NIGHT = datetime(2027, 1, 15, 8, 0, tzinfo=UTC)


def activities(sessions: async_sessionmaker[AsyncSession], **policy: Any) -> MessagingActivities:
    return MessagingActivities(
        sessions, ProviderRegistry({}, OutboxProvider()), "America/New_York", GuardrailPolicy(**policy)
    )


def sms(body: str = "Hi {{ patient.given }}", **fields: Any) -> SendMessageInput:
    return send_request(SendSpec(channel="sms", body=body, **fields))


async def send(
    sessions: async_sessionmaker[AsyncSession], request: SendMessageInput, **policy: Any
) -> SendMessageResult:
    return await ActivityEnvironment().run(activities(sessions, **policy).send_message, request)


async def decisions(sessions: async_sessionmaker[AsyncSession]) -> list[SendDecision]:
    async with sessions() as session:
        return list(await session.scalars(select(SendDecision).order_by(SendDecision.id)))


async def messages(sessions: async_sessionmaker[AsyncSession]) -> list[Message]:
    async with sessions() as session:
        return list(await session.scalars(select(Message).order_by(Message.created_at)))


async def consent(
    sessions: async_sessionmaker[AsyncSession], channel: str, purpose: str, status: str
) -> None:
    async with sessions.begin() as session:
        await record_consent(session, [ABDUL_PATIENT_ID], channel, status, "test", purpose=purpose)


async def test_an_allowed_send_is_logged_as_sent_with_its_message(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await load_synthea_patient(sessions)
    result = await send(sessions, sms())
    [decision] = await decisions(sessions)
    assert (result.status, decision.decision, decision.rule, decision.purpose) == (
        "sent",
        "sent",
        "allowed",
        "care_coordination",
    )
    assert decision.message_id == result.message_id


async def test_consent_withdrawn_for_a_purpose_suppresses_only_that_purpose(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await load_synthea_patient(sessions)
    await consent(sessions, "sms", "surveys", "revoked")
    survey = await send(sessions, sms(purpose="surveys"))
    other = await send(sessions, send_request(SendSpec(channel="sms", body="Hi"), step="other"))
    assert (survey.status, other.status) == ("skipped", "sent")
    first, second = await decisions(sessions)
    assert (first.decision, first.rule, first.purpose) == ("suppressed", "consent", "surveys")
    assert second.decision == "sent"


async def test_marketing_needs_an_opt_in_for_marketing_itself(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await load_synthea_patient(sessions)
    await consent(sessions, "sms", "*", "granted")  # a START text is no opt-in to marketing
    assert (await send(sessions, sms(purpose="marketing"))).status == "skipped"
    await consent(sessions, "*", "marketing", "granted")
    assert (
        await send(sessions, send_request(SendSpec(channel="sms", body="x", purpose="marketing"), step="b"))
    ).status == "sent"
    assert [d.decision for d in await decisions(sessions)] == ["suppressed", "sent"]


async def test_a_phi_template_sends_its_non_phi_variant_without_phi_consent_and_the_text_with_it(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await load_synthea_patient(sessions)
    await publish_templates(
        sessions,
        {
            "key": "a1c",
            "channel": "sms",
            "phi": True,
            "body": "Your HbA1c is high",
            "non_phi_body": "Please call us",
        },
        {"key": "dx", "channel": "sms", "phi": True, "body": "About your diabetes"},
    )
    without = await send(sessions, send_request(SendSpec(template="a1c"), step="one"))
    skipped = await send(sessions, send_request(SendSpec(template="dx"), step="two"))
    await consent(sessions, "sms", "phi", "granted")
    consented = await send(sessions, send_request(SendSpec(template="a1c"), step="three"))
    assert (without.status, skipped.status, consented.status) == ("sent", "skipped", "sent")
    assert [m.body for m in await messages(sessions) if m.status == "sent"] == [
        "Please call us",
        "Your HbA1c is high",
    ]
    assert [(d.decision, d.rule) for d in await decisions(sessions)] == [
        ("sent", "phi"),
        ("skipped", "phi"),
        ("sent", "allowed"),
    ]


async def test_a_send_in_quiet_hours_is_deferred_to_their_end_in_the_patients_zone(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await load_synthea_patient(sessions)
    result = await send(sessions, sms().model_copy(update={"due_at": NIGHT}), quiet_hours=QUIET)
    assert (result.status, result.rule) == ("deferred", "quiet_hours")
    assert result.defer_until == datetime(2027, 1, 15, 13, 0, tzinfo=UTC)  # 08:00 EST
    assert await messages(sessions) == []
    [decision] = await decisions(sessions)
    assert (decision.decision, decision.defer_until) == ("deferred", result.defer_until)


async def test_a_patient_without_a_time_zone_keeps_the_hospitals_quiet_hours(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await load_synthea_patient(sessions)
    result = await send(
        sessions,
        sms().model_copy(update={"due_at": NIGHT}),
        quiet_hours=QUIET,
        hospital_timezone="America/Los_Angeles",
    )
    assert result.defer_until == datetime(2027, 1, 15, 16, 0, tzinfo=UTC)  # 08:00 PST


async def test_an_urgent_send_overrides_quiet_hours_and_says_so(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await load_synthea_patient(sessions)
    result = await send(sessions, sms(urgent=True).model_copy(update={"due_at": NIGHT}), quiet_hours=QUIET)
    assert result.status == "sent"
    [decision] = await decisions(sessions)
    assert (decision.decision, decision.rule) == ("sent", "quiet_hours_override")


async def test_the_patients_own_quiet_hours_apply(
    sessions: async_sessionmaker[AsyncSession], api: Any
) -> None:
    await load_synthea_patient(sessions)
    answer = await api.put(f"/v1/patients/{ABDUL_PATIENT_ID}/consents", json={"quiet_hours": "none"})
    assert answer.status_code == 200
    assert answer.json()["quiet_hours"] == "none"
    result = await send(sessions, sms().model_copy(update={"due_at": NIGHT}), quiet_hours=QUIET)
    assert result.status == "sent"


@pytest.mark.parametrize(
    ("now", "until"),
    [
        # Spring forward (8 March 2026): 08:00 EDT is 12:00 UTC, an hour after 08:00 EST would be.
        (datetime(2026, 3, 8, 5, 0, tzinfo=UTC), datetime(2026, 3, 8, 12, 0, tzinfo=UTC)),
        # Fall back (1 November 2026): 08:00 EST is 13:00 UTC.
        (datetime(2026, 11, 1, 5, 0, tzinfo=UTC), datetime(2026, 11, 1, 13, 0, tzinfo=UTC)),
        # 21:30 EST the evening before the change: the next morning's 08:00 EDT.
        (datetime(2026, 3, 8, 2, 30, tzinfo=UTC), datetime(2026, 3, 8, 12, 0, tzinfo=UTC)),
        # 12:00 local: not quiet.
        (datetime(2026, 3, 8, 16, 0, tzinfo=UTC), None),
    ],
)
def test_quiet_hours_end_at_the_local_wall_clock_time_on_dst_change_days(
    now: datetime, until: datetime | None
) -> None:
    assert quiet_until(now, QUIET, "America/New_York") == until


async def test_two_journeys_sending_at_the_same_instant_against_a_cap_of_one_send_exactly_one(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await load_synthea_patient(sessions)
    caps = (FrequencyCap(per_day=1),)
    first, second = (
        send_request(SendSpec(channel="sms", body="Hi"), enrollment_id=f"enr-{n}", journey_key=f"j{n}")
        for n in (1, 2)
    )
    results = await asyncio.gather(send(sessions, first, caps=caps), send(sessions, second, caps=caps))
    assert sorted(result.status for result in results) == ["deferred", "sent"]
    deferred = next(result for result in results if result.status == "deferred")
    assert deferred.rule == "frequency_cap"
    assert deferred.defer_until is not None
    assert len(await messages(sessions)) == 1
    assert sorted((d.decision, d.rule) for d in await decisions(sessions)) == [
        ("deferred", "frequency_cap"),
        ("sent", "allowed"),
    ]


async def test_an_over_cap_send_of_a_dropping_journey_is_skipped_with_the_reason(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await load_synthea_patient(sessions)
    caps = (FrequencyCap(channel="sms", per_week=1),)
    await send(sessions, sms(), caps=caps)
    dropped = await send(
        sessions,
        send_request(SendSpec(channel="sms", body="x"), step="b").model_copy(update={"over_cap": "drop"}),
        caps=caps,
    )
    assert dropped.status == "skipped"
    assert "frequency cap" in (dropped.reason or "")


async def test_a_deceased_patient_is_never_messaged(sessions: async_sessionmaker[AsyncSession]) -> None:
    patient = await load_synthea_patient(sessions)
    await ingest_patient(sessions, {**patient, "deceasedDateTime": "2026-01-01T00:00:00Z"})
    assert (await send(sessions, sms())).status == "skipped"
    [decision] = await decisions(sessions)
    assert (decision.decision, decision.rule) == ("suppressed", "deceased")


async def test_a_minor_needs_a_guardian_contact(sessions: async_sessionmaker[AsyncSession]) -> None:
    patient = await load_synthea_patient(sessions)
    async with sessions.begin() as session:
        await session.execute(update(Patient).values(birth_date=date(2020, 1, 1)))
    assert (await send(sessions, sms(), minor_age=18)).status == "skipped"
    guardian = {
        "relationship": [{"coding": [{"code": "GUARD"}]}],
        "telecom": [{"system": "phone", "value": "1"}],
    }
    await ingest_patient(sessions, {**patient, "birthDate": "2020-01-01", "contact": [guardian]})
    assert (
        await send(sessions, send_request(SendSpec(channel="sms", body="x"), step="b"), minor_age=18)
    ).status == "sent"
    assert [(d.decision, d.rule) for d in await decisions(sessions)] == [
        ("suppressed", "minor"),
        ("sent", "allowed"),
    ]


async def test_a_bounced_or_stopped_address_is_never_messaged(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await load_synthea_patient(sessions)
    from aftercare.store.suppressions import suppress

    async with sessions.begin() as session:
        await suppress(session, "sms", "+15559784581", "stop", source="test")
    assert (await send(sessions, sms())).status == "skipped"
    [decision] = await decisions(sessions)
    assert (decision.decision, decision.rule) == ("skipped", "reachability")
    assert "STOP" in (decision.reason or "")


async def test_a_fhir_consent_is_imported_into_the_history(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    deny_marketing_sms = {
        "resourceType": "Consent",
        "id": "c1",
        "status": "active",
        "patient": {"reference": f"Patient/{ABDUL_PATIENT_ID}"},
        "provision": {
            "type": "deny",
            "code": [{"coding": [{"code": "sms"}]}],
            "purpose": [{"code": "HMARKT"}],
        },
    }
    async with sessions.begin() as session:
        await record_fhir_consents(session, [deny_marketing_sms, {**deny_marketing_sms, "status": "draft"}])
    async with sessions() as session:
        [event] = await session.scalars(select(ConsentEvent))
    assert (event.channel, event.purpose, event.status, event.source, event.detail) == (
        "sms",
        "marketing",
        "revoked",
        "fhir",
        "Consent/c1",
    )
