"""The console's view models: what a search box means, the task queue's filters, the home page's
counts (on the real database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from aftercare.store.overview import overview
from aftercare.store.patient_search import PatientQuery
from console.patients import queries_for
from console.tasks import TaskFilters
from models.tables import Enrollment, Message, ParkedItem, SyncCursor, Task


def test_a_name_is_searched_as_a_name_only() -> None:
    assert queries_for("  Maria ") == [PatientQuery(name="Maria")]
    assert queries_for("") == []


def test_digits_are_also_an_identifier_and_a_phone_when_long_enough() -> None:
    assert queries_for("MRN-42") == [PatientQuery(name="MRN-42"), PatientQuery(identifier="MRN-42")]
    assert PatientQuery(phone="617-555-0142") in queries_for("617-555-0142")


def test_unknown_task_filters_fall_back_to_the_defaults() -> None:
    assert TaskFilters.of(" team-a ", "urgent", "completed") == TaskFilters("team-a", "urgent", "completed")
    assert TaskFilters.of("", "whatever", "deleted") == TaskFilters("", "", "open")


def _message(number: int, channel: str, status: str, created_at: datetime) -> Message:
    return Message(
        id=f"m{number}",
        idempotency_key=f"k{number}",
        patient_id="p1",
        channel=channel,
        status=status,
        created_at=created_at,
    )


async def test_the_home_counts_count_today_per_channel(
    empty_database: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    now = datetime.now(UTC)
    async with sessions.begin() as session:
        session.add_all(
            [
                _message(1, "sms", "sent", now),
                _message(2, "sms", "delivered", now),
                _message(3, "sms", "skipped", now),
                _message(4, "email", "failed", now),
                _message(5, "email", "sent", now - timedelta(days=2)),
                Task(id="t1", idempotency_key="t1", queue="q", title="call", patient_id="p1"),
                Task(
                    id="t2",
                    idempotency_key="t2",
                    queue="q",
                    title="done",
                    patient_id="p1",
                    status="completed",
                ),
                ParkedItem(source="trigger", reason="unknown patient"),
                SyncCursor(source_key="ehr", resource_type="Observation", last_error="timeout"),
                Enrollment(
                    id="e1",
                    journey_key="j",
                    journey_version=1,
                    patient_id="p1",
                    status="running",
                    workflow_id="w1",
                    trigger={},
                    context={},
                    exclusive=True,
                    once_only=False,
                ),
            ]
        )
    async with sessions() as session:
        counts = await overview(session, now - timedelta(hours=24))
    assert counts.active_enrollments == 1
    assert counts.open_tasks == 1
    assert counts.parked_items == 1
    assert counts.failing_sources == 1
    assert [(row.channel, row.sent, row.blocked, row.failed) for row in counts.messages] == [
        ("email", 0, 0, 1),
        ("sms", 2, 1, 0),
    ]
