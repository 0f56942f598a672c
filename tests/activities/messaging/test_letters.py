"""The letter provider: a send renders the letter and queues it in today's print batch, once."""

from __future__ import annotations

import base64
import dataclasses
import io
import uuid
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from PIL import Image
from pypdf import PdfReader
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment

from activities.messaging.letters import LetterProvider
from activities.messaging.outbox import OutboxProvider
from activities.messaging.providers import (
    OutgoingMessage,
    ProviderOutcome,
    ProviderRegistry,
    ProviderRejectedError,
)
from activities.messaging.send import MessagingActivities
from aftercare.settings import Settings
from aftercare.store.letters import mark_batch_printed
from aftercare.store.messages import record_intent
from models.facility_tables import Facility
from models.journey import SendSpec
from models.tables import Letter, Message
from models.temporal import SendMessageInput
from tests.conftest import ABDUL_PATIENT_ID
from tests.helpers import RecordingProvider, load_synthea_patient
from tests.helpers import send_request as journey_send_request

pytestmark = pytest.mark.usefixtures("empty_database")

ADDRESS = "Abdul Koepp\n313 Lockman Row Suite 4\nPeabody, MA 01940"


async def recorded(
    sessions: async_sessionmaker[AsyncSession], to: str = ADDRESS, body: str = "Dear Abdul"
) -> OutgoingMessage:
    """A letter message recorded as the send activity records it before calling an external provider."""
    values = {
        "id": str(uuid.uuid4()),
        "idempotency_key": f"enr-1/{uuid.uuid4().hex}/1",
        "patient_id": ABDUL_PATIENT_ID,
        "channel": "letter",
        "to": to,
        "subject": "Your follow-up",
        "body": body,
        "status": "sending",
    }
    async with sessions.begin() as session:
        message = await record_intent(session, values)
    return OutgoingMessage(
        id=message.id,
        patient_id=message.patient_id,
        channel="letter",
        to=to,
        subject=message.subject,
        body=body,
        html=None,
        locale=None,
        created_at=message.created_at,
    )


async def letters(sessions: async_sessionmaker[AsyncSession]) -> list[Letter]:
    async with sessions() as session:
        return list(await session.scalars(select(Letter)))


def today_in(timezone: str) -> date:
    return datetime.now(UTC).astimezone(ZoneInfo(timezone)).date()


async def test_a_letter_is_rendered_and_queued_in_todays_batch(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    provider = LetterProvider(sessions, settings)
    message = await recorded(sessions, body="Dear Abdul,\n\nPlease call us.")

    outcome = await provider.send(message)

    assert outcome == ProviderOutcome(status="queued", provider_message_id=f"letter-{message.id}")
    [letter] = await letters(sessions)
    assert (letter.message_id, letter.status, letter.printed_at) == (message.id, "queued", None)
    assert letter.batch_date == today_in(settings.hospital_timezone)
    text = PdfReader(io.BytesIO(letter.pdf)).pages[0].extract_text()
    for expected in (
        settings.hospital_name,
        "313 Lockman Row Suite 4",
        "Re: Your follow-up",
        "Please call us.",
    ):
        assert expected in text


async def test_sending_the_same_message_twice_queues_one_letter(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    provider = LetterProvider(sessions, settings)
    message = await recorded(sessions)

    first = await provider.send(message)
    [letter] = await letters(sessions)
    second = await provider.send(message)

    assert first == second
    [again] = await letters(sessions)
    assert again.pdf == letter.pdf


async def test_find_sent_finds_the_queued_letter_and_reports_it_printed_once_printed(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    provider = LetterProvider(sessions, settings)
    message = await recorded(sessions)
    assert await provider.find_sent(message) is None

    await provider.send(message)
    assert await provider.find_sent(message) == ProviderOutcome("queued", f"letter-{message.id}")

    async with sessions.begin() as session:
        await mark_batch_printed(session, today_in(settings.hospital_timezone))
    assert await provider.find_sent(message) == ProviderOutcome("printed", f"letter-{message.id}")
    assert await provider.send(message) == ProviderOutcome("printed", f"letter-{message.id}")


async def test_a_message_without_an_address_is_rejected_and_nothing_is_queued(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    provider = LetterProvider(sessions, settings)
    message = await recorded(sessions, to=" \n \n")
    with pytest.raises(ProviderRejectedError, match="no recipient address"):
        await provider.send(message)
    assert await letters(sessions) == []


def test_the_batch_is_today_in_the_hospitals_time_zone(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    provider = LetterProvider(sessions, settings.model_copy(update={"hospital_timezone": "America/New_York"}))
    assert provider.batch_date(datetime(2026, 11, 27, 3, 30, tzinfo=UTC)) == date(2026, 11, 26)
    assert provider.batch_date(datetime(2026, 11, 27, 5, 30, tzinfo=UTC)) == date(2026, 11, 27)


def send_request(step: str = "letter") -> SendMessageInput:
    return journey_send_request(
        SendSpec(
            channel="letter", subject="Your follow-up", body="Dear {{ patient.given }},\n\nPlease call us."
        ),
        step=step,
    )


async def test_a_journey_send_on_the_letter_channel_queues_the_letter_to_the_patients_home(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    await load_synthea_patient(sessions)
    provider = RecordingProvider(LetterProvider(sessions, settings))
    activities = MessagingActivities(sessions, ProviderRegistry({"letter": provider}, OutboxProvider()))

    result = await ActivityEnvironment().run(activities.send_message, send_request())
    again = await ActivityEnvironment().run(activities.send_message, send_request())

    assert (result.status, again) == ("queued", result)
    assert provider.calls == ["send"]
    async with sessions() as session:
        message = await session.get_one(Message, result.message_id)
    assert (message.status, message.provider, message.provider_message_id) == (
        "queued",
        "letters",
        f"letter-{message.id}",
    )
    [letter] = await letters(sessions)
    text = PdfReader(io.BytesIO(letter.pdf)).pages[0].extract_text()
    lines = text.splitlines()
    assert "313 Lockman Row Suite 4" in lines
    assert any(line.startswith("Peabody, ") and line.endswith(" 01940") for line in lines)
    assert "Dear Abdul," in lines


async def test_a_send_interrupted_after_queueing_finds_the_letter_instead_of_queueing_another(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    await load_synthea_patient(sessions)
    provider = RecordingProvider(LetterProvider(sessions, settings))
    activities = MessagingActivities(sessions, ProviderRegistry({"letter": provider}, OutboxProvider()))
    first = await ActivityEnvironment().run(activities.send_message, send_request())
    # The worker queued the letter, then died before recording the outcome.
    async with sessions.begin() as session:
        await session.execute(update(Message).values(status="sending", provider_message_id=None))

    result = await ActivityEnvironment().run(activities.send_message, send_request())

    assert provider.calls == ["send", "find_sent"]
    assert (result.message_id, result.status) == (first.message_id, "queued")
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Letter)) == 1


def _png() -> bytes:
    image = Image.new("RGB", (40, 20), (200, 30, 30))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


async def test_a_letter_sent_on_behalf_of_a_facility_has_its_letterhead_and_logo(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    logo = "data:image/png;base64," + base64.b64encode(_png()).decode()
    async with sessions.begin() as session:
        session.add(
            Facility(
                key="north-hospital",
                name="North Hospital",
                timezone="UTC",
                help_phone="+1 555 010 0101",
                senders={
                    "letter": {"return_address": ["1 North Way", "Northtown, NY 10001"], "logo_url": logo}
                },
            )
        )
        session.add(Facility(key="plain-clinic", name="Plain Clinic", timezone="UTC"))
    provider = LetterProvider(sessions, settings)
    north = dataclasses.replace(await recorded(sessions), facility="north-hospital")
    plain = dataclasses.replace(await recorded(sessions), facility="plain-clinic")
    await provider.send(north)
    await provider.send(plain)

    by_message = {
        letter.message_id: PdfReader(io.BytesIO(letter.pdf)).pages[0] for letter in await letters(sessions)
    }
    north_page, plain_page = by_message[north.id], by_message[plain.id]
    north_text = north_page.extract_text()
    for expected in ("North Hospital", "1 North Way", "Northtown, NY 10001", "+1 555 010 0101"):
        assert expected in north_text
    assert settings.hospital_name not in north_text
    assert len(north_page.images) == 1
    # a facility without a letter identity (an existing install's `default`): the install's letterhead
    plain_text = plain_page.extract_text()
    assert "Plain Clinic" not in plain_text
    assert settings.hospital_name in plain_text
    assert settings.hospital_address.splitlines()[0] in plain_text
    assert len(plain_page.images) == 0
