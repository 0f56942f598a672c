"""What the interpreter asks of the steps it runs: `JourneySteps` (an enrollment's durable steps) and
the console's dry run (`aftercare/journey_dry_run.py`, which sends nothing) both answer it, so one
interpreter walks a definition for both."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from models.journey import CallSpec, SplitPath, SurveyStep
from models.temporal import PatientEvent

if TYPE_CHECKING:
    from workflows.calls import CallResult


class StepRunner(Protocol):
    """The steps `workflows/interpreter.py` runs, with the arguments it passes."""

    def should_continue_as_new(self) -> bool:
        """True when the run's history is long enough to continue as new."""

    async def continue_as_new(self, *, position: str | None = None) -> Any:
        """Continue as a new run at `position`."""

    async def send(
        self,
        template: str | None = None,
        *,
        channel: str | None = None,
        fallback: Sequence[str] | None = None,
        body: str | None = None,
        subject: str | None = None,
        step: str | None = None,
        name: str | None = None,
        purpose: str | None = None,
        urgent: bool = False,
        attach: Sequence[str] = (),
    ) -> object:
        """A `send` step."""

    async def invite(
        self,
        event: str,
        *,
        valid_days: int = 14,
        template: str | None = None,
        channel: str | None = None,
        fallback: Sequence[str] | None = None,
        body: str | None = None,
        subject: str | None = None,
        step: str | None = None,
        name: str | None = None,
        purpose: str | None = None,
    ) -> object:
        """An `invite` step: a message with the patient's link to an event."""

    async def call(self, spec: CallSpec, *, step: str | None = None, name: str | None = None) -> CallResult:
        """A `call` step."""

    async def survey(self, step: SurveyStep) -> str | None:
        """A `survey` step; the step to go to when it expired unanswered, else None."""

    async def wait(
        self, duration: timedelta | str, *, step: str | None = None, name: str | None = None
    ) -> None:
        """A `wait` for a duration."""

    async def wait_until(self, clock: str, *, step: str | None = None, name: str | None = None) -> None:
        """A `wait` until a time of day."""

    async def wait_until_moment(
        self, expression: str, offset: timedelta = ..., *, step: str | None = None, name: str | None = None
    ) -> bool:
        """A `wait` until a moment from the data."""

    async def wait_business_days(
        self, days: int, *, step: str | None = None, name: str | None = None
    ) -> None:
        """A `wait` of business days."""

    async def wait_for(
        self,
        event: str,
        *,
        timeout: timedelta | str | None = None,  # noqa: ASYNC109 (a journey's deadline)
        timeout_business_days: int | None = None,
        criteria: str | None = None,
        step: str | None = None,
        name: str | None = None,
    ) -> PatientEvent | None:
        """A `wait_for`: the event, or None at the timeout (a duration, or business days)."""

    async def first_true(
        self, conditions: Sequence[str], *, step: str | None = None, name: str | None = None
    ) -> int | None:
        """A `branch`: the index of the first condition that holds."""

    async def task(
        self,
        queue: str,
        title: str,
        *,
        description: str | None = None,
        due: timedelta | str | None = None,
        due_business_days: int | None = None,
        priority: str = "normal",
        step: str | None = None,
        name: str | None = None,
    ) -> object:
        """A `task` step."""

    async def update(
        self, values: Mapping[str, Any], *, step: str | None = None, name: str | None = None
    ) -> object:
        """An `update` step."""

    async def fetch(
        self,
        query: str,
        *,
        into: str | None = None,
        limit: int = 50,
        source: str | None = None,
        step: str | None = None,
        name: str | None = None,
    ) -> object:
        """A `fetch` step."""

    async def split(
        self,
        paths: Sequence[SplitPath] | Mapping[str, int],
        *,
        step: str | None = None,
        name: str | None = None,
    ) -> str:
        """A `split`: the label of the chosen path."""

    async def enroll(
        self,
        journey: str,
        *,
        version: int | None = None,
        context: Mapping[str, Any] | None = None,
        step: str | None = None,
        name: str | None = None,
    ) -> object:
        """An `enroll` step."""

    async def end(
        self, outcome: str = "completed", *, step: str | None = None, name: str | None = None
    ) -> Any:
        """An `end` step (raises `JourneyEndedError`)."""
