"""Twilio SMS when Twilio fails: an interrupted send is looked up only for its own message, and a 429's
`Retry-After` is honoured.

Twilio here is `tests/twilio_server.py`, a small Messages API that keeps what it accepted (Prism makes
up its answers, so it cannot say which texts went out).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.messaging.outbox import OutboxProvider
from activities.messaging.providers import OutgoingMessage, ProviderOutcome, ProviderRegistry
from activities.messaging.send import MessagingActivities
from activities.messaging.twilio_sms import TwilioSmsProvider
from models.journey import SendSpec
from models.tables import Message
from models.temporal import SendMessageInput, SendMessageResult
from tests.helpers import TWILIO_ACCOUNT_SID, load_synthea_patient, send_request
from tests.twilio_server import FakeTwilio, running_twilio

pytestmark = pytest.mark.usefixtures("empty_database")

FROM_NUMBER = "+15005550006"
TEXT = "Your appointment is tomorrow at 9."


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with running_twilio() as server:
        yield server


@pytest.fixture
async def activities(sessions: async_sessionmaker[AsyncSession], twilio: FakeTwilio) -> MessagingActivities:
    await load_synthea_patient(sessions)
    provider = TwilioSmsProvider(TWILIO_ACCOUNT_SID, "auth-token", FROM_NUMBER, base_url=twilio.base_url)
    return MessagingActivities(sessions, ProviderRegistry({"sms": provider}, OutboxProvider()))


def text(step: str) -> SendMessageInput:
    """The same text, from another step: its own message row."""
    return send_request(SendSpec(channel="sms", body=TEXT), step=step)


async def send(activities: MessagingActivities, step: str) -> SendMessageResult:
    return await ActivityEnvironment().run(activities.send_message, text(step))


async def send_failing(activities: MessagingActivities, step: str) -> ApplicationError:
    with pytest.raises(ApplicationError) as failure:
        await send(activities, step)
    assert failure.value.type == "ProviderUnavailable"
    return failure.value


async def message_of(sessions: async_sessionmaker[AsyncSession], step: str) -> Message:
    async with sessions() as session:
        message = await session.scalar(select(Message).where(Message.step_id == step))
    assert message is not None
    return message


async def assert_each_owns_one_accepted_text(
    sessions: async_sessionmaker[AsyncSession], twilio: FakeTwilio, *steps: str
) -> None:
    """Each step's row holds the SID of its own text: no SID twice, none Twilio did not accept."""
    sids = [(await message_of(sessions, step)).provider_message_id for step in steps]
    assert len(set(sids)) == len(steps)
    assert set(sids) == {sms.sid for sms in twilio.accepted}
    assert len(twilio.accepted) == len(steps)


async def test_a_second_identical_text_refused_with_500_never_takes_the_first_ones_sid(
    sessions: async_sessionmaker[AsyncSession], activities: MessagingActivities, twilio: FakeTwilio
) -> None:
    assert (await send(activities, "first")).status == "queued"
    twilio.answer_next("refuse_500")
    await send_failing(activities, "second")
    assert (await message_of(sessions, "second")).status == "sending"

    retried = await send(activities, "second")

    assert retried.status == "queued"
    await assert_each_owns_one_accepted_text(sessions, twilio, "first", "second")


async def test_a_text_created_before_the_attempt_began_is_never_claimed(
    sessions: async_sessionmaker[AsyncSession], activities: MessagingActivities, twilio: FakeTwilio
) -> None:
    # The same words went to the same number two minutes ago (another system, or a row since deleted).
    earlier = twilio.seed(
        "+15559784581", FROM_NUMBER, TEXT, datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    )
    twilio.answer_next("refuse_500")
    await send_failing(activities, "notify")

    await send(activities, "notify")

    message = await message_of(sessions, "notify")
    assert message.provider_message_id not in (None, earlier.sid)
    assert twilio.creates == 2


async def test_a_text_twilio_took_despite_a_500_is_found_and_not_sent_twice(
    sessions: async_sessionmaker[AsyncSession], activities: MessagingActivities, twilio: FakeTwilio
) -> None:
    twilio.answer_next("accept_then_500")
    await send_failing(activities, "notify")

    result = await send(activities, "notify")

    [taken] = twilio.accepted
    assert (result.status, (await message_of(sessions, "notify")).provider_message_id) == (
        "queued",
        taken.sid,
    )
    assert twilio.creates == 1


async def test_two_interrupted_identical_texts_each_end_with_their_own_message(
    sessions: async_sessionmaker[AsyncSession], activities: MessagingActivities, twilio: FakeTwilio
) -> None:
    twilio.answer_next("accept_then_500")
    await send_failing(activities, "first")
    await asyncio.sleep(1.1)  # Twilio's clock counts whole seconds
    twilio.answer_next("refuse_500")
    await send_failing(activities, "second")

    # The second looks first: the first's text is older than its attempt, so it sends its own.
    await send(activities, "second")
    await send(activities, "first")

    await assert_each_owns_one_accepted_text(sessions, twilio, "first", "second")


class RacingLookup(TwilioSmsProvider):
    """A lookup that cannot know yet which texts other messages own (they record them as it looks)."""

    async def find_sent(self, message: OutgoingMessage) -> ProviderOutcome | None:
        return await super().find_sent(replace(message, owned_elsewhere=frozenset()))


async def test_a_lookup_racing_another_message_for_its_sid_leaves_the_message_to_look_again(
    sessions: async_sessionmaker[AsyncSession], activities: MessagingActivities, twilio: FakeTwilio
) -> None:
    twilio.answer_next("refuse_500")
    await send_failing(activities, "second")
    assert (await send(activities, "first")).status == "queued"  # the same text, after the attempt
    racing = RacingLookup(TWILIO_ACCOUNT_SID, "auth-token", FROM_NUMBER, base_url=twilio.base_url)
    raced = MessagingActivities(sessions, ProviderRegistry({"sms": racing}, OutboxProvider()))

    failure = await send_failing(raced, "second")

    assert "belongs to another message" in str(failure)
    second = await message_of(sessions, "second")
    assert (second.status, second.provider_message_id) == ("sending", None)
    assert twilio.creates == 2


async def test_a_429_is_retried_no_sooner_than_twilios_retry_after(
    sessions: async_sessionmaker[AsyncSession], activities: MessagingActivities, twilio: FakeTwilio
) -> None:
    twilio.answer_next("rate_limit_429")
    twilio.retry_after = "30"

    failure = await send_failing(activities, "notify")

    assert failure.next_retry_delay == timedelta(seconds=30)
    assert (await message_of(sessions, "notify")).status == "pending"
    assert twilio.accepted == []


def _outgoing(sender: str | None) -> OutgoingMessage:
    return OutgoingMessage(
        id=f"m-{sender}",
        patient_id="p",
        channel="sms",
        to="+12125550199",
        subject=None,
        body=TEXT,
        html=None,
        locale="en",
        created_at=datetime.now(UTC),
        sender=sender,
    )


async def test_a_text_goes_out_from_its_facility_s_number_or_messaging_service(twilio: FakeTwilio) -> None:
    provider = TwilioSmsProvider(TWILIO_ACCOUNT_SID, "auth-token", FROM_NUMBER, base_url=twilio.base_url)
    service = "MG0123456789abcdef0123456789abcdef"
    for sender in ("+15005550002", None, service):
        await provider.send(_outgoing(sender))
    assert [text.from_ for text in twilio.accepted] == ["+15005550002", FROM_NUMBER, service]
