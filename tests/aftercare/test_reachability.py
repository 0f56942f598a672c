"""Channel choice: a send on `channel: best` reaches the patient on their preferred channel when they
can be reached there, else on the next channel of the journey's fallback order; a channel without a
contact point, with consent withdrawn, or with a suppressed address is passed over, with the reason."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aftercare.compose import TemplateNotFoundError, compose_message
from aftercare.journey_variables import load_journey_variables
from aftercare.reachability import choose_channels, reachability
from aftercare.store.attributes import set_attributes
from aftercare.store.consents import record_consent
from aftercare.store.patients import get_patient
from aftercare.store.suppressions import suppress
from models.journey import SendSpec
from models.temporal import EnrollmentTrigger, ExpressionScope
from tests.conftest import ABDUL_PATIENT_ID
from tests.helpers import ingest_patient, load_synthea_patient, publish_templates, with_email

EVERY_CHANNEL = {"sms", "email", "push", "letter"}
TEMPLATES = (
    {"key": "check-in", "channel": "sms", "body": "Hi {{ patient.given }}, how are you feeling?"},
    {
        "key": "check-in",
        "channel": "email",
        "subject": "How are you?",
        "body": "Dear {{ patient.given }}, ...",
    },
    {"key": "check-in", "channel": "letter", "body": "Dear {{ patient.given }}, please call us."},
)


# --- the order channels are tried in ------------------------------------------------------------------


def test_a_fixed_channel_is_the_only_candidate() -> None:
    assert choose_channels(SendSpec(template="t", channel="email"), EVERY_CHANNEL, "sms") == ["email"]
    assert choose_channels(SendSpec(template="t", channel="push"), {"sms"}, None) == []


def test_best_tries_the_preference_first_then_the_default_order() -> None:
    best = SendSpec(template="t", channel="best")
    assert choose_channels(best, EVERY_CHANNEL, None) == ["sms", "email", "push", "letter"]
    assert choose_channels(best, EVERY_CHANNEL, "letter") == ["letter", "sms", "email", "push"]
    assert choose_channels(best, {"email", "letter"}, "sms") == ["email", "letter"]


def test_a_fallback_order_is_the_journeys_word_on_which_channels_may_be_used() -> None:
    ordered = SendSpec(template="t", channel="best", fallback=["email", "letter"])
    assert choose_channels(ordered, EVERY_CHANNEL, None) == ["email", "letter"]
    assert choose_channels(ordered, EVERY_CHANNEL, "letter") == ["letter", "email"]
    assert choose_channels(ordered, EVERY_CHANNEL, "sms") == ["email", "letter"]


def test_a_template_with_one_channel_needs_no_choice() -> None:
    assert choose_channels(SendSpec(template="t"), {"letter"}, "sms") == ["letter"]


def test_fallback_goes_with_best_only() -> None:
    with pytest.raises(ValueError, match="fallback"):
        SendSpec(template="t", channel="sms", fallback=["email"])


# --- reachability ---------------------------------------------------------------------------------------


@pytest.mark.usefixtures("empty_database")
async def test_each_reason_a_channel_cannot_be_used_is_named(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await load_synthea_patient(sessions)
    async with sessions() as session:
        patient = await get_patient(session, ABDUL_PATIENT_ID)
        assert patient is not None
        reach = await reachability(session, patient, ["sms", "email", "push", "letter"])
    assert reach.addresses["sms"] == "+15559784581"
    assert reach.addresses["letter"].splitlines()[0] == patient.name
    assert reach.blocked == {
        "email": "the patient has no email address",
        "push": "the patient has no device subscribed to notifications",
    }


@pytest.mark.usefixtures("empty_database")
async def test_withdrawn_consent_and_a_suppressed_address_block_a_channel(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    abdul = await load_synthea_patient(sessions)
    await ingest_patient(sessions, with_email(abdul, "Abdul@Example.org"))
    async with sessions.begin() as session:
        await record_consent(session, [ABDUL_PATIENT_ID], "sms", "revoked", "front-desk")
        await suppress(session, "email", "abdul@example.org", "bounce", source="sendgrid")
    async with sessions() as session:
        patient = await get_patient(session, ABDUL_PATIENT_ID)
        assert patient is not None
        reach = await reachability(session, patient, ["sms", "email", "letter"])
    assert reach.blocked == {
        "sms": "the patient withdrew consent (front-desk)",
        "email": "email to the address bounced (suppressed)",
    }
    assert list(reach.addresses) == ["letter"]


# --- composing a send on the best channel -------------------------------------------------------------


async def compose(sessions: async_sessionmaker[AsyncSession], spec: SendSpec):  # type: ignore[no-untyped-def]
    async with sessions() as session:
        variables = await load_journey_variables(
            session,
            ExpressionScope(
                enrollment_id="enr-1", patient_id=ABDUL_PATIENT_ID, trigger=EnrollmentTrigger(kind="manual")
            ),
            journey_key="j",
            step_id="s",
        )
        return await compose_message(session, spec, variables)


@pytest.mark.usefixtures("empty_database")
async def test_best_uses_the_channel_the_patient_ranked_first_in_their_record(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    abdul = await load_synthea_patient(sessions)
    await publish_templates(sessions, *TEMPLATES)
    assert (await compose(sessions, SendSpec(template="check-in", channel="best"))).channel == "sms"

    await ingest_patient(sessions, with_email(abdul, "abdul@example.org", preferred=True))
    message = await compose(sessions, SendSpec(template="check-in", channel="best"))
    assert (message.channel, message.to, message.subject) == ("email", "abdul@example.org", "How are you?")


@pytest.mark.usefixtures("empty_database")
async def test_a_preference_kept_by_a_journey_overrides_the_record(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await load_synthea_patient(sessions)
    await publish_templates(sessions, *TEMPLATES)
    async with sessions.begin() as session:
        await set_attributes(session, ABDUL_PATIENT_ID, {"preferred_channel": "letter"}, source="journey")
    message = await compose(sessions, SendSpec(template="check-in", channel="best"))
    assert message.channel == "letter"
    assert message.body.startswith("Dear Abdul")


@pytest.mark.usefixtures("empty_database")
async def test_an_unreachable_preference_falls_back_in_the_journeys_order(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    abdul = await load_synthea_patient(sessions)
    await ingest_patient(sessions, with_email(abdul, "abdul@example.org", preferred=True))
    await publish_templates(sessions, *TEMPLATES)
    async with sessions.begin() as session:
        await suppress(session, "email", "abdul@example.org", "spamreport", source="sendgrid")
    spec = SendSpec(template="check-in", channel="best", fallback=["email", "letter", "sms"])
    message = await compose(sessions, spec)
    assert message.channel == "letter"


@pytest.mark.usefixtures("empty_database")
async def test_when_no_channel_reaches_the_patient_the_message_says_why_for_each(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await load_synthea_patient(sessions)
    await publish_templates(sessions, *TEMPLATES)
    async with sessions.begin() as session:
        await record_consent(session, [ABDUL_PATIENT_ID], "sms", "revoked", "sms-keyword")
    message = await compose(
        sessions, SendSpec(template="check-in", channel="best", fallback=["sms", "email"])
    )
    assert message.to is None
    assert message.unreachable_reason == (
        "no reachable channel: sms: the patient withdrew consent (sms-keyword); "
        "email: the patient has no email address"
    )


@pytest.mark.usefixtures("empty_database")
async def test_a_deceased_patient_is_never_contacted(sessions: async_sessionmaker[AsyncSession]) -> None:
    abdul = await load_synthea_patient(sessions)
    await ingest_patient(sessions, {**abdul, "deceasedDateTime": "2026-11-20T10:00:00Z"})
    await publish_templates(sessions, *TEMPLATES)
    message = await compose(sessions, SendSpec(template="check-in", channel="sms"))
    assert (message.to, message.unreachable_reason) == (None, "the patient is deceased")


@pytest.mark.usefixtures("empty_database")
async def test_a_fixed_channel_the_template_has_no_variant_for_is_an_error(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await load_synthea_patient(sessions)
    await publish_templates(sessions, *TEMPLATES)
    with pytest.raises(TemplateNotFoundError, match="push"):
        await compose(sessions, SendSpec(template="check-in", channel="push"))


@pytest.mark.usefixtures("empty_database")
async def test_an_inline_body_on_best_can_go_anywhere_but_email_needs_a_subject(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    abdul = await load_synthea_patient(sessions)
    await ingest_patient(sessions, with_email(abdul, "abdul@example.org", preferred=True))
    without_subject = await compose(sessions, SendSpec(channel="best", body="Hi {{ patient.given }}"))
    with_subject = await compose(sessions, SendSpec(channel="best", subject="Hello", body="Hi"))
    assert (without_subject.channel, with_subject.channel) == ("sms", "email")
