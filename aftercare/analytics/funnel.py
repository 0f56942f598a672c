"""A journey's funnel from the rollups: per step, how many passed it, wait there now, timed out,
exited after it, which results and branches they had, and how long after enrollment they got there;
the enrollments that entered and how they ended, with the time to each outcome.

Filters: `segment` keeps the enrollments that entered through that segment (`""`: those started
otherwise), every number of the funnel; `channel` keeps the step records that sent on that channel
(their results, branches, timeouts and times), so only the steps that sent on it are listed, with their
`waiting` and `exited` (not per channel: a waiting enrollment has not sent yet); the journey's
`entered` and `outcomes` are not per channel."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.analytics.live import DURATIONS, ENTRIES, EXITS, OUTCOMES, STEPS, WAITING
from aftercare.analytics.window import Window, percentile_bound
from aftercare.store.journeys import get_journey

GOAL = "goal:"
# The `segment` filter's name for the enrollments that entered through no segment (underscores are not
# in segment keys, so no segment can be called that).
NO_SEGMENT = "_none"


def segment_key(name: str) -> str:
    """The rollups' segment key of a filter's segment name (`NO_SEGMENT` is `""`)."""
    return "" if name == NO_SEGMENT else name


@dataclass
class StepFunnel:
    """One step's numbers. `entered` is `passed` plus `waiting` (a step is recorded when it ends)."""

    id: str
    passed: int = 0
    waiting: int = 0
    timed_out: int = 0
    exited: dict[str, int] = field(default_factory=dict)
    results: dict[str, int] = field(default_factory=dict)
    branches: dict[str, int] = field(default_factory=dict)
    median_seconds: int | None = None
    p90_seconds: int | None = None

    @property
    def entered(self) -> int:
        return self.passed + self.waiting


@dataclass
class OutcomeFunnel:
    """Enrollments that ended with one outcome, and the time from enrollment to it."""

    outcome: str
    count: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    median_seconds: int | None = None
    p90_seconds: int | None = None


@dataclass(frozen=True)
class Funnel:
    """A journey's funnel (one version or all, one segment or all, one channel or all)."""

    journey_key: str
    version: int | None
    segment: str | None
    channel: str | None
    entered: int
    steps: list[StepFunnel]
    outcomes: list[OutcomeFunnel]


@dataclass(frozen=True)
class _Scope:
    """The journey (one version or all) and the window a funnel counts."""

    journey_key: str
    version: int | None
    window: Window
    segment: str | None = None

    async def sums(
        self,
        session: AsyncSession,
        table: Any,
        keys: list[Any],
        counted: Any,
        windowed: bool = True,
        where: ColumnElement[bool] | None = None,
    ) -> list[tuple[Any, ...]]:
        """`sum(counted)` per `keys` over the table's rows of this journey (segment, window and `where`),
        zeros left out."""
        query = select(*keys, func.sum(counted)).where(
            table.journey_key == self.journey_key, where if where is not None else true()
        )
        if self.version is not None:
            query = query.where(table.journey_version == self.version)
        if self.segment is not None:
            query = query.where(table.segment == self.segment)
        if windowed:
            query = query.where(self.window.over(table.hour))
        rows = await session.execute(query.group_by(*keys))
        return [(*row[:-1], int(row[-1])) for row in rows if row[-1]]


def _percentiles(histogram: dict[int, int]) -> tuple[int | None, int | None]:
    return percentile_bound(histogram, 0.5), percentile_bound(histogram, 0.9)


async def journey_funnel(
    session: AsyncSession,
    journey_key: str,
    *,
    version: int | None = None,
    window: Window | None = None,
    segment: str | None = None,
    channel: str | None = None,
) -> Funnel:
    """The funnel over the window (hours of the facts; `waiting` is now, whatever the window), of the
    enrollments that entered through `segment` (`""`: through none) and the steps sent on `channel`."""
    scope = _Scope(journey_key, version, window or Window(), segment)
    steps: dict[str, StepFunnel] = {}

    def step(step_id: str) -> StepFunnel:
        return steps.setdefault(step_id, StepFunnel(step_id))

    entered = sum(row[-1] for row in await scope.sums(session, ENTRIES, [], ENTRIES.entered))
    recorded = STEPS
    on_channel = and_(true(), *([recorded.channel == channel] if channel is not None else []))
    for step_id, result, branch, count in await scope.sums(
        session, recorded, [recorded.step, recorded.result, recorded.branch], recorded.n, where=on_channel
    ):
        if step_id.startswith("<"):  # `<exited>` and the like: how an enrollment ended, not a step
            continue
        row = step(step_id)
        row.passed += count
        row.results[result] = row.results.get(result, 0) + count
        row.timed_out += count if result == "timeout" else 0
        taken = _branch_taken(result, branch)
        if taken is not None:
            row.branches[taken] = row.branches.get(taken, 0) + count
    sent_on = set(steps) if channel is not None else None

    def listed(step_id: str) -> bool:
        return sent_on is None or step_id in sent_on

    waiting = WAITING
    for step_id, count in await scope.sums(session, waiting, [waiting.step], waiting.waiting, windowed=False):
        if listed(step_id):
            step(step_id).waiting = count
    exits = EXITS
    for after_step, status, count in await scope.sums(
        session, exits, [exits.after_step, exits.status], exits.n
    ):
        if after_step and listed(after_step):
            step(after_step).exited[status] = count
    outcomes: dict[str, OutcomeFunnel] = {}
    ended = OUTCOMES
    for outcome, status, count in await scope.sums(session, ended, [ended.outcome, ended.status], ended.n):
        reached = outcomes.setdefault(outcome, OutcomeFunnel(outcome))
        reached.count += count
        reached.statuses[status] = count
    histograms: dict[str, dict[int, int]] = defaultdict(dict)
    durations = DURATIONS
    to_goal_or_on_channel = (
        or_(durations.point.startswith(GOAL), durations.channel == channel) if channel is not None else None
    )
    for point, bound, count in await scope.sums(
        session, durations, [durations.point, durations.le], durations.n, where=to_goal_or_on_channel
    ):
        histograms[point][int(bound)] = count
    for row in steps.values():
        row.median_seconds, row.p90_seconds = _percentiles(histograms.get(row.id, {}))
    for reached in outcomes.values():
        reached.median_seconds, reached.p90_seconds = _percentiles(histograms.get(GOAL + reached.outcome, {}))
    order = await _step_order(session, journey_key, version)
    ranked = sorted(steps.values(), key=lambda row: (order.get(row.id, len(order)), row.id))
    return Funnel(
        journey_key=journey_key,
        version=version,
        segment=segment,
        channel=channel,
        entered=int(entered or 0),
        steps=ranked,
        outcomes=sorted(outcomes.values(), key=lambda row: (-row.count, row.outcome)),
    )


def _branch_taken(result: str, branch: str) -> str | None:
    """The path a branch or split step took: the matched condition, `otherwise`, or the A/B path."""
    if branch:
        return branch
    if result == "no match":
        return "otherwise"
    if result.startswith("path "):
        return result.removeprefix("path ")
    return None


async def _step_order(session: AsyncSession, journey_key: str, version: int | None) -> dict[str, int]:
    """Step ids in the definition's order (the given version, else the latest)."""
    journey = await get_journey(session, journey_key, version)
    if journey is None:
        return {}
    return {defined.id: position for position, defined in enumerate(journey.steps)}
