"""ORM tables. The database holds the patient store, published definitions, projections of enrollments
(Temporal is the state machine; these rows only mirror it) and audit rows such as messages."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Json = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    """Declarative base with a naming convention so migrations name constraints predictably."""

    metadata = MetaData(naming_convention=NAMING)


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
    birth_date: Mapped[date | None] = mapped_column(Date)
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
        Index("ix_messages_channel_to_created", "channel", "to", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(300), nullable=False, unique=True)
    patient_id: Mapped[str] = mapped_column(String(64), nullable=False)
    enrollment_id: Mapped[str | None] = mapped_column(String(64))
    journey_key: Mapped[str | None] = mapped_column(String(64))
    step_id: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16), nullable=False)
    to: Mapped[str | None] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(String(500))
    body: Mapped[str | None] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    template_key: Mapped[str | None] = mapped_column(String(64))
    template_version: Mapped[int | None] = mapped_column(Integer)
    locale: Mapped[str | None] = mapped_column(String(35))
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
    __table_args__ = (Index("ix_tasks_queue_status_due", "queue", "status", "due_at"),)

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


def table_of(model: type[Base]) -> Table:
    """The core table behind a mapped class, for statements whose compiled form SQLAlchemy caches."""
    return Base.metadata.tables[model.__tablename__]
