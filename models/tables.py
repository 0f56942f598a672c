"""ORM tables. The database holds the patient store, published definitions, projections of enrollments
(Temporal is the state machine; these rows only mirror it) and audit rows such as messages."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
    literal_column,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.table_base import Base, Json, table_of
from models.value_sets import LATEST_OBSERVATION_VALUE_SETS, tokens_literal

__all__ = ["Base", "Json", "table_of"]  # defined in models.table_base; most callers import them here


def _created() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


# --- the patient store ----------------------------------------------------------------------------


class FhirResourceVersion(Base):
    """Every version of every FHIR resource received; a version is stored once."""

    __tablename__ = "fhir_resource_versions"

    resource_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    resource_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    content: Mapped[dict[str, Any]] = mapped_column(Json, nullable=False)
    patient_id: Mapped[str | None] = mapped_column(String(64), index=True)
    last_updated: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    source: Mapped[str] = mapped_column(String(32), nullable=False)
    interaction: Mapped[str] = mapped_column(String(16), nullable=False)
    received_at: Mapped[datetime] = _created()
    fires_triggers: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))


class FhirResource(Base):
    """The current version of each FHIR resource."""

    __tablename__ = "fhir_resources"
    __table_args__ = (Index("ix_fhir_resources_patient_type", "patient_id", "resource_type"),)

    resource_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    resource_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version_id: Mapped[str] = mapped_column(String(64), nullable=False)
    content: Mapped[dict[str, Any]] = mapped_column(Json, nullable=False)
    patient_id: Mapped[str | None] = mapped_column(String(64))
    last_updated: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = _created()


class Patient(Base):
    """The patient profile, kept from the current `Patient` resource."""

    __tablename__ = "patients"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version_id: Mapped[str] = mapped_column(String(64), nullable=False)
    name: Mapped[str | None] = mapped_column(String(300))
    given: Mapped[str | None] = mapped_column(String(200))
    family: Mapped[str | None] = mapped_column(String(200))
    birth_date: Mapped[date | None] = mapped_column(Date, index=True)
    gender: Mapped[str | None] = mapped_column(String(16))
    phone: Mapped[str | None] = mapped_column(String(32), index=True)
    phone_raw: Mapped[str | None] = mapped_column(String(64))
    phone_status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="missing")
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    language: Mapped[str | None] = mapped_column(String(35))
    timezone: Mapped[str | None] = mapped_column(String(64))
    deceased: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    address: Mapped[dict[str, Any] | None] = mapped_column(Json)
    preferred_channel: Mapped[str | None] = mapped_column(String(16))
    updated_at: Mapped[datetime] = _created()
    # Bit `facilities.ordinal` set for each facility the patient is placed in (kept by triggers).
    facility_bits: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")


# --- clinical facts: the current FHIR resources, normalised for queries -----------------------------
#
# One row per current resource. Codes are tokens `system|code` (every coding of the concept), so a
# query by code is an array overlap on a GIN index. `patient_id` is the resource's patient record;
# `patient_links` says which person a record belongs to.


# Name search matches words anywhere in the name (`aftercare/store/patient_search.py`): trigrams.
Index(
    "ix_patients_name_trgm",
    func.lower(func.coalesce(Patient.name, literal_column("''"))).label("name_lower"),
    postgresql_using="gin",
    postgresql_ops={"name_lower": "gin_trgm_ops"},
)


class _ClinicalFact:
    resource_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    patient_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    codes: Mapped[list[str]] = mapped_column(ARRAY(String(300)), nullable=False, server_default="{}")
    display: Mapped[str | None] = mapped_column(String(500))
    status: Mapped[str | None] = mapped_column(String(32))


class ClinicalCondition(_ClinicalFact, Base):
    """A `Condition`: `status` is the clinical status (active, recurrence, relapse, resolved, ...)."""

    __tablename__ = "clinical_conditions"
    __table_args__ = (Index("ix_clinical_conditions_codes", "codes", postgresql_using="gin"),)

    verification_status: Mapped[str | None] = mapped_column(String(32))
    categories: Mapped[list[str]] = mapped_column(ARRAY(String(300)), nullable=False, server_default="{}")
    onset_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    abatement_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    recorded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ClinicalObservation(_ClinicalFact, Base):
    """An `Observation` with its value as a number, a code token or text."""

    __tablename__ = "clinical_observations"
    __table_args__ = (
        Index("ix_clinical_observations_codes", "codes", postgresql_using="gin"),
        Index("ix_clinical_observations_patient_effective", "patient_id", "effective_at"),
        *(
            Index(
                f"ix_clinical_observations_latest_{name.replace('-', '_')}",
                "patient_id",
                text("effective_at DESC NULLS LAST"),
                "resource_id",
                postgresql_include=["value_number", "value_code", "value_text"],
                postgresql_where=text(f"codes && {tokens_literal(name)}"),
            )
            for name in LATEST_OBSERVATION_VALUE_SETS
        ),
    )

    categories: Mapped[list[str]] = mapped_column(ARRAY(String(300)), nullable=False, server_default="{}")
    effective_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    value_number: Mapped[float | None] = mapped_column(Float)
    value_unit: Mapped[str | None] = mapped_column(String(64))
    value_code: Mapped[str | None] = mapped_column(String(300))
    value_text: Mapped[str | None] = mapped_column(Text)
    interpretations: Mapped[list[str]] = mapped_column(
        ARRAY(String(300)), nullable=False, server_default="{}"
    )
    encounter_id: Mapped[str | None] = mapped_column(String(64))


class ClinicalMedication(_ClinicalFact, Base):
    """A `MedicationRequest` (status active, completed, stopped, ...)."""

    __tablename__ = "clinical_medications"
    __table_args__ = (Index("ix_clinical_medications_codes", "codes", postgresql_using="gin"),)

    intent: Mapped[str | None] = mapped_column(String(32))
    authored_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ClinicalEncounter(_ClinicalFact, Base):
    """An `Encounter`: `codes` are its types; admission is `start_at`, discharge `end_at`."""

    __tablename__ = "clinical_encounters"
    __table_args__ = (Index("ix_clinical_encounters_patient_end", "patient_id", "end_at"),)

    class_code: Mapped[str | None] = mapped_column(String(32), index=True)
    reason_codes: Mapped[list[str]] = mapped_column(ARRAY(String(300)), nullable=False, server_default="{}")
    diagnosis_codes: Mapped[list[str]] = mapped_column(
        ARRAY(String(300)), nullable=False, server_default="{}"
    )
    start_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    end_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    discharge_disposition: Mapped[str | None] = mapped_column(String(300))


class ClinicalAllergy(_ClinicalFact, Base):
    """An `AllergyIntolerance`: `status` is the clinical status."""

    __tablename__ = "clinical_allergies"
    __table_args__ = (Index("ix_clinical_allergies_codes", "codes", postgresql_using="gin"),)

    verification_status: Mapped[str | None] = mapped_column(String(32))
    criticality: Mapped[str | None] = mapped_column(String(32))
    categories: Mapped[list[str]] = mapped_column(ARRAY(String(64)), nullable=False, server_default="{}")
    recorded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ClinicalProcedure(_ClinicalFact, Base):
    """A `Procedure`."""

    __tablename__ = "clinical_procedures"
    __table_args__ = (Index("ix_clinical_procedures_codes", "codes", postgresql_using="gin"),)

    performed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    performed_end_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ClinicalAppointment(_ClinicalFact, Base):
    """An `Appointment` of the patient: `codes` are its service types."""

    __tablename__ = "clinical_appointments"
    __table_args__ = (Index("ix_clinical_appointments_patient_start", "patient_id", "start_at"),)

    start_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    end_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ClinicalEpisode(_ClinicalFact, Base):
    """An `EpisodeOfCare`: `codes` are its types."""

    __tablename__ = "clinical_episodes"

    start_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    end_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ClinicalImmunization(_ClinicalFact, Base):
    """An `Immunization`: `codes` are the vaccine codes."""

    __tablename__ = "clinical_immunizations"
    __table_args__ = (Index("ix_clinical_immunizations_codes", "codes", postgresql_using="gin"),)

    occurred_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


# --- identity: which patient records are the same person ------------------------------------------


class PatientIdentifier(Base):
    """An identifier (`system`, `value`) of a patient record, for matching records across sources."""

    __tablename__ = "patient_identifiers"

    system: Mapped[str] = mapped_column(String(300), primary_key=True)
    value: Mapped[str] = mapped_column(String(300), primary_key=True)
    patient_id: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class PatientLink(Base):
    """The person a patient record belongs to now (a record unlinked from others is its own person)."""

    __tablename__ = "patient_links"

    record_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    person_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    merge_id: Mapped[int | None] = mapped_column(Integer)
    linked_at: Mapped[datetime] = _created()


class IdentityMerge(Base):
    """A merge of two records into one person, with the rule and evidence; reversible, never deleted."""

    __tablename__ = "identity_merges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    person_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    record_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    rule: Mapped[str] = mapped_column(String(64), nullable=False)
    evidence: Mapped[dict[str, Any]] = mapped_column(Json, nullable=False)
    merged_at: Mapped[datetime] = _created()
    merged_by: Mapped[str | None] = mapped_column(String(200))
    reversed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reversed_by: Mapped[str | None] = mapped_column(String(200))
    reversal_reason: Mapped[str | None] = mapped_column(Text)


class IdentityCandidate(Base):
    """A possible match between two records found by a review rule, waiting for a person to decide.

    `record_id` is the record that arrived, `other_id` the record it resembles; `status` is `open`,
    `merged` (a merge of the two was made) or `dismissed`.
    """

    __tablename__ = "identity_candidates"
    __table_args__ = (
        UniqueConstraint("record_id", "other_id", name="uq_identity_candidates_pair"),
        Index("ix_identity_candidates_status_found", "status", "found_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    record_id: Mapped[str] = mapped_column(String(64), nullable=False)
    other_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    rule: Mapped[str] = mapped_column(String(64), nullable=False)
    evidence: Mapped[dict[str, Any]] = mapped_column(Json, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="open")
    found_at: Mapped[datetime] = _created()
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


# --- FHIR sources: servers we read from, and how far we have read ----------------------------------


class FhirSource(Base):
    """A FHIR server Aftercare reads from. Secrets are never stored: `auth` names the environment
    variables (or files) that hold them."""

    __tablename__ = "fhir_sources"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    base_url: Mapped[str] = mapped_column(Text, nullable=False)
    auth: Mapped[dict[str, Any]] = mapped_column(Json, nullable=False)
    watched_types: Mapped[list[str]] = mapped_column(ARRAY(String(64)), nullable=False)
    poll_seconds: Mapped[int | None] = mapped_column(Integer)
    # The facility every patient read from this source belongs to (besides their organization's).
    facility: Mapped[str | None] = mapped_column(String(64), ForeignKey("facilities.key"))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class SyncCursor(Base):
    """How far polling has read one resource type of a source: the durable high-water mark."""

    __tablename__ = "fhir_sync_cursors"

    source_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    resource_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    high_water: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resources_seen: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    last_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)


class SubscriptionState(Base):
    """A topic-based subscription's progress: the last event number received, to detect gaps."""

    __tablename__ = "fhir_subscription_states"

    source_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    subscription: Mapped[str] = mapped_column(String(300), primary_key=True)
    topic: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str | None] = mapped_column(String(32))
    last_event_number: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    last_notification_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    gaps_recovered: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    created_at: Mapped[datetime] = _created()


class FhirNotification(Base):
    """A subscription notification received: kept until its work (reading id-only resources, recovering
    a gap) is done, so an answered notification is never lost."""

    __tablename__ = "fhir_notifications"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    source_key: Mapped[str] = mapped_column(String(64), nullable=False)
    subscription: Mapped[str | None] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    content: Mapped[str | None] = mapped_column(String(32))
    event_numbers: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), nullable=False, server_default="{}")
    references: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default="{}")
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="received")
    error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = _created()
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class BulkImport(Base):
    """A bulk import: a FHIR Bulk Data `$export` from a source, or NDJSON/Bundle files."""

    __tablename__ = "bulk_imports"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    source_key: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    request: Mapped[dict[str, Any]] = mapped_column(Json, nullable=False)
    status_url: Mapped[str | None] = mapped_column(Text)
    transaction_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    fire_triggers: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    resources_imported: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    resources_parked: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class BulkImportFile(Base):
    """One NDJSON file of a bulk import and how far it has been read (resumable by line)."""

    __tablename__ = "bulk_import_files"

    import_id: Mapped[str] = mapped_column(
        ForeignKey("bulk_imports.id", ondelete="CASCADE"), primary_key=True
    )
    location: Mapped[str] = mapped_column(Text, primary_key=True)
    resource_type: Mapped[str | None] = mapped_column(String(64))
    lines_done: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="pending")
    error: Mapped[str | None] = mapped_column(Text)
    resources_new: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    lines_parked: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    # The first parked lines: [{"line": n, "reason": "..."}] (reasons name paths, never content).
    parked: Mapped[list[dict[str, Any]] | None] = mapped_column(Json)


class EnrollmentFetch(Base):
    """What a journey's `fetch` step read from a FHIR server, kept out of the workflow history."""

    __tablename__ = "enrollment_fetches"

    enrollment_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    step_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    visit: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), nullable=False)
    query: Mapped[str] = mapped_column(Text, nullable=False)
    resources: Mapped[list[dict[str, Any]]] = mapped_column(Json, nullable=False)
    total: Mapped[int | None] = mapped_column(Integer)
    fetched_at: Mapped[datetime] = _created()


# --- definitions ----------------------------------------------------------------------------------


class Template(Base):
    """A published template variant: one key has variants per channel and locale; new content for the
    same key, channel and locale is a new version."""

    __tablename__ = "templates"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    locale: Mapped[str] = mapped_column(String(35), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    definition: Mapped[dict[str, Any]] = mapped_column(Json, nullable=False)
    content_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = _created()
    # The facility it belongs to (used by its subtree; facilities below see it); none: the whole group.
    facility: Mapped[str | None] = mapped_column(String(64), ForeignKey("facilities.key"), index=True)


class Journey(Base):
    """A published journey version; a key and version never change content."""

    __tablename__ = "journeys"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    definition: Mapped[dict[str, Any]] = mapped_column(Json, nullable=False)
    content_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    entry_fhir_resource: Mapped[str | None] = mapped_column(String(64), index=True)
    entry_event_type: Mapped[str | None] = mapped_column(String(100), index=True)
    created_at: Mapped[datetime] = _created()
    # The facility it belongs to (used by its subtree; facilities below see it); none: the whole group.
    facility: Mapped[str | None] = mapped_column(String(64), ForeignKey("facilities.key"), index=True)


# --- projections of Temporal state and audit rows ---------------------------------------------------


class Enrollment(Base):
    """Projection of one enrollment workflow, plus the ledger that enforces re-entry rules.

    `exclusive` rows (re-entry `never` or `after_exit`) allow one running enrollment per journey and
    patient; `once_only` rows (re-entry `never`) allow one enrollment ever. Both are unique indexes, so
    two racing triggers cannot both enter.
    """

    __tablename__ = "enrollments"
    __table_args__ = (
        UniqueConstraint("journey_key", "trigger_key", name="uq_enrollments_journey_trigger"),
        Index(
            "uq_enrollments_one_running",
            "journey_key",
            "patient_id",
            unique=True,
            postgresql_where=text("exclusive AND status = 'running'"),
        ),
        Index(
            "uq_enrollments_once_only",
            "journey_key",
            "patient_id",
            unique=True,
            postgresql_where=text("once_only"),
        ),
        Index("ix_enrollments_patient_status", "patient_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    journey_key: Mapped[str] = mapped_column(String(64), nullable=False)
    journey_version: Mapped[int] = mapped_column(Integer, nullable=False)
    patient_id: Mapped[str] = mapped_column(String(64), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    outcome: Mapped[str | None] = mapped_column(String(64))
    current_step: Mapped[str | None] = mapped_column(String(64))
    trigger: Mapped[dict[str, Any]] = mapped_column(Json, nullable=False)
    trigger_key: Mapped[str | None] = mapped_column(String(300))
    context: Mapped[dict[str, Any]] = mapped_column(Json, nullable=False)
    exclusive: Mapped[bool] = mapped_column(Boolean, nullable=False)
    once_only: Mapped[bool] = mapped_column(Boolean, nullable=False)
    workflow_id: Mapped[str] = mapped_column(String(128), nullable=False, unique=True)
    paused: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    # The facility the enrollment was made for: the patient's, within the journey's facility's subtree.
    facility: Mapped[str | None] = mapped_column(String(64), ForeignKey("facilities.key"))
    started_at: Mapped[datetime] = _created()
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = _created()


class EnrollmentStep(Base):
    """One executed step of an enrollment (projection of the workflow's history)."""

    __tablename__ = "enrollment_steps"

    enrollment_id: Mapped[str] = mapped_column(
        ForeignKey("enrollments.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    step: Mapped[str] = mapped_column(String(64), nullable=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    result: Mapped[str] = mapped_column(String(64), nullable=False)
    detail: Mapped[str | None] = mapped_column(Text)


class Message(Base):
    """A send intent and its fate. The idempotency key makes a retried or replayed send a no-op."""

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_patient_created", "patient_id", "created_at"),
        Index("ix_messages_enrollment", "enrollment_id"),
        Index("ix_messages_campaign_run", "campaign_run_id"),
        Index("ix_messages_channel_to_created", "channel", "to", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(300), nullable=False, unique=True)
    patient_id: Mapped[str] = mapped_column(String(64), nullable=False)
    enrollment_id: Mapped[str | None] = mapped_column(String(64))
    journey_key: Mapped[str | None] = mapped_column(String(64))
    step_id: Mapped[str | None] = mapped_column(String(64))
    # A campaign's message: the run that sent it (the recipient row says which variant).
    campaign_run_id: Mapped[str | None] = mapped_column(String(200))
    facility: Mapped[str | None] = mapped_column(String(64))  # sent on behalf of this facility
    sender: Mapped[str | None] = mapped_column(String(320))  # its from-number or address (None: default)
    channel: Mapped[str] = mapped_column(String(16), nullable=False)
    to: Mapped[str | None] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(String(500))
    body: Mapped[str | None] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    # Extra email headers it was sent with (`List-Unsubscribe`, `List-Unsubscribe-Post`).
    headers: Mapped[dict[str, str] | None] = mapped_column(Json)
    # Files the email carries (`[{filename, content_type, content}]`, content base64): an event's invite.
    attachments: Mapped[list[dict[str, str]] | None] = mapped_column(Json)
    template_key: Mapped[str | None] = mapped_column(String(64))
    template_version: Mapped[int | None] = mapped_column(Integer)
    locale: Mapped[str | None] = mapped_column(String(35))
    purpose: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    reason: Mapped[str | None] = mapped_column(Text)
    provider: Mapped[str | None] = mapped_column(String(32))
    provider_message_id: Mapped[str | None] = mapped_column(String(128), index=True)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()
    # When the provider was last called (after any rate-limit wait); `sent_at` is when it accepted.
    attempted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    opened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    clicked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class MessageEvent(Base):
    """What a provider said about a message after it was sent (status callbacks, email events)."""

    __tablename__ = "message_events"
    __table_args__ = (
        UniqueConstraint("provider", "provider_event_id", name="uq_message_events_provider_event"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), nullable=False, index=True
    )
    provider: Mapped[str] = mapped_column(String(32), nullable=False)
    provider_event_id: Mapped[str] = mapped_column(String(200), nullable=False)
    event: Mapped[str] = mapped_column(String(32), nullable=False)
    detail: Mapped[str | None] = mapped_column(Text)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    received_at: Mapped[datetime] = _created()


class Suppression(Base):
    """An address that must not be messaged: bounced, reported as spam, invalid, unsubscribed."""

    __tablename__ = "suppressions"

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    address: Mapped[str] = mapped_column(String(320), primary_key=True)
    reason: Mapped[str] = mapped_column(String(64), nullable=False)
    source: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = _created()


class ConsentEvent(Base):
    """A consent given or withdrawn (append-only; the latest per patient, channel and purpose holds).
    `purpose` `*` covers every purpose (an SMS STOP)."""

    __tablename__ = "consent_events"
    __table_args__ = (Index("ix_consent_events_patient", "patient_id", "channel", "purpose", "recorded_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = mapped_column(String(64), nullable=False)
    channel: Mapped[str] = mapped_column(String(16), nullable=False)
    purpose: Mapped[str] = mapped_column(String(32), nullable=False, server_default="*")
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    source: Mapped[str] = mapped_column(String(64), nullable=False)
    detail: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[datetime] = _created()


class SendDecision(Base):
    """What the guardrails decided about one attempt of a send (append-only): `sent`, `deferred`,
    `suppressed` or `skipped`, and the rule that decided it."""

    __tablename__ = "send_decisions"
    __table_args__ = (Index("ix_send_decisions_patient_created", "patient_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = mapped_column(String(64), nullable=False)
    enrollment_id: Mapped[str | None] = mapped_column(String(64))
    journey_key: Mapped[str | None] = mapped_column(String(64))
    step_id: Mapped[str | None] = mapped_column(String(64))
    idempotency_key: Mapped[str] = mapped_column(String(300), nullable=False, index=True)
    message_id: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str | None] = mapped_column(String(16))
    purpose: Mapped[str] = mapped_column(String(32), nullable=False)
    decision: Mapped[str] = mapped_column(String(16), nullable=False)
    rule: Mapped[str] = mapped_column(String(32), nullable=False)
    reason: Mapped[str | None] = mapped_column(Text)
    defer_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The facility it was made for: its enrollment's, else the patient's (filled in by the database).
    facility: Mapped[str | None] = mapped_column(String(64), ForeignKey("facilities.key"))
    created_at: Mapped[datetime] = _created()


class Letter(Base):
    """A rendered postal letter in a daily print batch."""

    __tablename__ = "letters"

    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True)
    batch_date: Mapped[date] = mapped_column(Date, nullable=False, index=True)
    pdf: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="queued")
    printed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PushSubscription(Base):
    """A Web Push subscription of one of the patient's devices."""

    __tablename__ = "push_subscriptions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    patient_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    endpoint: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    p256dh: Mapped[str] = mapped_column(String(200), nullable=False)
    auth: Mapped[str] = mapped_column(String(100), nullable=False)
    device: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = _created()


class ProviderPace(Base):
    """A rate-limited provider's most recent calls (as many as its limit allows in one window), shared
    by every worker."""

    __tablename__ = "provider_pace"

    provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    recent: Mapped[list[datetime]] = mapped_column(
        ARRAY(DateTime(timezone=True)), nullable=False, server_default="{}"
    )


class InboundMessage(Base):
    """A message a patient sent us (an SMS reply); the provider's id makes a redelivery a no-op."""

    __tablename__ = "inbound_messages"

    provider_message_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    provider: Mapped[str] = mapped_column(String(32), nullable=False)
    channel: Mapped[str] = mapped_column(String(16), nullable=False)
    from_address: Mapped[str] = mapped_column(String(320), nullable=False)
    patient_id: Mapped[str | None] = mapped_column(String(64), index=True)
    body: Mapped[str | None] = mapped_column(Text)
    keyword: Mapped[str | None] = mapped_column(String(16))
    received_at: Mapped[datetime] = _created()


class Task(Base):
    """Work for a care team, created by a journey's `task` step; completing it signals the enrollment."""

    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_queue_status_due", "queue", "status", "due_at"),
        Index("ix_tasks_assignee_status", "assignee", "status"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(300), nullable=False, unique=True)
    queue: Mapped[str] = mapped_column(String(64), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="open")
    priority: Mapped[str] = mapped_column(String(16), nullable=False, server_default="normal")
    title: Mapped[str] = mapped_column(String(500), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    patient_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    enrollment_id: Mapped[str | None] = mapped_column(String(64), index=True)
    journey_key: Mapped[str | None] = mapped_column(String(64))
    step_id: Mapped[str | None] = mapped_column(String(64))
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _created()
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_by: Mapped[str | None] = mapped_column(String(200))
    outcome: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)
    # The facility it was made for: its enrollment's, else the patient's (filled in by the database).
    facility: Mapped[str | None] = mapped_column(String(64), ForeignKey("facilities.key"))
    # Who works on it (a user's subject as the API knows it); None: nobody has claimed it.
    assignee: Mapped[str | None] = mapped_column(String(200))
    assigned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PatientAttribute(Base):
    """A named value journeys keep about a patient (`update` steps), visible to later steps."""

    __tablename__ = "patient_attributes"

    patient_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(Json)
    source: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime] = _created()


class TriggerEvent(Base):
    """A patient event received through `POST /v1/triggers`; its id makes a repeat a no-op."""

    __tablename__ = "trigger_events"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    type: Mapped[str] = mapped_column(String(100), nullable=False)
    patient_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    data: Mapped[dict[str, Any]] = mapped_column(Json, nullable=False)
    received_at: Mapped[datetime] = _created()
    delivered_to: Mapped[list[str] | None] = mapped_column(Json)
    started: Mapped[list[str] | None] = mapped_column(Json)
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ParkedItem(Base):
    """Input that could not be acted on, kept with the reason so nothing is silently lost."""

    __tablename__ = "parked_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(64), nullable=False)
    reference: Mapped[str | None] = mapped_column(String(300))
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = _created()


# The other table modules share `Base` (models.table_base) and import nothing from here, so the graph
# runs one way; importing them here registers every table on `Base.metadata`.
from models import adt_tables as _adt_tables  # noqa: E402, F401
from models import analytics_tables as _analytics_tables  # noqa: E402, F401
from models import campaign_tables as _campaign_tables  # noqa: E402, F401
from models import console_tables as _console_tables  # noqa: E402, F401
from models import event_tables as _event_tables  # noqa: E402, F401
from models import facility_tables as _facility_tables  # noqa: E402, F401
from models import risk_tables as _risk_tables  # noqa: E402, F401
from models import security_tables as _security_tables  # noqa: E402, F401
from models import segment_tables as _segment_tables  # noqa: E402, F401
from models import survey_tables as _survey_tables  # noqa: E402, F401
from models import voice_tables as _voice_tables  # noqa: E402, F401
