"""The send activity: compose, record the intent, call the provider; never the same send twice.

Twilio runs as the real `twilio` SDK against Prism serving Twilio's own OpenAPI spec.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import delete, event, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.messaging.outbox import OutboxProvider
from activities.messaging.providers import ProviderRegistry
from activities.messaging.send import MessagingActivities
from activities.messaging.twilio_sms import TwilioSmsProvider
from aftercare.store.consents import ALL_PURPOSES, record_consent
from aftercare.store.suppressions import suppress
from models.journey import DEFAULT_PURPOSE, SendSpec
from models.tables import Message, Patient, SendDecision, Template
from models.temporal import ClosingProjection, ProgressUpdate, SendMessageInput
from tests.conftest import ABDUL_PATIENT_ID
from tests.helpers import (
    TWILIO_ACCOUNT_SID,
    RecordingProvider,
    load_synthea_patient,
    publish_templates,
    send_request,
)

pytestmark = pytest.mark.usefixtures("empty_database")


def twilio(base_url: str, **options: Any) -> RecordingProvider:
    return RecordingProvider(
        TwilioSmsProvider(TWILIO_ACCOUNT_SID, "auth-token", "+15005550006", base_url=base_url, **options)
    )


def request(step: str = "notify", visit: int = 1, body: str = "Hi {{ patient.given }}") -> SendMessageInput:
    return send_request(SendSpec(channel="sms", body=body), step=step, visit=visit)


async def rows(sessions: async_sessionmaker[AsyncSession]) -> list[Message]:
    async with sessions() as session:
        return list(await session.scalars(select(Message)))


async def test_an_outbox_send_is_recorded_as_sent_with_the_rendered_body(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await load_synthea_patient(sessions)
    activities = MessagingActivities(sessions, ProviderRegistry({}, OutboxProvider()))
    result = await ActivityEnvironment().run(activities.send_message, request())
    [message] = await rows(sessions)
    assert (result.status, message.status, message.provider) == ("sent", "sent", "outbox")
    assert (message.to, message.body) == ("+15559784581", "Hi Abdul")
    assert message.idempotency_key == "enr-1/notify/1"


async def test_a_retried_send_returns_the_first_result_without_calling_the_provider_again(
    sessions: async_sessionmaker[AsyncSession],
    twilio_mock: str,
) -> None:
    await load_synthea_patient(sessions)
    provider = twilio(twilio_mock)
    activities = MessagingActivities(sessions, ProviderRegistry({"sms": provider}, OutboxProvider()))
    first = await ActivityEnvironment().run(activities.send_message, request())
    second = await ActivityEnvironment().run(activities.send_message, request())

    assert first == second
    assert provider.calls == ["send"]
    [message] = await rows(sessions)
    assert message.status == "queued"
    assert (message.provider_message_id or "").startswith("SM")
    assert message.attempts == 1


async def test_an_interrupted_provider_call_is_looked_up_before_sending_again(
    sessions: async_sessionmaker[AsyncSession],
    twilio_mock: str,
) -> None:
    await load_synthea_patient(sessions)
    provider = twilio(twilio_mock)
    activities = MessagingActivities(sessions, ProviderRegistry({"sms": provider}, OutboxProvider()))
    outbox_only = MessagingActivities(sessions, ProviderRegistry({}, OutboxProvider()))
    # A worker recorded the intent and marked it `sending`, then died before hearing back.
    await ActivityEnvironment().run(outbox_only.send_message, request())
    async with sessions.begin() as session:
        await session.execute(
            update(Message).values(status="sending", provider=None, provider_message_id=None)
        )

    result = await ActivityEnvironment().run(activities.send_message, request())

    assert provider.calls == ["find_sent", "send"]
    assert result.status == "queued"
    assert len(await rows(sessions)) == 1


async def test_a_provider_refusal_is_recorded_with_its_reason_and_not_retried(
    sessions: async_sessionmaker[AsyncSession],
    twilio_mock: str,
) -> None:
    await load_synthea_patient(sessions)
    provider = twilio(twilio_mock, status_callback="not a url")
    activities = MessagingActivities(sessions, ProviderRegistry({"sms": provider}, OutboxProvider()))
    result = await ActivityEnvironment().run(activities.send_message, request())

    assert result.status == "failed"
    assert "422" in (result.reason or "")
    [message] = await rows(sessions)
    assert (message.status, message.sent_at) == ("failed", None)


async def test_a_patient_without_a_phone_is_skipped_with_the_reason(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await load_synthea_patient(sessions)
    async with sessions.begin() as session:
        await session.execute(update(Patient).values(phone=None, phone_status="missing"))
    activities = MessagingActivities(sessions, ProviderRegistry({}, OutboxProvider()))
    result = await ActivityEnvironment().run(activities.send_message, request())
    assert result.status == "skipped"
    assert result.reason == "the patient has no phone number"


async def test_a_render_failure_is_permanent_and_records_nothing(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await load_synthea_patient(sessions)
    activities = MessagingActivities(sessions, ProviderRegistry({}, OutboxProvider()))
    with pytest.raises(ApplicationError) as error:
        await ActivityEnvironment().run(activities.send_message, request(body="Hi {{ patient.nickname }}"))
    assert (error.value.type, error.value.non_retryable) == ("TemplateRenderError", True)
    assert await rows(sessions) == []


async def test_a_send_reads_only_the_variables_its_texts_name(
    sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> None:
    await load_synthea_patient(sessions)
    activities = MessagingActivities(sessions, ProviderRegistry({}, OutboxProvider()))
    read: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        read.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", note)
    try:
        await ActivityEnvironment().run(activities.send_message, request())
        plain = list(read)
        read.clear()
        await ActivityEnvironment().run(
            activities.send_message, request(step="risk", body="Hi {{ patient.given }} {{ risk.band }}")
        )
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", note)
    assert not [s for s in plain if "risk_scores" in s or "tcm_episodes" in s]
    assert [s for s in read if "risk_scores" in s]
    assert not [s for s in read if "tcm_episodes" in s]


async def test_a_send_for_a_patient_the_store_does_not_know_fails_for_good(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    activities = MessagingActivities(sessions, ProviderRegistry({}, OutboxProvider()))
    with pytest.raises(ApplicationError) as failure:
        await ActivityEnvironment().run(activities.send_message, request())
    assert (failure.value.type, failure.value.non_retryable) == ("PatientNotFound", True)
    assert await rows(sessions) == []


async def test_a_suppressed_address_is_skipped_with_the_reason(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await load_synthea_patient(sessions)
    async with sessions.begin() as session:
        await suppress(session, "sms", "+15559784581", "stop", source="twilio")
    activities = MessagingActivities(sessions, ProviderRegistry({}, OutboxProvider()))
    result = await ActivityEnvironment().run(activities.send_message, request())
    [message] = await rows(sessions)
    assert (result.status, message.status) == ("skipped", "skipped")
    assert message.reason == "the number texted STOP (suppressed)"


async def test_a_closing_send_without_an_enrollment_row_still_sends_and_leaves_the_projection_to_the_journey(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await load_synthea_patient(sessions)
    activities = MessagingActivities(sessions, ProviderRegistry({}, OutboxProvider()))
    closing = ClosingProjection(
        progress=ProgressUpdate(enrollment_id="enr-1", status="completed", outcome="completed"), seq=1
    )
    result = await ActivityEnvironment().run(
        activities.send_message, request().model_copy(update={"closing": closing})
    )
    [message] = await rows(sessions)
    assert (result.status, result.projected, message.status) == ("sent", False, "sent")


FOLLOW_UP = {"key": "follow-up", "channel": "sms", "locale": "en"}


def template_send(visit: int) -> SendMessageInput:
    return send_request(SendSpec(template="follow-up"), visit=visit)


async def first_template_version_sent(sessions: async_sessionmaker[AsyncSession]) -> MessagingActivities:
    """Abdul, the follow-up template's first version, and its first send (visit 1)."""
    await load_synthea_patient(sessions)
    activities = MessagingActivities(sessions, ProviderRegistry({}, OutboxProvider()))
    await publish_templates(sessions, FOLLOW_UP | {"body": "Hi {{ patient.given }}"})
    await ActivityEnvironment().run(activities.send_message, template_send(1))
    return activities


async def test_a_new_template_version_is_used_by_the_very_next_send_and_a_known_one_is_not_read_again(
    sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> None:
    activities = await first_template_version_sent(sessions)
    await publish_templates(sessions, FOLLOW_UP | {"body": "Hello {{ patient.given }}, version two"})
    await ActivityEnvironment().run(activities.send_message, template_send(2))
    read: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        read.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", note)
    try:
        await ActivityEnvironment().run(activities.send_message, template_send(3))
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", note)

    sent = {m.idempotency_key: (m.template_version, m.body) for m in await rows(sessions)}
    assert sent["enr-1/notify/1"] == (1, "Hi Abdul")
    assert sent["enr-1/notify/2"] == (2, "Hello Abdul, version two")
    assert sent["enr-1/notify/3"] == (2, "Hello Abdul, version two")
    # The third send found version 2 cached: only its first statement names the templates.
    assert len([s for s in read if "templates" in s]) == 1


async def test_a_rebuilt_database_with_other_content_under_the_same_version_is_not_served_from_the_cache(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    activities = await first_template_version_sent(sessions)
    async with sessions.begin() as session:
        await session.execute(delete(Template))
    await publish_templates(sessions, FOLLOW_UP | {"body": "Other content, {{ patient.given }}"})
    await ActivityEnvironment().run(activities.send_message, template_send(2))
    sent = {m.idempotency_key: (m.template_version, m.body) for m in await rows(sessions)}
    assert sent == {"enr-1/notify/1": (1, "Hi Abdul"), "enr-1/notify/2": (1, "Other content, Abdul")}


@pytest.mark.parametrize(
    ("purpose", "outcome"),
    [
        # Withdrawn for every purpose: the channel is unreachable.
        (ALL_PURPOSES, ("skipped", "the patient withdrew consent (test)")),
        # Withdrawn for the send's purpose: the consent rule suppresses it.
        (DEFAULT_PURPOSE, ("skipped", f"the patient withdrew consent for {DEFAULT_PURPOSE} by sms (test)")),
    ],
)
async def test_a_revoked_consent_blocks_the_very_next_send(
    sessions: async_sessionmaker[AsyncSession], purpose: str, outcome: tuple[str, str]
) -> None:
    await load_synthea_patient(sessions)
    activities = MessagingActivities(sessions, ProviderRegistry({}, OutboxProvider()))
    first = await ActivityEnvironment().run(activities.send_message, request(visit=1))
    async with sessions.begin() as session:
        await record_consent(session, [ABDUL_PATIENT_ID], "sms", "revoked", "test", purpose=purpose)
    second = await ActivityEnvironment().run(activities.send_message, request(visit=2))
    async with sessions.begin() as session:
        await record_consent(session, [ABDUL_PATIENT_ID], "sms", "granted", "test", purpose=purpose)
    third = await ActivityEnvironment().run(activities.send_message, request(visit=3))
    assert (first.status, (second.status, second.reason), third.status) == ("sent", outcome, "sent")


async def test_a_send_logs_its_decision_once_with_its_message_and_a_retry_logs_nothing_more(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await load_synthea_patient(sessions)
    activities = MessagingActivities(sessions, ProviderRegistry({}, OutboxProvider()))
    first = await ActivityEnvironment().run(activities.send_message, request())
    again = await ActivityEnvironment().run(activities.send_message, request())
    async with sessions() as session:
        logged = [
            (d.message_id, d.decision, d.rule, d.idempotency_key, d.channel, d.purpose)
            for d in await session.scalars(select(SendDecision))
        ]
    assert again == first
    assert logged == [(first.message_id, "sent", "allowed", "enr-1/notify/1", "sms", DEFAULT_PURPOSE)]
