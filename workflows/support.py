"""Plain helpers of the enrollment interpreter.

Workflow code imports this module through `imports_passed_through`, so it is loaded once per worker
rather than once per workflow run; it must stay deterministic: no clock, no randomness, no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from temporalio.exceptions import ActivityError, ApplicationError, FailureError, TimeoutError

from models.journey import SplitPath


class StepFailedError(Exception):
    """A step could not be carried out; the enrollment fails with this reason."""

    def __init__(self, step_id: str, reason: str) -> None:
        super().__init__(reason)
        self.step_id = step_id
        self.reason = reason


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


def choose_path(paths: Sequence[SplitPath], seed: str) -> SplitPath:
    """A weighted choice that depends only on `seed` (enrollment, step and visit): the same enrollment
    always takes the same path, and paths are taken in proportion to their weights across enrollments."""
    total = sum(path.weight for path in paths)
    point = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big") / 2**64 * total
    for path in paths:
        point -= path.weight
        if point < 0 and path.weight > 0:
            return path
    return next(path for path in reversed(paths) if path.weight > 0)
