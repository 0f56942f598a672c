"""Tables of event management: events, their sessions (with a seat counter the database guards) and
registrations.

Imported at the end of `models/tables.py`, so they share its `Base` and migrations see them. Capacity is
kept by the database, not by the application: a registration takes the session row's lock (`FOR UPDATE`)
and `seats_taken` is checked against `capacity` by a constraint, so no interleaving oversells a session.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.table_base import Base, Json

# Statuses that hold seats in a session.
SEAT_HOLDING = ("registered", "offered", "attended")


class Event(Base):
    """A class, clinic, support group or webinar. `sequence` is the iCalendar SEQUENCE of its invites,
    bumped on every change registered patients are told about."""

    __tablename__ = "events"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(String(300), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16), nullable=False, server_default="in_person")
    timezone: Mapped[str] = mapped_column(String(64), nullable=False)
    venue: Mapped[dict[str, Any] | None] = mapped_column(Json)
    languages: Mapped[list[str]] = mapped_column(Json, nullable=False, server_default="[]")
    eligibility_segment: Mapped[str | None] = mapped_column(String(64))
    organiser_team: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="draft")
    sequence: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


class EventSession(Base):
    """One sitting of an event. `seats_taken` counts the seats of registered, offered and attended
    registrations (a patient and their companions); the constraint makes overselling impossible."""

    __tablename__ = "event_sessions"
    __table_args__ = (
        CheckConstraint("seats_taken >= 0 AND seats_taken <= capacity", name="seats_within_capacity"),
        CheckConstraint("end_at > start_at", name="ends_after_start"),
        ForeignKeyConstraint(["event_key"], ["events.key"], ondelete="CASCADE"),
    )

    event_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    start_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    end_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    room: Mapped[str | None] = mapped_column(String(200))
    online_url: Mapped[str | None] = mapped_column(String(500))
    capacity: Mapped[int] = mapped_column(Integer, nullable=False)
    seats_taken: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class EventRegistration(Base):
    """A patient's place in a session: registered, waitlisted (in `seq` order), offered (a seat held
    until `offer_expires_at`), cancelled, attended or no_show. A patient holds at most one live
    registration per session (a partial unique index)."""

    __tablename__ = "event_registrations"
    __table_args__ = (
        ForeignKeyConstraint(
            ["event_key", "session_id"], ["event_sessions.event_key", "event_sessions.id"], ondelete="CASCADE"
        ),
        CheckConstraint("companions >= 0", name="companions_not_negative"),
        Index(
            "uq_event_registrations_live",
            "event_key",
            "session_id",
            "patient_id",
            unique=True,
            postgresql_where=text("status <> 'cancelled'"),
        ),
        Index("ix_event_registrations_queue", "event_key", "session_id", "status", "seq"),
        Index("ix_event_registrations_patient_id", "patient_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=False), nullable=False)
    event_key: Mapped[str] = mapped_column(String(64), nullable=False)
    session_id: Mapped[str] = mapped_column(String(64), nullable=False)
    patient_id: Mapped[str] = mapped_column(String(64), nullable=False)
    companions: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    source: Mapped[str] = mapped_column(String(16), nullable=False, server_default="staff")
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    offers: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    offer_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    checked_in_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancel_reason: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )

    @property
    def seats(self) -> int:
        """The seats this registration takes: the patient and their companions."""
        return 1 + self.companions


class EventEffect(Base):
    """What a committed change still owes Temporal (an outbox row): a patient event to deliver
    (`notice`) or an offer workflow to start (`offer`). Written in the change's own transaction, done
    after it commits, retried until Temporal answers (`next_attempt_at`), then deleted: never lost, and
    harmless to repeat (each effect is idempotent by its id)."""

    __tablename__ = "event_effects"
    __table_args__ = (
        Index("ix_event_effects_due", "next_attempt_at"),
        Index("ix_event_effects_patient_id", "patient_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    event_key: Mapped[str] = mapped_column(String(64), nullable=False)
    patient_id: Mapped[str] = mapped_column(String(64), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(Json, nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
