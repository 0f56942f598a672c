"""A journey definition as the console draws it: each step with its kind, a one-line description, where
it can go next (in order, by `goto`, by branch, on a timeout) and how many enrollments sit at or have
passed it."""

from __future__ import annotations

from dataclasses import dataclass, field

from aftercare.store.journey_progress import StepCount
from models.durations import format_iso_duration
from models.journey import (
    BranchOtherwise,
    BranchStep,
    EndStep,
    EnrollStep,
    JourneyDefinition,
    SendStep,
    SplitStep,
    Step,
    TaskStep,
    WaitForStep,
    WaitStep,
)


@dataclass(frozen=True)
class Edge:
    """A way out of a step: `label` says when, `target` is a step id (None: the journey ends)."""

    label: str
    target: str | None


@dataclass(frozen=True)
class GraphStep:
    """One node of the drawing."""

    id: str
    kind: str
    summary: str
    edges: list[Edge] = field(default_factory=list)
    count: StepCount = field(default_factory=StepCount)


def _summary(step: Step) -> str:
    if isinstance(step, SendStep):
        spec = step.send
        what = f"template {spec.template}" if spec.template else "an inline message"
        return f"send {what}" + (f" on {spec.channel}" if spec.channel else "")
    if isinstance(step, WaitStep):
        wait = step.wait
        if wait.duration is not None:
            return f"wait {format_iso_duration(wait.duration)}"
        if wait.until is not None:
            return f"wait until {wait.until.time}"
        return "wait until a moment from the data"
    if isinstance(step, WaitForStep):
        return f"wait for {step.wait_for.event}, at most {step.wait_for.describe_timeout()}"
    if isinstance(step, TaskStep):
        return f"task for {step.task.queue}: {step.task.title}"
    if isinstance(step, EndStep):
        return f"end: {step.end.outcome}"
    if isinstance(step, EnrollStep):
        return f"enroll in {step.enroll.journey}"
    if isinstance(step, BranchStep):
        return "branch"
    if isinstance(step, SplitStep):
        return "A/B split"
    return step.kind


def _edges(step: Step, following: str | None) -> list[Edge]:
    if isinstance(step, EndStep):
        return []
    edges: list[Edge] = []
    if isinstance(step, BranchStep):
        for case in step.branch:
            if isinstance(case, BranchOtherwise):
                edges.append(Edge("otherwise", case.otherwise))
            else:
                edges.append(Edge(f"when {case.when}", case.goto))
        return edges
    if isinstance(step, SplitStep):
        return [Edge(f"{path.name or 'path'} (weight {path.weight})", path.goto) for path in step.split]
    if isinstance(step, WaitForStep):
        edges.append(Edge(f"on {step.wait_for.event}", step.goto or following))
        if step.wait_for.on_timeout:
            edges.append(Edge("on timeout", step.wait_for.on_timeout))
        return edges
    return [Edge("next", step.goto or following)]


def journey_graph(journey: JourneyDefinition, counts: dict[str, StepCount]) -> list[GraphStep]:
    """The journey's steps in order, with their edges and counts."""
    steps = journey.steps
    graph = []
    for index, step in enumerate(steps):
        following = steps[index + 1].id if index + 1 < len(steps) else None
        graph.append(
            GraphStep(
                step.id, step.kind, _summary(step), _edges(step, following), counts.get(step.id, StepCount())
            )
        )
    return graph
