"""The analytics counters on `/metrics`, for Grafana users: read from the rollup tables when Prometheus
scrapes, so they count every process's facts (API, workers) and survive restarts. Labels are facility,
channel, journey, step, status and rule, never a patient."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client.core import REGISTRY, CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.analytics import live
from aftercare.analytics.messages import COUNTS

MESSAGES = "aftercare_analytics_messages"
ENTERED = "aftercare_analytics_enrollments_entered"
ENDED = "aftercare_analytics_enrollments_ended"
DECISIONS = "aftercare_analytics_send_decisions"
WAITING = "aftercare_analytics_enrollments_waiting"
METRIC_NAMES = (f"{MESSAGES}_total", f"{ENTERED}_total", f"{ENDED}_total", f"{DECISIONS}_total", WAITING)


@dataclass
class Snapshot:
    """The totals as of the last scrape."""

    messages: list[tuple[str, str, str, int]] = field(default_factory=list)  # facility, channel, outcome
    entered: list[tuple[str, str, int]] = field(default_factory=list)  # facility, journey
    ended: list[tuple[str, str, str, int]] = field(default_factory=list)  # facility, journey, status
    decisions: list[tuple[str, str, str, str, int]] = field(default_factory=list)
    waiting: list[tuple[str, str, str, int]] = field(default_factory=list)  # facility, journey, step


async def read_snapshot(session: AsyncSession) -> Snapshot:
    """Every total, in five grouped reads of the rollups."""
    snapshot = Snapshot()
    table = live.MESSAGES
    sums = [func.sum(getattr(table, name)) for name in COUNTS]
    for facility, channel, *values in await session.execute(
        select(table.facility, table.channel, *sums).group_by(table.facility, table.channel)
    ):
        snapshot.messages.extend(
            (facility, channel, name, int(value or 0)) for name, value in zip(COUNTS, values, strict=True)
        )
    entries = live.ENTRIES
    snapshot.entered = [
        (facility, journey, int(n))
        for facility, journey, n in await session.execute(
            select(entries.facility, entries.journey_key, func.sum(entries.entered)).group_by(
                entries.facility, entries.journey_key
            )
        )
    ]
    outcomes = live.OUTCOMES
    snapshot.ended = [
        (facility, journey, status, int(n))
        for facility, journey, status, n in await session.execute(
            select(outcomes.facility, outcomes.journey_key, outcomes.status, func.sum(outcomes.n)).group_by(
                outcomes.facility, outcomes.journey_key, outcomes.status
            )
        )
    ]
    decided = live.DECISIONS
    snapshot.decisions = [
        (facility, channel, decision, rule, int(n))
        for facility, channel, decision, rule, n in await session.execute(
            select(
                decided.facility, decided.channel, decided.decision, decided.rule, func.sum(decided.n)
            ).group_by(decided.facility, decided.channel, decided.decision, decided.rule)
        )
    ]
    waiting = live.WAITING
    snapshot.waiting = [
        (facility, journey, step, int(n))
        for facility, journey, step, n in await session.execute(
            select(waiting.facility, waiting.journey_key, waiting.step, func.sum(waiting.waiting)).group_by(
                waiting.facility, waiting.journey_key, waiting.step
            )
        )
    ]
    return snapshot


class AnalyticsCollector(Collector):
    """Yields the last snapshot's totals as Prometheus families."""

    def __init__(self) -> None:
        self.snapshot = Snapshot()

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        """The families, from the snapshot taken for this scrape."""
        shot = self.snapshot
        messages = CounterMetricFamily(
            MESSAGES,
            "Messages recorded and their fate, by outcome",
            labels=["facility", "channel", "outcome"],
        )
        for facility, channel, outcome, value in shot.messages:
            messages.add_metric([facility, channel, outcome], value)
        entered = CounterMetricFamily(
            ENTERED, "Enrollments that entered a journey", labels=["facility", "journey_key"]
        )
        for facility, journey, value in shot.entered:
            entered.add_metric([facility, journey], value)
        ended = CounterMetricFamily(
            ENDED, "Enrollments that ended, by status", labels=["facility", "journey_key", "status"]
        )
        for facility, journey, status, value in shot.ended:
            ended.add_metric([facility, journey, status], value)
        decisions = CounterMetricFamily(
            DECISIONS, "Guardrail decisions on sends", labels=["facility", "channel", "decision", "rule"]
        )
        for facility, channel, decision, rule, value in shot.decisions:
            decisions.add_metric([facility, channel, decision, rule], value)
        waiting = GaugeMetricFamily(
            WAITING, "Running enrollments at each step now", labels=["facility", "journey_key", "step"]
        )
        for facility, journey, step, value in shot.waiting:
            waiting.add_metric([facility, journey, step], value)
        yield from (messages, entered, ended, decisions, waiting)


COLLECTOR = AnalyticsCollector()
REGISTRY.register(COLLECTOR)
