"""What event management refuses, each mapped to one HTTP status by the routes."""

from __future__ import annotations


class EventError(Exception):
    """A refused event operation."""


class EventNotFound(EventError):
    """No such event, session or registration (404)."""


class EventConflict(EventError):
    """The operation does not fit the current state (409)."""


class EventInvalid(EventError):
    """Bad input that only the database could tell (422), at a location in the body."""

    def __init__(self, loc: tuple[str | int, ...], message: str, kind: str = "event_invalid") -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message
        self.kind = kind


class NotEligible(EventError):
    """The patient may not register (not in the eligibility segment, or no consent) (422)."""
