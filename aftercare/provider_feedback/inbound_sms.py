"""A patient's text message: an opt-out, an opt-in, a request for help, or a reply for the journey.

Keywords change consent for the number (every patient who shares it) and are recorded; any other text
becomes an `sms.reply` event for the patient we last texted at that number, so a `wait_for` can branch
on the answer. A redelivered webhook changes nothing twice: the provider's message id is recorded once,
and events are delivered under ids derived from it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from aftercare.enrollment.event_triggers import deliver_event
from aftercare.enrollment.starter import EnrollmentStarter
from aftercare.facilities.voice import Voice, voices_of
from aftercare.fhir.phones import normalise_phone
from aftercare.provider_feedback.sms_keywords import Keyword, keyword_of, normalised
from aftercare.settings import Settings
from aftercare.store.consents import record_consent
from aftercare.store.inbound import latest_recipient, patients_with_phone, record_inbound
from aftercare.store.suppressions import find_suppression, lift_suppression, suppress

log = logging.getLogger(__name__)

EVENT_TYPES: dict[Keyword | None, str] = {
    None: "sms.reply",
    "opt_out": "sms.opt_out",
    "opt_in": "sms.opt_in",
}
CONSENT_SOURCE = "sms-keyword"


@dataclass(frozen=True)
class InboundSms:
    """A text as the provider reported it."""

    provider: str
    provider_message_id: str
    from_number: str
    body: str


@dataclass(frozen=True)
class InboundOutcome:
    """What the text was and whom it concerned; `reply` is the text to answer with, if any."""

    keyword: Keyword | None
    patient_ids: list[str]
    duplicate: bool
    reply: str | None


async def handle_inbound_sms(
    sessions: async_sessionmaker[AsyncSession],
    temporal: Client,
    starter: EnrollmentStarter,
    settings: Settings,
    sms: InboundSms,
) -> InboundOutcome:
    """Record the text, apply a keyword's consent change, and deliver the event to the patient(s)."""
    phone = normalise_phone(sms.from_number, settings.phone_default_region).e164 or sms.from_number.strip()
    async with sessions.begin() as session:
        stopped = await find_suppression(session, "sms", phone)
        keyword = keyword_of(sms.body, opted_out=stopped is not None and stopped.reason == "stop")
        patient_ids = await _patients_concerned(session, phone, keyword)
        new = await record_inbound(
            session,
            provider=sms.provider,
            provider_message_id=sms.provider_message_id,
            channel="sms",
            from_address=phone,
            patient_id=patient_ids[0] if len(patient_ids) == 1 else None,
            body=sms.body,
            keyword=keyword,
        )
        if new:
            await _apply_keyword(session, keyword, phone, patient_ids, sms.body)
        voice = (await voices_of(session, patient_ids[:1])).get(patient_ids[0]) if patient_ids else None
    if not patient_ids:
        log.warning("inbound text from a number no patient has", extra={"provider": sms.provider})
    event_type = EVENT_TYPES.get(keyword)
    if event_type is not None:
        for patient_id in patient_ids:
            await deliver_event(
                sessions,
                temporal,
                starter,
                event_type=event_type,
                patient_id=patient_id,
                data={"body": sms.body.strip(), "keyword": keyword},
                event_id=f"{sms.provider}:{sms.provider_message_id}:{patient_id}",
            )
    reply = help_reply(settings, voice) if keyword == "help" else None
    return InboundOutcome(keyword=keyword, patient_ids=patient_ids, duplicate=not new, reply=reply)


def help_reply(settings: Settings, voice: Voice | None = None) -> str:
    """The answer to HELP: who is texting (the patient's facility, else the install's hospital), how
    to reach a person, how to stop."""
    name = (voice.name if voice else None) or settings.hospital_name
    phone = (voice.help_phone if voice else None) or settings.hospital_phone
    call = f" Questions? Call {phone}." if phone else ""
    return f"{name}: care follow-up messages.{call} Reply STOP to opt out."


async def _patients_concerned(session: AsyncSession, phone: str, keyword: Keyword | None) -> list[str]:
    """A keyword concerns the number, so everyone who shares it; a reply answers our latest text."""
    sharing = await patients_with_phone(session, phone)
    if keyword in ("opt_out", "opt_in"):
        return sharing
    latest = await latest_recipient(session, "sms", phone)
    if latest is not None:
        return [latest]
    return sharing if len(sharing) == 1 else []


async def _apply_keyword(
    session: AsyncSession, keyword: Keyword | None, phone: str, patient_ids: list[str], body: str
) -> None:
    if keyword == "opt_out":
        await suppress(session, "sms", phone, "stop", source=CONSENT_SOURCE)
        await record_consent(session, patient_ids, "sms", "revoked", CONSENT_SOURCE, detail=normalised(body))
    elif keyword == "opt_in":
        await lift_suppression(session, "sms", phone, reasons=["stop"])
        await record_consent(session, patient_ids, "sms", "granted", CONSENT_SOURCE, detail=normalised(body))
