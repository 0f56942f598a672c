"""One ADT message, start to acknowledgement: parsed, mapped, stored and handed to Temporal through the
FHIR ingest path, and only then answered `AA`. A resend of a control id already handled is answered
again from the record without doing anything twice. A message that cannot be mapped is parked with
its reason and its raw text sealed, and answered `AE` (or `AR` for what Aftercare does not take).

Nothing here holds a database connection across a call to Temporal: each step commits first.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from aftercare.enrollment.fhir_ingest import ingest_fhir_resources
from aftercare.enrollment.starter import EnrollmentStarter
from aftercare.fhir.resources import validation_problems
from aftercare.hl7v2.acks import build_ack
from aftercare.hl7v2.authorities import AuthoritySystems
from aftercare.hl7v2.mapping import MappedMessage, check_supported, map_message, patient_identifiers
from aftercare.hl7v2.messages import Header, V2Message, V2Problem
from aftercare.hl7v2.sealing import RawSealer, Sealed
from aftercare.store.adt_messages import find_adt_message, get_adt_message, mark_retried, record_adt_message
from aftercare.store.identity import AlreadyOnePerson, merge_records
from models.tables import Enrollment, PatientIdentifier
from models.temporal import PatientEvent
from models.workflow_names import DELIVER_EVENT, ENCOUNTER_CANCELLED_EVENT

log = logging.getLogger(__name__)
SOURCE = "hl7v2"
# A11 cancels an admission, A13 a discharge: the journeys that visit started exit with this outcome.
CANCELLED_OUTCOMES = {"A11": "admission_cancelled", "A13": "discharge_cancelled"}


@dataclass(frozen=True)
class Handled:
    """The acknowledgement to send and what it says."""

    ack: str
    code: str


@dataclass(frozen=True)
class AdtIntake:
    """Where ADT messages go: the FHIR ingest path, the identity store and Temporal."""

    sessions: async_sessionmaker[AsyncSession]
    starter: EnrollmentStarter
    temporal: Client
    sealer: RawSealer
    zone: ZoneInfo
    phone_region: str
    identity_rules: Sequence[str] | None = None
    authorities: AuthoritySystems = field(default_factory=AuthoritySystems)
    write_back_queue: str | None = None

    async def handle(self, text: str) -> Handled:
        """Process one message (or recognise a resend) and return its acknowledgement."""
        try:
            message = V2Message(text)
            header = message.header
        except V2Problem as problem:
            log.warning("hl7v2 message refused before its header could be read: %s", problem.code)
            return Handled(
                build_ack(None, "AR", location=problem.location, error_code=problem.code, text=problem.text),
                "AR",
            )
        async with self.sessions.begin() as session:
            seen = await find_adt_message(session, header.sending_facility, header.control_id)
            seen_answer = (
                None
                if seen is None or seen.retried_at is not None
                else (seen.ack_code, seen.error_location, seen.error_code, seen.reason)
            )
        if seen_answer is not None:
            code, location, error_code, reason = seen_answer
            return Handled(
                build_ack(
                    header, code, location=location or "", error_code=error_code or "", text=reason or ""
                ),
                code,
            )
        return await self._process(message, header, text)

    async def _answer_given(self, header: Header) -> tuple[str, str | None, str | None, str | None] | None:
        async with self.sessions.begin() as session:
            seen = await find_adt_message(session, header.sending_facility, header.control_id)
            return (
                None if seen is None else (seen.ack_code, seen.error_location, seen.error_code, seen.reason)
            )

    async def retry(self, message_id: int) -> Handled | None:
        """An operator's retry of a parked message (after fixing the mapping or the data)."""
        async with self.sessions.begin() as session:
            row = await get_adt_message(session, message_id)
            if row is None or row.ack_code == "AA" or row.raw_sealed is None or row.raw_key_id is None:
                return None
            text = self.sealer.open(Sealed(row.raw_key_id, row.raw_sealed))
            await mark_retried(session, message_id)
        return await self._process(V2Message(text), V2Message(text).header, text)

    async def _process(self, message: V2Message, header: Header, text: str) -> Handled:
        try:
            check_supported(message)
            message.check_segment_ids()
            mapped = map_message(message, zone=self.zone, patient_id=await self._known_patient(message))
            self.authorities.rewrite([*mapped.resources, *mapped.merged_identifiers])
            _refuse_invalid(mapped)
        except V2Problem as problem:
            await self._park(header, text, problem)
            return Handled(
                build_ack(
                    header, problem.ack, location=problem.location, error_code=problem.code, text=problem.text
                ),
                problem.ack,
            )
        await ingest_fhir_resources(
            self.sessions,
            self.starter,
            self.temporal,
            mapped.resources,
            source=f"{SOURCE}:{header.sending_facility.split('^')[0]}"[:32],
            phone_region=self.phone_region,
            identity_rules=self.identity_rules,
            write_back_queue=self.write_back_queue,
        )
        if mapped.merged_identifiers:
            await self._merge(mapped, header)
        if mapped.event in CANCELLED_OUTCOMES and mapped.encounter is not None:
            await self._end_enrollments(mapped.encounter["id"], header, CANCELLED_OUTCOMES[mapped.event])
        async with self.sessions.begin() as session:
            await record_adt_message(
                session,
                {
                    **_identity_of(header),
                    "ack_code": "AA",
                    "patient_id": mapped.patient["id"],
                    "encounter_id": mapped.encounter["id"] if mapped.encounter else None,
                    "raw_sealed": None,
                    "raw_key_id": None,
                    "reason": None,
                    "error_location": None,
                    "error_code": None,
                },
            )
        return Handled(build_ack(header, "AA"), "AA")

    async def _known_patient(self, message: V2Message) -> str | None:
        identifiers = self.authorities.identifiers(patient_identifiers(message))
        pairs = [(i["system"], i["value"]) for i in identifiers]
        async with self.sessions.begin() as session:
            for system, value in pairs:
                found: str | None = await session.scalar(
                    select(PatientIdentifier.patient_id)
                    .where(PatientIdentifier.system == system, PatientIdentifier.value == value)
                    .order_by(PatientIdentifier.patient_id)
                    .limit(1)
                )
                if found:
                    return found
        return None

    async def _merge(self, mapped: MappedMessage, header: Header) -> None:
        """A40: the record holding MRG-1 joins the person of the record holding PID-3."""
        survivor = mapped.patient["id"]
        async with self.sessions.begin() as session:
            for identifier in mapped.merged_identifiers:
                merged: str | None = await session.scalar(
                    select(PatientIdentifier.patient_id).where(
                        PatientIdentifier.system == identifier["system"],
                        PatientIdentifier.value == identifier["value"],
                        PatientIdentifier.patient_id != survivor,
                    )
                )
                if merged is None:
                    continue
                try:
                    async with session.begin_nested():
                        await merge_records(
                            session,
                            survivor,
                            merged,
                            rule="hl7v2-a40",
                            evidence={
                                "control_id": header.control_id,
                                "sending_facility": header.sending_facility,
                            },
                            by=f"{SOURCE}:{header.sending_facility}"[:200],
                        )
                except AlreadyOnePerson:
                    continue  # a resend of the merge, or merged already

    async def _end_enrollments(self, encounter_id: str, header: Header, outcome: str) -> None:
        """A11/A13: the enrollments this visit started exit with `outcome` (the built-in
        `encounter.cancelled` event; a resend delivers the same event id, which they ignore)."""
        async with self.sessions.begin() as session:
            workflow_ids = list(
                await session.scalars(
                    select(Enrollment.workflow_id).where(
                        Enrollment.status == "running",
                        Enrollment.trigger["resource"]["resource_type"].as_string() == "Encounter",
                        Enrollment.trigger["resource"]["resource_id"].as_string() == encounter_id,
                    )
                )
            )
        event = PatientEvent(
            id=f"{SOURCE}:{header.sending_facility}:{header.control_id}"[:200],
            type=ENCOUNTER_CANCELLED_EVENT,
            data={
                "encounter_id": encounter_id,
                "outcome": outcome,
                "message": f"{header.message_code}^{header.event}",
            },
        )
        for workflow_id in workflow_ids:
            await self.temporal.get_workflow_handle(workflow_id).signal(DELIVER_EVENT, event)

    async def _park(self, header: Header, text: str, problem: V2Problem) -> None:
        sealed = self.sealer.seal(text)
        async with self.sessions.begin() as session:
            await record_adt_message(
                session,
                {
                    **_identity_of(header),
                    "ack_code": problem.ack,
                    "error_location": problem.location[:40],
                    "error_code": problem.code,
                    "reason": problem.text if sealed else f"{problem.text} (raw text not kept: no codec key)",
                    "raw_sealed": sealed.data if sealed else None,
                    "raw_key_id": sealed.key_id if sealed else None,
                    "patient_id": None,
                    "encounter_id": None,
                },
            )
        log.info("hl7v2 message %s parked: %s %s", header.control_id, problem.location, problem.code)


def _identity_of(header: Header) -> dict[str, Any]:
    return {
        "sending_facility": header.sending_facility[:200],
        "control_id": header.control_id[:200],
        "message_type": f"{header.message_code}^{header.event}"[:20],
    }


def _refuse_invalid(mapped: MappedMessage) -> None:
    for resource in mapped.resources:
        problems = validation_problems(resource)
        if problems:
            path, text = problems[0]
            raise V2Problem(
                "AE", "", "207", f"the mapped {resource['resourceType']} is not valid FHIR R4: {path}: {text}"
            )
