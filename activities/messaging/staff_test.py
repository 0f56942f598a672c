"""A staff member's test send of a template: the template composed for a chosen patient as a send step
would compose it, then sent through the real path (the send intent, the decision log, the provider
registered for the channel, `Delivery`) to an address the staff member gave instead of the patient's.

The patient's consent and quiet hours are not asked, because the message does not go to the patient:
that bypass holds for the given staff address only, never for the patient's own address (refused),
and a suppressed address stays suppressed. The decision log records the send under the rule
`staff_test_send`, naming who sent it, and the message's purpose is `staff_test`, which no frequency
cap counts."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, replace

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.messaging.delivery import FINAL_STATUSES, Delivery
from activities.messaging.intent import IntentOrigin, message_intent, settle_locally
from activities.messaging.providers import ProviderRegistry
from aftercare.compose import compose_with_facts
from aftercare.fhir.phones import normalise_phone
from aftercare.guardrails.decision import Decision, allow
from aftercare.guardrails.facts import STAFF_TEST_PURPOSE
from aftercare.journey_variables import JourneyVariables
from aftercare.store.decisions import record_decision
from aftercare.store.messages import record_intent
from aftercare.store.suppressions import find_suppression
from models.journey import SendSpec
from models.tables import Message

STAFF_TEST_RULE = "staff_test_send"
TEST_CHANNELS = ("sms", "email")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class TestSendRefused(ValueError):
    """The address is not one a test may go to (malformed, suppressed, or the patient's own)."""


@dataclass(frozen=True)
class StaffTestSend:
    """Which template variant, composed for which patient, to which staff address, sent by whom."""

    template_key: str
    channel: str
    to: str
    staff: str


def staff_address(channel: str, raw: str, phone_region: str) -> str:
    """The address as the provider takes it (E.164 for a phone); `TestSendRefused` when it is not one."""
    text = raw.strip()
    if channel == "email":
        if not _EMAIL.match(text) or len(text) > 320:
            raise TestSendRefused("enter an email address such as name@hospital.org")
        return text
    if channel == "sms":
        phone = normalise_phone(text, phone_region)
        if phone.e164 is None or phone.status == "invalid":
            raise TestSendRefused("enter a phone number such as +1 617 555 0100")
        return phone.e164
    raise TestSendRefused(f"test sends go by {' or '.join(TEST_CHANNELS)}")


async def send_staff_test(
    sessions: async_sessionmaker[AsyncSession],
    providers: ProviderRegistry,
    request: StaffTestSend,
    variables: JourneyVariables,
) -> Message:
    """Compose, record and send the test; the message as it ended (or `pending` while its provider is
    away: `Delivery` raises then, as it does for any send). `TestSendRefused` before anything is
    recorded when the address may not be used."""
    patient = variables.profile
    async with sessions.begin() as session:
        spec = SendSpec(template=request.template_key, channel=request.channel)
        composed, _ = await compose_with_facts(session, spec, variables)
        if composed.to is not None and composed.to.lower() == request.to.lower():
            raise TestSendRefused("this is the patient's own address: a test goes to staff only")
        if await find_suppression(session, composed.channel, request.to) is not None:
            raise TestSendRefused("this address is suppressed (it bounced, complained or texted STOP)")
        composed = replace(composed, to=request.to, unreachable_reason=None)
        decision: Decision = allow(
            STAFF_TEST_RULE, f"a test by {request.staff} to an address they gave, not the patient's"
        )
        origin = IntentOrigin(idempotency_key=f"staff-test:{uuid.uuid4()}", patient_id=patient.id)
        values = message_intent(origin, composed, STAFF_TEST_PURPOSE, decision)
        provider = providers.for_channel(composed.channel)
        message = await record_intent(session, values, sent_now=await settle_locally(values, provider))
        await record_decision(
            session,
            patient_id=patient.id,
            idempotency_key=origin.idempotency_key,
            purpose=STAFF_TEST_PURPOSE,
            decision=decision.logged,
            rule=decision.rule,
            reason=decision.reason,
            channel=composed.channel,
            message_id=message.id,
        )
    if message.status in FINAL_STATUSES:
        return message
    await Delivery(sessions, providers).deliver(message)
    async with sessions() as session:
        sent = await session.get(Message, message.id)
    assert sent is not None
    return sent
