"""Rollup tables of analytics: counts kept from the facts by database triggers (migrations `0013`,
`0015`), keyed by the facility a fact is counted in, never by patient. The triggers append each fact's
contribution to the rollup's `_delta` table in the fact's transaction; a folder moves the deltas into
the rollup every second; readers read both (`live()`).

On `models/table_base.py`'s `Base`; `models/tables.py` imports them, so migrations see them. A fact is
counted in the message's own facility, else the first (by key) of its patient's facilities, else `""`;
empty keys (`journey_key`, `template_key`, `campaign_run_id`) are `""`, not NULL, so they can be part of
the primary key. `hour` is the UTC hour of the fact (a message's creation, a step's record, an
enrollment's start or end).
"""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar, cast

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
    select,
    union_all,
)
from sqlalchemy.orm import Mapped, aliased, mapped_column

from models.table_base import Base

_KEY = String(64)


def _key() -> Mapped[str]:
    return mapped_column(_KEY, primary_key=True)


def _count() -> Mapped[int]:
    return mapped_column(BigInteger, nullable=False, server_default="0")


def _shard() -> Mapped[int]:
    """Part of the key of the busiest rollups: 0-15 by the fact's id in migration `0013` (so concurrent
    senders seldom waited for one row's lock), always 0 since `0015` (only the folder writes them);
    every read sums over it."""
    return mapped_column(SmallInteger, primary_key=True)


def _channel() -> Mapped[str]:
    """The channel of the message a step record sent (the message of that enrollment, step and visit,
    by its idempotency key), `""` for a step that sent none (and for a duration to the goal): migration
    `0017`."""
    return mapped_column(String(16), primary_key=True)


def _hour() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), primary_key=True)


class _JourneyRollup:
    facility: Mapped[str] = _key()
    journey_key: Mapped[str] = _key()
    journey_version: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The segment the enrollment entered through (a dynamic segment's `segment.entered`), `""` for an
    # enrollment started otherwise (a FHIR resource, an event, the API, another journey): migration `0017`.
    segment: Mapped[str] = _key()


class AnalyticsEntry(_JourneyRollup, Base):
    """Enrollments that entered a journey version, per hour of their start."""

    __tablename__ = "analytics_entries"

    hour: Mapped[datetime] = _hour()
    entered: Mapped[int] = _count()


class AnalyticsOutcome(_JourneyRollup, Base):
    """Enrollments that ended, per status and outcome (the goal reached), per hour of their end."""

    __tablename__ = "analytics_outcomes"

    hour: Mapped[datetime] = _hour()
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    outcome: Mapped[str] = _key()
    n: Mapped[int] = _count()


class AnalyticsStep(_JourneyRollup, Base):
    """Step records per step, result, branch taken (a branch step's matched condition) and channel."""

    __tablename__ = "analytics_steps"

    hour: Mapped[datetime] = _hour()
    step: Mapped[str] = _key()
    result: Mapped[str] = _key()
    branch: Mapped[str] = mapped_column(Text, primary_key=True)
    channel: Mapped[str] = _channel()
    n: Mapped[int] = _count()


class AnalyticsStepExit(_JourneyRollup, Base):
    """Enrollments that exited, were cancelled or failed, by the last step they had passed."""

    __tablename__ = "analytics_step_exits"

    hour: Mapped[datetime] = _hour()
    after_step: Mapped[str] = _key()
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    n: Mapped[int] = _count()


class AnalyticsWaiting(_JourneyRollup, Base):
    """Running enrollments at each step now."""

    __tablename__ = "analytics_waiting"

    step: Mapped[str] = _key()
    waiting: Mapped[int] = _count()


class AnalyticsDuration(_JourneyRollup, Base):
    """A histogram of the time from enrollment to a step (`point` is the step id) or to the end
    (`goal:<outcome>`): `le` is the bucket's upper bound in seconds."""

    __tablename__ = "analytics_durations"

    hour: Mapped[datetime] = _hour()
    point: Mapped[str] = mapped_column(String(80), primary_key=True)
    le: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = _channel()
    n: Mapped[int] = _count()


class AnalyticsPath(_JourneyRollup, Base):
    """Ended enrollments per A/B path taken at a split step (`path` is the arm's label), and how they
    ended: the conversions of a journey's split test."""

    __tablename__ = "analytics_paths"

    step: Mapped[str] = _key()
    path: Mapped[str] = _key()
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    outcome: Mapped[str] = _key()
    n: Mapped[int] = _count()


class AnalyticsMessages(Base):
    """Messages per hour of creation, channel, journey, template and campaign run, and their fate."""

    __tablename__ = "analytics_messages"
    __table_args__ = (Index("ix_analytics_messages_hour", "hour"),)

    facility: Mapped[str] = _key()
    hour: Mapped[datetime] = _hour()
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    journey_key: Mapped[str] = _key()
    template_key: Mapped[str] = _key()
    campaign_run_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    shard: Mapped[int] = _shard()
    messages: Mapped[int] = _count()
    sent: Mapped[int] = _count()
    delivered: Mapped[int] = _count()
    failed: Mapped[int] = _count()
    blocked: Mapped[int] = _count()
    opened: Mapped[int] = _count()
    clicked: Mapped[int] = _count()
    bounced: Mapped[int] = _count()
    # Sent messages replied to, or followed by an opt-out, within 7 days (the campaigns' attribution).
    replied: Mapped[int] = _count()
    opted_out: Mapped[int] = _count()


class AnalyticsFailure(Base):
    """Failed messages per hour of creation, channel, journey, template and campaign run, by reason: the
    provider and the error code it gave (`twilio code 21211`, `sendgrid HTTP 400`), never its text."""

    __tablename__ = "analytics_failures"

    facility: Mapped[str] = _key()
    hour: Mapped[datetime] = _hour()
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    journey_key: Mapped[str] = _key()
    template_key: Mapped[str] = _key()
    campaign_run_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    reason: Mapped[str] = _key()
    n: Mapped[int] = _count()


class AnalyticsDecision(Base):
    """Guardrail decisions per hour, channel, journey, decision and rule (why a send was blocked)."""

    __tablename__ = "analytics_decisions"

    facility: Mapped[str] = _key()
    hour: Mapped[datetime] = _hour()
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    journey_key: Mapped[str] = _key()
    decision: Mapped[str] = mapped_column(String(16), primary_key=True)
    rule: Mapped[str] = mapped_column(String(32), primary_key=True)
    shard: Mapped[int] = _shard()
    n: Mapped[int] = _count()


ROLLUP_MODELS: tuple[type[Base], ...] = (
    AnalyticsEntry,
    AnalyticsOutcome,
    AnalyticsStep,
    AnalyticsStepExit,
    AnalyticsWaiting,
    AnalyticsDuration,
    AnalyticsPath,
    AnalyticsMessages,
    AnalyticsFailure,
    AnalyticsDecision,
)


def _delta_table(model: type[Base]) -> Table:
    """`<rollup>_delta` (migration `0015`): the rollup's columns, no key, no index. The triggers append
    each fact's signed contribution here; `analytics_fold()` moves them into the rollup."""
    rollup = cast(Table, model.__table__)
    return Table(
        f"{rollup.name}_delta",
        Base.metadata,
        *(
            Column(column.name, column.type, nullable=False, server_default=column.server_default)
            for column in rollup.columns
        ),
    )


_M = TypeVar("_M", bound=Base)
DELTAS: dict[str, Table] = {
    table.name.removesuffix("_delta"): table for table in map(_delta_table, ROLLUP_MODELS)
}


def live(model: type[_M]) -> type[_M]:
    """The rollup as readers see it: its folded rows and its pending deltas together (every reader sums,
    so a key in both adds up), hence exactly the facts of the reader's snapshot, folded or not."""
    rollup = cast(Table, model.__table__)
    delta = DELTAS[rollup.name]
    names = [column.name for column in rollup.columns]
    rows = union_all(
        select(*(rollup.c[name] for name in names)), select(*(delta.c[name] for name in names))
    ).subquery(f"{rollup.name}_live")
    return cast(type[_M], aliased(model, rows, adapt_on_names=True))
