"""The console's view models: what a search box means, the task queue's filters, the home page's
counts (on the real database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import yaml
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from aftercare.security.principal import Principal, PrincipalKind
from aftercare.segments.validation import parse_segment
from aftercare.store.journey_progress import StepCount
from aftercare.store.overview import overview
from aftercare.store.patient_search import PatientQuery
from aftercare.store.tasks import UNASSIGNED
from console.journey_graph import journey_graph
from console.patients import queries_for
from console.segment_editor import CRITERIA
from console.tasks import TaskFilters
from console.yaml_lines import line_of
from models.journey import JourneyDefinition
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
    assert TaskFilters.of("", "", "open", due_by="not-a-day").due_by is None


def test_the_assignee_filter_names_me_nobody_or_a_user() -> None:
    user = Principal(kind=PrincipalKind.DEV, subject="dev", roles=frozenset())
    assert TaskFilters.of("", "", "open", assignee="").assignee_for(user) is None
    assert TaskFilters.of("", "", "open", assignee="me").assignee_for(user) == "dev"
    assert TaskFilters.of("", "", "open", assignee="nobody").assignee_for(user) == UNASSIGNED
    assert TaskFilters.of("", "", "open", assignee=" jwt:ann ").assignee_for(user) == "jwt:ann"


def test_due_by_a_day_takes_the_whole_day() -> None:
    filters = TaskFilters.of("", "", "open", due_by="2026-03-04")
    assert filters.due_before() == datetime(2026, 3, 5, tzinfo=UTC)


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


JOURNEY_YAML = """key: j
version: 1
name: J
steps:
  - id: ask
    wait_for: {event: sms.reply, timeout: P2D, on_timeout: call}
  - id: route
    branch:
      - when: "%event.data.body = 'YES'"
        goto: done
      - otherwise: call
  - id: call
    task: {queue: care, title: Call}
    goto: nowhere
  - id: done
    end: {outcome: completed}
"""


def test_a_validator_location_is_shown_at_its_line() -> None:
    assert line_of(JOURNEY_YAML, ("steps", 2, "goto")) == 14
    assert line_of(JOURNEY_YAML, ("steps", 1)) == 7
    assert line_of(JOURNEY_YAML, ("version",)) == 2
    assert line_of(JOURNEY_YAML, ("steps", 9, "goto")) == 5  # the nearest existing parent
    assert line_of("key: [", ("key",)) is None


def test_the_journey_graph_names_every_way_out_of_each_step() -> None:
    journey = JourneyDefinition.model_validate(yaml.safe_load(JOURNEY_YAML.replace("nowhere", "done")))
    graph = journey_graph(journey, {"ask": StepCount(at=2, passed=5)})
    edges = {step.id: [(edge.label, edge.target) for edge in step.edges] for step in graph}
    assert edges["ask"] == [("on sms.reply", "route"), ("on timeout", "call")]
    assert edges["route"] == [("when %event.data.body = 'YES'", "done"), ("otherwise", "call")]
    assert edges["call"] == [("next", "done")]
    assert edges["done"] == []
    assert graph[0].count == StepCount(at=2, passed=5)
    assert graph[2].summary == "task for care: Call"


def test_every_example_of_the_segment_picker_is_a_valid_criterion() -> None:
    for name, example in CRITERIA:
        assert parse_segment({"key": "x", "name": "x", "criteria": yaml.safe_load(example)}), name
