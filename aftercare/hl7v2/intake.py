"""ADT messages, start to acknowledgement, a batch at a time: parsed, mapped, stored and handed to
Temporal through the FHIR ingest path, and only then answered `AA`. A resend of a control id already
handled is answered again from the record without doing anything twice. A message that cannot be
mapped is parked with its reason and its raw text sealed, and answered `AE` (or `AR` for what
Aftercare does not take).

A batch is whatever arrived together (from several connections, or pipelined on one). It costs two
commits however many messages it holds:

1. one transaction takes the advisory lock of each patient the batch names when listener processes
   share the port (they take turns per patient; an A40 takes the lock every batch shares), looks up
   the answers already given, finds the patients the messages name, stores
   the mapped resources set-based (`store_resources` on all of them), allocates the enrollments they
   start, applies A40 merges, and reads the running enrollments and segments the changes concern;
2. after that commit the workflows start and the changes are delivered (the hand-off, which needs no
   transaction of its own);
3. one statement records every message's answer, and its commit comes before any ACK.

A crash after (1) or (2) leaves no record, so the sender's resend runs the batch's steps again, which
store nothing twice and start nothing twice (resource versions and trigger keys are unique). Messages
are taken in arrival order; a batch is split wherever a patient comes back (their later message is
stored, and handed off, after the earlier one) and around an A40. A batch that fails for something
about one of its messages (a value the database refuses) is processed again in halves, down to that
message, which is parked and answered `AE`; so one message that cannot be processed holds up no other,
and no sender waits forever for an answer. Only when the database or Temporal is out of reach does a
message stay unanswered (the sender resends it).

Nothing here holds a database connection across a call to Temporal: each step commits first.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy import text as sql
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from aftercare.enrollment.fhir_ingest import HandOff, hand_off, plan_hand_off
from aftercare.enrollment.fhir_triggers import plan_fhir_enrollments
from aftercare.enrollment.starter import EnrollmentStarter
from aftercare.fhir.shapes import ShapeValidator
from aftercare.hl7v2.acks import build_ack
from aftercare.hl7v2.authorities import AuthoritySystems
from aftercare.hl7v2.failures import AfterCommit, error_name, failure_of, refusal
from aftercare.hl7v2.mapping import MappedMessage, check_supported, event_of, map_message, patient_identifiers
from aftercare.hl7v2.messages import Header, V2Message, V2Problem
from aftercare.hl7v2.sealing import RawSealer, Sealed
from aftercare.store.adt_messages import (
    Answer,
    answers_given,
    get_adt_message,
    hold_patients,
    mark_retried,
    record_adt_messages,
)
from aftercare.store.identity import AlreadyOnePerson, merge_records
from aftercare.store.resources import StoredVersion, store_resources
from models.tables import Enrollment, PatientIdentifier
from models.temporal import PatientEvent
from models.workflow_names import DELIVER_EVENT, ENCOUNTER_CANCELLED_EVENT

log = logging.getLogger(__name__)
SOURCE = "hl7v2"
# Runs again of a batch that lost a race (a serialisation failure or a deadlock) before it is split.
RUNS_AGAIN = 2
# A11 cancels an admission, A13 a discharge: the journeys that visit started exit with this outcome.
CANCELLED_OUTCOMES = {"A11": "admission_cancelled", "A13": "discharge_cancelled"}


@dataclass(frozen=True)
class Handled:
    """The acknowledgement to send and what it says."""

    ack: str
    code: str


def patient_key(message: V2Message) -> str:
    """The patient a message is about (PID-3's first identifier and its authority), or `""`."""
    try:
        components = message.first("PID", 3)
    except V2Problem:
        return ""
    return "|".join(components[:4:3]) if components else ""


@dataclass
class _Pending:
    """A message of a batch on its way to its answer."""

    text: str
    message: V2Message
    header: Header
    answer: Answer | None = None  # given before (a resend)
    mapped: MappedMessage | None = None
    problem: V2Problem | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.header.sending_facility[:200], self.header.control_id[:200]

    @property
    def source(self) -> str:
        return f"{SOURCE}:{self.header.sending_facility.split('^')[0]}"[:32]

    def handled(self) -> Handled:
        if self.answer is not None:
            code, location, error_code, reason = self.answer
            ack = build_ack(
                self.header, code, location=location or "", error_code=error_code or "", text=reason or ""
            )
            return Handled(ack, code)
        if self.problem is not None:
            problem = self.problem
            ack = build_ack(
                self.header,
                problem.ack,
                location=problem.location,
                error_code=problem.code,
                text=problem.text,
            )
            return Handled(ack, problem.ack)
        return Handled(build_ack(self.header, "AA"), "AA")


@dataclass
class _Group:
    """Messages about different patients, stored together and handed off together."""

    versions: list[StoredVersion] = field(default_factory=list)
    resources: list[dict[str, Any]] = field(default_factory=list)
    cancellations: list[tuple[list[str], PatientEvent]] = field(default_factory=list)
    hand_off: HandOff | None = None  # read in the transaction, done after it


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
    # Other listener processes share the port: each batch holds its patients' advisory locks.
    shares_port: bool = False
    # Validates the mapped resources, in full only for shapes not seen valid before.
    validator: ShapeValidator = field(default_factory=ShapeValidator)

    async def handle(self, text: str) -> Handled:
        """Process one message (or recognise a resend) and return its acknowledgement."""
        [result] = await self.handle_batch([text])
        if isinstance(result, Exception):
            raise result
        return result

    async def handle_batch(self, texts: Sequence[str]) -> list[Handled | Exception]:
        """Process messages received together, in order; each one's acknowledgement, or the error that
        leaves it unanswered (the database or Temporal out of reach: the sender resends it).

        A batch that lost a race (a serialisation failure, a deadlock) runs again. One that fails for
        something about its messages is split in halves, each processed on its own, down to the message
        at fault, which is parked and answered `AE` while the others are committed and answered."""
        error: Exception | None = None
        for _ in range(1 + RUNS_AGAIN):
            try:
                return await self._batch(texts)
            except Exception as failed:
                error = failed
                if failure_of(failed) != "again":
                    break
        assert error is not None
        failure = failure_of(error)
        if failure != "refused":
            log.warning("hl7v2: %d message(s) left unanswered: %s", len(texts), error_name(error))
            return [error] * len(texts)
        if len(texts) == 1:
            return [await self._refused(texts[0], error)]
        log.warning("hl7v2: a batch of %d failed (%s); in halves now", len(texts), error_name(error))
        half = len(texts) // 2
        return [*await self.handle_batch(texts[:half]), *await self.handle_batch(texts[half:])]

    async def _refused(self, text: str, error: Exception) -> Handled | Exception:
        """A message that failed on its own: once more (a unique key another transaction took
        meanwhile passes now), then parked with the refusal as its `AE`."""
        try:
            return (await self._batch([text]))[0]
        except Exception as again:
            if failure_of(again) != "refused":
                return again
            error = again
        message = V2Message(text)  # read before: a message whose header cannot be read never fails
        item = _Pending(text, message, message.header, problem=refusal(message, error))
        try:
            async with self.sessions.begin() as session:
                item.answer = (await answers_given(session, [item.key])).get(item.key)
                row = self._record(item)
                if row is not None:
                    await record_adt_messages(session, [row])
        except Exception as unrecorded:
            return unrecorded
        return item.handled()

    async def retry(self, message_id: int) -> Handled | None:
        """An operator's retry of a parked message (after fixing the mapping or the data)."""
        async with self.sessions.begin() as session:
            row = await get_adt_message(session, message_id)
            if row is None or row.ack_code == "AA" or row.raw_sealed is None or row.raw_key_id is None:
                return None
            text = self.sealer.open(Sealed(row.raw_key_id, row.raw_sealed))
            await mark_retried(session, message_id)
        return await self.handle(text)

    async def _batch(self, texts: Sequence[str]) -> list[Handled | Exception]:
        answers: list[Handled | _Pending] = []
        first_of: dict[tuple[str, str], _Pending] = {}
        for text in texts:
            try:
                message = V2Message(text)
            except V2Problem as problem:
                log.warning("hl7v2 message refused before its header could be read: %s", problem.code)
                ack = build_ack(
                    None, "AR", location=problem.location, error_code=problem.code, text=problem.text
                )
                answers.append(Handled(ack, "AR"))
                continue
            item = _Pending(text, message, message.header)
            answers.append(first_of.setdefault(item.key, item))  # a resend in the same batch: answered alike
        pending = list(first_of.values())
        if pending:
            groups = await self._store(pending)
            try:
                for group in groups:
                    await self._hand_off(group)
                rows = [row for item in pending if (row := self._record(item)) is not None]
                async with self.sessions.begin() as session:
                    await record_adt_messages(session, rows)
            except Exception as error:
                raise AfterCommit(error) from error
        return [answer if isinstance(answer, Handled) else answer.handled() for answer in answers]

    async def _store(self, pending: list[_Pending]) -> list[_Group]:
        """The batch's one transaction: answers given before, then each group mapped and stored."""
        async with self.sessions.begin() as session:
            if self.shares_port:
                await hold_patients(
                    session,
                    [key for item in pending if (key := patient_key(item.message))],
                    everyone=any(event_of(item.message) == "A40" for item in pending),
                )
            given = await answers_given(session, [item.key for item in pending])
            fresh = []
            for item in pending:
                item.answer = given.get(item.key)
                if item.answer is None:
                    fresh.append(item)
            return [await self._store_group(session, members) for members in _groups(fresh)]

    async def _store_group(self, session: AsyncSession, members: list[_Pending]) -> _Group:
        wanted: list[tuple[_Pending, list[tuple[str, str]]]] = []
        for item in members:
            try:
                check_supported(item.message)
                item.message.check_segment_ids()
                identifiers = self.authorities.identifiers(patient_identifiers(item.message))
            except V2Problem as problem:
                item.problem = problem
                continue
            wanted.append((item, [(i["system"], i["value"]) for i in identifiers]))
        holders = await _patients_holding(session, {pair for _, pairs in wanted for pair in pairs})
        group = _Group()
        by_source: dict[str, list[dict[str, Any]]] = {}
        for item, pairs in wanted:
            known = next((holders[pair] for pair in pairs if pair in holders), None)
            try:
                mapped = map_message(item.message, zone=self.zone, patient_id=known)
                self.authorities.rewrite([*mapped.resources, *mapped.merged_identifiers])
                _refuse_invalid(mapped, self.validator)
            except V2Problem as problem:
                item.problem = problem
                continue
            item.mapped = mapped
            by_source.setdefault(item.source, []).extend(mapped.resources)
            group.resources.extend(mapped.resources)
        for source, resources in by_source.items():
            stored = await store_resources(
                session,
                resources,
                source=source,
                phone_region=self.phone_region,
                identity_rules=self.identity_rules,
            )
            group.versions.extend(stored.pending_triggers)
        planned = await plan_fhir_enrollments(session, self.starter, group.versions)
        for item in members:
            if item.mapped is not None and item.mapped.merged_identifiers:
                await _merge(session, item.mapped, item.header)
            if item.mapped is not None and item.mapped.event in CANCELLED_OUTCOMES:
                cancellation = await _cancellation(session, item.mapped, item.header)
                if cancellation is not None:
                    group.cancellations.append(cancellation)
        group.hand_off = await plan_hand_off(session, group.versions, planned, group.resources)
        return group

    async def _hand_off(self, group: _Group) -> None:
        """After the commit: workflows started, changes delivered, cancelled visits' journeys told."""
        if group.hand_off is not None:
            await hand_off(self.sessions, self.starter, self.temporal, group.hand_off, self.write_back_queue)
        for workflow_ids, event in group.cancellations:
            for workflow_id in workflow_ids:
                await self.temporal.get_workflow_handle(workflow_id).signal(DELIVER_EVENT, event)

    def _record(self, item: _Pending) -> dict[str, Any] | None:
        """The row that records the answer (none for a resend answered from its record)."""
        row: dict[str, Any] = {
            "sending_facility": item.key[0],
            "control_id": item.key[1],
            "message_type": f"{item.header.message_code}^{item.header.event}"[:20],
            "patient_id": None,
            "encounter_id": None,
            "raw_sealed": None,
            "raw_key_id": None,
            "reason": None,
            "error_location": None,
            "error_code": None,
        }
        if item.answer is not None:
            return None
        if item.mapped is not None:
            encounter = item.mapped.encounter
            return row | {
                "ack_code": "AA",
                "patient_id": item.mapped.patient["id"],
                "encounter_id": encounter["id"] if encounter else None,
            }
        problem = item.problem
        assert problem is not None
        sealed = self.sealer.seal(item.text)
        log.info("hl7v2 message %s parked: %s %s", item.header.control_id, problem.location, problem.code)
        return row | {
            "ack_code": problem.ack,
            "error_location": problem.location[:40],
            "error_code": problem.code,
            "reason": problem.text if sealed else f"{problem.text} (raw text not kept: no codec key)",
            "raw_sealed": sealed.data if sealed else None,
            "raw_key_id": sealed.key_id if sealed else None,
        }


def _groups(items: list[_Pending]) -> Iterator[list[_Pending]]:
    """Consecutive runs naming each patient once; an A40 (a merge) alone, since it changes who is who."""
    group: list[_Pending] = []
    patients: set[str] = set()
    for item in items:
        key = patient_key(item.message)
        merge = event_of(item.message) == "A40"
        if group and (merge or (key and key in patients)):
            yield group
            group, patients = [], set()
        group.append(item)
        patients.add(key)
        if merge:
            yield group
            group, patients = [], set()
    if group:
        yield group


async def _patients_holding(session: AsyncSession, pairs: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """The record holding each (system, value) identifier (the first by id when several do)."""
    if not pairs:
        return {}
    wanted = sorted(pairs)
    rows = await session.execute(
        _HOLDERS, {"systems": [system for system, _ in wanted], "values": [value for _, value in wanted]}
    )
    return {(row[0], row[1]): row[2] for row in rows}


# The pairs travel as two arrays side by side, joined as rows: one statement text whatever the batch,
# and each pair one probe of the primary key whatever the planner knows of the table. (Two `= ANY`
# lists, one per column, were answered by the systems alone when the statistics were stale: every
# identifier of those systems read, and filtered.)
_HOLDERS = sql(
    """
    SELECT i.system, i.value, min(i.patient_id) FROM patient_identifiers i
    JOIN unnest(CAST(:systems AS VARCHAR[]), CAST(:values AS VARCHAR[])) AS k(system, value)
        ON i.system = k.system AND i.value = k.value
    GROUP BY i.system, i.value
    """
)


async def _merge(session: AsyncSession, mapped: MappedMessage, header: Header) -> None:
    """A40: the record holding MRG-1 joins the person of the record holding PID-3."""
    survivor = mapped.patient["id"]
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
                    evidence={"control_id": header.control_id, "sending_facility": header.sending_facility},
                    by=f"{SOURCE}:{header.sending_facility}"[:200],
                )
        except AlreadyOnePerson:
            continue  # a resend of the merge, or merged already


async def _cancellation(
    session: AsyncSession, mapped: MappedMessage, header: Header
) -> tuple[list[str], PatientEvent] | None:
    """A11/A13: the enrollments this visit started, to exit with the outcome (the built-in
    `encounter.cancelled` event; a resend delivers the same event id, which they ignore)."""
    if mapped.encounter is None:
        return None
    encounter_id = mapped.encounter["id"]
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
            "outcome": CANCELLED_OUTCOMES[mapped.event],
            "message": f"{header.message_code}^{header.event}",
        },
    )
    return workflow_ids, event


def _refuse_invalid(mapped: MappedMessage, validator: ShapeValidator) -> None:
    for resource in mapped.resources:
        problems = validator.problems(resource)
        if problems:
            path, text = problems[0]
            raise V2Problem(
                "AE", "", "207", f"the mapped {resource['resourceType']} is not valid FHIR R4: {path}: {text}"
            )
