"""Email through SendGrid: the real `sendgrid` SDK against Prism serving SendGrid's own Mail Send v3
spec, so every request is validated against SendGrid's contract (Prism answers 400 to one that breaks it).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment

from activities.messaging.outbox import OutboxProvider
from activities.messaging.providers import (
    OutgoingMessage,
    ProviderRegistry,
    ProviderRejectedError,
    ProviderTemporaryError,
)
from activities.messaging.send import MessagingActivities
from activities.messaging.sendgrid_email import SendGridEmailProvider
from aftercare.store.message_events import ProviderEvent, apply_provider_event
from models.journey import SendSpec
from models.tables import Message
from tests.conftest import ABDUL_PATIENT_ID
from tests.helpers import ingest_patient, load_synthea_patient, send_request, with_email

pytestmark = pytest.mark.usefixtures("empty_database")


def provider(sessions: async_sessionmaker[AsyncSession], host: str) -> SendGridEmailProvider:
    return SendGridEmailProvider(
        sessions, "SG.test-key", "care@hospital.example", "Springfield General", base_url=host
    )


def outgoing(to: str = "abdul@example.org", **changes: object) -> OutgoingMessage:
    values: dict[str, object] = {
        "id": "msg-1",
        "patient_id": ABDUL_PATIENT_ID,
        "channel": "email",
        "to": to,
        "subject": "Your follow-up",
        "body": "Hi Abdul, please book your follow-up.",
        "html": "<p>Hi Abdul, please <b>book</b> your follow-up.</p>",
        "locale": "es",
        "created_at": datetime.now(UTC),
    }
    values.update(changes)
    return OutgoingMessage(**values)  # type: ignore[arg-type]


def test_the_request_carries_both_bodies_the_language_and_the_message_id(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    request = provider(sessions, "http://unused").mail(outgoing()).get()
    assert request["personalizations"] == [
        {"to": [{"email": "abdul@example.org"}], "custom_args": {"aftercare_message_id": "msg-1"}}
    ]
    assert request["from"] == {"email": "care@hospital.example", "name": "Springfield General"}
    assert [part["type"] for part in request["content"]] == ["text/plain", "text/html"]
    assert request["headers"] == {"Content-Language": "es"}


async def test_sendgrid_accepts_a_valid_email_as_queued(
    sessions: async_sessionmaker[AsyncSession], sendgrid_mock: str
) -> None:
    outcome = await provider(sessions, sendgrid_mock).send(outgoing())
    assert outcome.status == "queued"


async def test_an_email_sendgrid_cannot_accept_is_refused_with_sendgrids_reason(
    sessions: async_sessionmaker[AsyncSession], sendgrid_mock: str
) -> None:
    with pytest.raises(ProviderRejectedError) as refused:
        await provider(sessions, sendgrid_mock).send(outgoing(to="a b@example.org"))
    assert "HTTP 400" in str(refused.value)


async def test_an_address_the_sdk_cannot_parse_is_refused_and_suppressed_without_a_request(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    with pytest.raises(ProviderRejectedError) as refused:
        await provider(sessions, "http://127.0.0.1:9").send(outgoing(to="abdul@"))
    assert refused.value.suppress == "invalid"


async def test_an_unreachable_sendgrid_is_a_temporary_failure(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    from tests.prism import free_port

    with pytest.raises(ProviderTemporaryError):
        await provider(sessions, f"http://127.0.0.1:{free_port()}").send(outgoing())


async def test_an_interrupted_send_waits_for_sendgrids_events_before_sending_again(
    sessions: async_sessionmaker[AsyncSession], sendgrid_mock: str
) -> None:
    abdul = await load_synthea_patient(sessions)
    await ingest_patient(sessions, with_email(abdul, "abdul@example.org"))
    sendgrid = provider(sessions, sendgrid_mock)
    activities = MessagingActivities(sessions, ProviderRegistry({"email": sendgrid}, OutboxProvider()))
    send = send_request(SendSpec(channel="email", subject="Follow-up", body="Hi {{ patient.given }}"))
    first = await ActivityEnvironment().run(activities.send_message, send)
    assert first.status == "queued"
    # The worker died while the request was out: the row says `sending`, nothing says it went out.
    async with sessions.begin() as session:
        await session.execute(update(Message).values(status="sending"))
    async with sessions() as session:
        message = (await session.scalars(select(Message))).one()

    with pytest.raises(ProviderTemporaryError) as waiting:
        await sendgrid.find_sent(outgoing(id=message.id, created_at=message.created_at))
    assert waiting.value.retry_after is not None

    async with sessions.begin() as session:
        await apply_provider_event(
            session,
            message.id,
            ProviderEvent("sendgrid", "evt-1", "processed", datetime.now(UTC), status="queued"),
        )
    found = await sendgrid.find_sent(outgoing(id=message.id, created_at=message.created_at))
    assert found is not None
    assert found.status == "queued"

    long_ago = outgoing(id="msg-without-events", created_at=datetime.now(UTC) - timedelta(hours=1))
    assert await sendgrid.find_sent(long_ago) is None


ICS = {
    "filename": "class.ics",
    "content_type": "text/calendar; method=REQUEST",
    "content": "QkVHSU46VkNBTEVOREFS",
}
PNG = {"filename": "check-in.png", "content_type": "image/png", "content": "iVBORw0KGgo="}


def test_an_emails_attachments_go_with_it(sessions: async_sessionmaker[AsyncSession]) -> None:
    request = provider(sessions, "http://unused").mail(outgoing(attachments=(ICS, PNG))).get()
    assert request["attachments"] == [
        {
            "content": ICS["content"],
            "filename": "class.ics",
            "type": ICS["content_type"],
            "disposition": "attachment",
        },
        {
            "content": PNG["content"],
            "filename": "check-in.png",
            "type": "image/png",
            "disposition": "attachment",
        },
    ]


async def test_sendgrid_accepts_an_email_with_attachments(
    sessions: async_sessionmaker[AsyncSession], sendgrid_mock: str
) -> None:
    outcome = await provider(sessions, sendgrid_mock).send(outgoing(attachments=(ICS, PNG)))
    assert outcome.status == "queued"


def test_a_batched_request_gives_each_recipient_its_own_text_subject_headers_and_message_id(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    sendgrid = provider(sessions, "http://unused")
    first = outgoing(headers={"List-Unsubscribe": "<https://x.example/u/1>"})
    second = outgoing(
        id="msg-2", to="pat@example.org", subject="Yours", body="Hi Pat", html="<p>Hi Pat</p>", locale=None
    )
    assert sendgrid.batch_key(first) == sendgrid.batch_key(second)
    assert sendgrid.batch_key(outgoing(attachments=(PNG,))) is None
    request = sendgrid.batch([first, second])
    assert [part["value"] for part in request["content"]] == ["-aftercare-text-", "-aftercare-html-"]
    assert "headers" not in request
    assert request["personalizations"] == [
        {
            "to": [{"email": "abdul@example.org"}],
            "custom_args": {"aftercare_message_id": "msg-1"},
            "substitutions": {"-aftercare-text-": first.body, "-aftercare-html-": first.html},
            "subject": "Your follow-up",
            "headers": {"Content-Language": "es", "List-Unsubscribe": "<https://x.example/u/1>"},
        },
        {
            "to": [{"email": "pat@example.org"}],
            "custom_args": {"aftercare_message_id": "msg-2"},
            "substitutions": {"-aftercare-text-": "Hi Pat", "-aftercare-html-": "<p>Hi Pat</p>"},
            "subject": "Yours",
        },
    ]


async def test_sendgrid_accepts_a_batch_and_each_email_is_queued(
    sessions: async_sessionmaker[AsyncSession], sendgrid_mock: str
) -> None:
    emails = [outgoing(id=f"msg-{n}", to=f"pat{n}@example.org", body=f"Hi {n}") for n in range(3)]
    outcomes = await provider(sessions, sendgrid_mock).send_batch(emails)
    assert [outcome.status for outcome in outcomes] == ["queued"] * 3
