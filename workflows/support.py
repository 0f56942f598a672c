"""Plain helpers of the enrollment interpreter.

Workflow code imports this module through `imports_passed_through`, so it is loaded once per worker
rather than once per workflow run; it must stay deterministic: no clock, no randomness, no I/O.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from temporalio.exceptions import ActivityError, ApplicationError, FailureError, TimeoutError

from models.journey import WaitForSpec
from models.temporal import PatientEvent


@dataclass(frozen=True)
class Transition:
    """How a step ended: its recorded result, and where to go next (or the enrollment's outcome)."""

    result: str
    detail: str | None = None
    goto: str | None = None
    end_outcome: str | None = None


class StepFailedError(Exception):
    """A step could not be carried out; the enrollment fails with this reason."""

    def __init__(self, step_id: str, reason: str) -> None:
        super().__init__(reason)
        self.step_id = step_id
        self.reason = reason


class EventMatcher:
    """Looks through a `wait_for` window once per event: the first event that answers it wins."""

    def __init__(
        self,
        events: Sequence[PatientEvent],
        start: int,
        spec: WaitForSpec,
        matches: Callable[[WaitForSpec, PatientEvent], Awaitable[bool]],
    ) -> None:
        self._events = events
        self._next = start
        self._spec = spec
        self._matches = matches
        self.found: PatientEvent | None = None

    async def scan(self) -> None:
        """Check the events that arrived since the last scan."""
        while self.found is None and self._next < len(self._events):
            event = self._events[self._next]
            self._next += 1
            if await self._matches(self._spec, event):
                self.found = event


# What an activity's failure looks like in workflow code: regular activities raise `ActivityError`
# wrapping the cause; local activities raise the cause (`ApplicationError`, `TimeoutError`) itself.
ACTIVITY_FAILURES = (ActivityError, ApplicationError, TimeoutError)


def _cause(error: FailureError) -> FailureError | BaseException:
    return error.cause if isinstance(error, ActivityError) and error.cause is not None else error


def failure_reason(error: FailureError) -> str:
    """The message of the error an activity failed with."""
    cause = _cause(error)
    return cause.message if isinstance(cause, FailureError) else str(cause)


def is_permanent(error: FailureError) -> bool:
    """True when retrying the activity elsewhere cannot help."""
    cause = _cause(error)
    return isinstance(cause, ApplicationError) and cause.non_retryable
