"""What the channel choice and the guardrails know about the patients of a send, loaded for many
patients at once.

One send loads the facts of one patient; a campaign batch loads those of hundreds with the same few
statements (consents, attributes and suppressed addresses in one; push devices, guardians of minors,
and the messages frequency caps count), so deciding stays set-based whatever the batch size.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import DateTime, Integer, bindparam, cast, func, literal, null, select, tuple_, union_all
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable

from aftercare.guardrails.suppression import age_on, has_guardian_contact
from aftercare.store.consents import ALL_CHANNELS, ALL_PURPOSES, PHI
from aftercare.store.suppressions import normalise_address
from models.tables import (
    ConsentEvent,
    FhirResource,
    Message,
    Patient,
    PatientAttribute,
    PushSubscription,
    Suppression,
)

# Messages that did not go out do not count against a frequency cap.
NOT_COUNTED = ("skipped", "failed")
# A staff member's test send of a template (to their own address) is not outreach to the patient.
STAFF_TEST_PURPOSE = "staff_test"

# The attributes every send looks at: the patient's preferred channel and language, their own quiet
# hours, and until when they paused their messages (all set in the preference centre, among others).
PREFERRED_CHANNEL_ATTRIBUTE = "preferred_channel"
PREFERRED_LANGUAGE_ATTRIBUTE = "preferred_language"
QUIET_HOURS_ATTRIBUTE = "quiet_hours"
PAUSED_UNTIL_ATTRIBUTE = "paused_until"
SEND_ATTRIBUTES = (
    PREFERRED_CHANNEL_ATTRIBUTE,
    PREFERRED_LANGUAGE_ATTRIBUTE,
    QUIET_HOURS_ATTRIBUTE,
    PAUSED_UNTIL_ATTRIBUTE,
)


@dataclass(frozen=True)
class RecentMessage:
    """A message that counts against frequency caps."""

    created_at: datetime
    channel: str
    purpose: str | None


@dataclass(frozen=True)
class Consent:
    """The latest consent entry of a patient for a channel and purpose, as the rules read it."""

    id: int
    channel: str
    purpose: str
    status: str
    source: str
    recorded_at: datetime


@dataclass(frozen=True)
class PatientFacts:
    """One patient's consents (the latest entry per channel and purpose), attributes, subscribed push
    devices, suppressed addresses (`(channel, address)` → reason), whether they have a guardian
    contact (looked up for minors only), and their recent messages, newest first (when caps apply)."""

    consents: tuple[Consent, ...] = ()
    attributes: Mapping[str, Any] = field(default_factory=dict)
    push_devices: int = 0
    suppressed: Mapping[tuple[str, str], str] = field(default_factory=dict)
    guardian: bool = False
    recent: tuple[RecentMessage, ...] = ()

    def consent_for(self, channel: str, purpose: str, *, exact_purpose: bool = False) -> Consent | None:
        """The latest consent entry that covers this channel and purpose (wildcards included, for the
        purpose only unless `exact_purpose`), if any."""
        purposes = (purpose,) if exact_purpose or purpose == PHI else (purpose, ALL_PURPOSES)
        covering = [
            consent
            for consent in self.consents
            if consent.channel in (channel, ALL_CHANNELS) and consent.purpose in purposes
        ]
        return max(covering, key=lambda consent: (consent.recorded_at, consent.id), default=None)

    def revoked_channels(self) -> dict[str, Consent]:
        """The channels on which the latest consent for every purpose is withdrawn."""
        return {
            consent.channel: consent
            for consent in self.consents
            if consent.purpose == ALL_PURPOSES and consent.status == "revoked"
        }

    def suppression(self, channel: str, address: str) -> str | None:
        """Why the address is suppressed, or None."""
        return self.suppressed.get((channel, normalise_address(channel, address)))


def addresses_of(patient: Patient, channels: Collection[str]) -> list[tuple[str, str]]:
    """The patient's phone and email (normalised) on the channels asked about: the addresses that can
    be suppressed."""
    found = []
    if "sms" in channels and patient.phone:
        found.append(("sms", normalise_address("sms", patient.phone)))
    if "email" in channels and patient.email:
        found.append(("email", normalise_address("email", patient.email)))
    return found


async def load_facts(
    session: AsyncSession,
    patients: Sequence[Patient],
    *,
    channels: Collection[str],
    attributes: Collection[str] | None = SEND_ATTRIBUTES,
    minor_age: int = 0,
    today: date | None = None,
) -> dict[str, PatientFacts]:
    """The facts of each patient, by id. `attributes` names the attributes to load (None: all of them);
    guardians are looked up for the patients under `minor_age` around `today` (any time zone's)."""
    ids = [patient.id for patient in patients]
    if not ids:
        return {}
    addresses = (address for patient in patients for address in addresses_of(patient, channels))
    consents, values, suppressed = await _consents_attributes_and_suppressions(
        session, ids, attributes, addresses
    )
    devices = await _push_devices(session, ids) if "push" in channels else {}
    # The day before `today` covers every time zone: whoever is a minor somewhere today was one then.
    earliest = today - timedelta(days=1) if today else None
    minors = [
        patient.id
        for patient in patients
        if minor_age and earliest and patient.birth_date and age_on(patient.birth_date, earliest) < minor_age
    ]
    guardians = await _guardians(session, minors) if minors else set()
    return {
        patient.id: PatientFacts(
            consents=tuple(consents.get(patient.id, ())),
            attributes=values.get(patient.id, {}),
            push_devices=devices.get(patient.id, 0),
            suppressed={
                address: suppressed[address]
                for address in addresses_of(patient, channels)
                if address in suppressed
            },
            guardian=patient.id in guardians,
        )
        for patient in patients
    }


async def lock_and_count_recent(
    session: AsyncSession, patient_ids: Collection[str], since: datetime
) -> dict[str, tuple[RecentMessage, ...]]:
    """Lock the patients' rows (`FOR UPDATE`, in id order so concurrent batches cannot deadlock), then
    read their messages since `since` that count against caps, newest first.

    The lock holds until the transaction ends: record the intents in it, so two sends racing for the
    last slot under a cap are serialised and the second counts the first."""
    ordered = sorted(set(patient_ids))
    if not ordered:
        return {}
    await session.execute(
        select(Patient.id).where(Patient.id.in_(ordered)).order_by(Patient.id).with_for_update()
    )
    rows = await session.execute(
        select(Message.patient_id, Message.created_at, Message.channel, Message.purpose)
        .where(
            Message.patient_id.in_(ordered),
            Message.status.not_in(NOT_COUNTED),
            Message.purpose.is_distinct_from(STAFF_TEST_PURPOSE),
            Message.created_at > since,
        )
        .order_by(Message.patient_id, Message.created_at.desc())
    )
    recent: dict[str, list[RecentMessage]] = {}
    for patient_id, created_at, channel, purpose in rows:
        recent.setdefault(patient_id, []).append(RecentMessage(created_at, channel, purpose))
    return {patient_id: tuple(messages) for patient_id, messages in recent.items()}


# The latest consent entry per patient, channel and purpose.
_LATEST_CONSENTS = (
    select(ConsentEvent.id, ConsentEvent.patient_id, ConsentEvent.channel, ConsentEvent.purpose)
    .add_columns(ConsentEvent.status, ConsentEvent.source, ConsentEvent.recorded_at)
    .where(ConsentEvent.patient_id.in_(bindparam("ids", expanding=True)))
    .distinct(ConsentEvent.patient_id, ConsentEvent.channel, ConsentEvent.purpose)
    .order_by(
        ConsentEvent.patient_id,
        ConsentEvent.channel,
        ConsentEvent.purpose,
        ConsentEvent.recorded_at.desc(),
        ConsentEvent.id.desc(),
    )
    .subquery()
)
_NO_TIME = cast(null(), DateTime(timezone=True))
_NO_ID = cast(null(), Integer)


@cache
def _facts_statement(every_attribute: bool, named_attributes: bool, addresses: bool) -> Executable:
    """Consents, the attributes (all of them, those named by `names`, or none) and which of
    `addresses` are suppressed, as one statement built once per shape: `(kind, first, second, value,
    at, id)` rows."""
    consents = select(
        literal("consent").label("kind"),
        _LATEST_CONSENTS.c.patient_id.label("first"),
        _LATEST_CONSENTS.c.channel.label("second"),
        func.jsonb_build_array(
            _LATEST_CONSENTS.c.purpose, _LATEST_CONSENTS.c.status, _LATEST_CONSENTS.c.source, type_=JSONB
        ).label("value"),
        _LATEST_CONSENTS.c.recorded_at.label("at"),
        _LATEST_CONSENTS.c.id.label("id"),
    )
    parts = [consents]
    if every_attribute or named_attributes:
        attributes = select(
            literal("attribute"),
            PatientAttribute.patient_id,
            PatientAttribute.name,
            PatientAttribute.value,
            _NO_TIME,
            _NO_ID,
        ).where(PatientAttribute.patient_id.in_(bindparam("ids", expanding=True)))
        if not every_attribute:
            attributes = attributes.where(PatientAttribute.name.in_(bindparam("names", expanding=True)))
        parts.append(attributes)
    if addresses:
        parts.append(
            select(
                literal("suppression"),
                Suppression.channel,
                Suppression.address,
                func.to_jsonb(Suppression.reason),
                _NO_TIME,
                _NO_ID,
            ).where(
                tuple_(Suppression.channel, Suppression.address).in_(bindparam("addresses", expanding=True))
            )
        )
    return union_all(*parts) if len(parts) > 1 else consents


async def _consents_attributes_and_suppressions(
    session: AsyncSession,
    ids: list[str],
    names: Collection[str] | None,
    addresses: Iterable[tuple[str, str]],
) -> tuple[dict[str, list[Consent]], dict[str, dict[str, Any]], dict[tuple[str, str], str]]:
    """The patients' latest consents, their attributes (all of them when `names` is None) and which of
    the addresses are suppressed, read together in one statement."""
    wanted = list(dict.fromkeys(addresses))
    statement = _facts_statement(names is None, bool(names), bool(wanted))
    parameters: dict[str, Any] = {"ids": ids}
    if names:
        parameters["names"] = list(names)
    if wanted:
        parameters["addresses"] = wanted
    consents: dict[str, list[Consent]] = {}
    found: dict[str, dict[str, Any]] = {}
    suppressed: dict[tuple[str, str], str] = {}
    # A Core statement: the ORM session's layer adds nothing.
    rows = await (await session.connection()).execute(statement, parameters)
    for kind, first, second, value, at, number in rows:
        if kind == "consent":
            purpose, status, source = value
            consents.setdefault(first, []).append(Consent(number, second, purpose, status, source, at))
        elif kind == "attribute":
            found.setdefault(first, {})[second] = value
        else:
            suppressed[(first, second)] = value
    return consents, found, suppressed


async def _push_devices(session: AsyncSession, ids: list[str]) -> dict[str, int]:
    rows = await session.execute(
        select(PushSubscription.patient_id, func.count())
        .where(PushSubscription.patient_id.in_(ids))
        .group_by(PushSubscription.patient_id)
    )
    return {patient_id: count for patient_id, count in rows}


async def _guardians(session: AsyncSession, ids: list[str]) -> set[str]:
    rows = await session.execute(
        select(FhirResource.resource_id, FhirResource.content).where(
            FhirResource.resource_type == "Patient", FhirResource.resource_id.in_(ids)
        )
    )
    return {resource_id for resource_id, content in rows if has_guardian_contact(content)}
