"""A guardrail decision: what happens to one attempt of a send, and which rule said so."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Outcome = Literal["allow", "defer", "suppress", "skip"]

# The decision log's words for each outcome (an allowed send is logged as `sent`).
LOGGED = {"allow": "sent", "defer": "deferred", "suppress": "suppressed", "skip": "skipped"}


@dataclass(frozen=True)
class Decision:
    """`allow` (possibly with the template's non-PHI variant, or overriding quiet hours), `defer` until a
    moment, `suppress` (the patient must never get it) or `skip` (this message cannot go)."""

    outcome: Outcome
    rule: str
    reason: str | None = None
    until: datetime | None = None
    non_phi: bool = False

    @property
    def logged(self) -> str:
        """The word the decision log records: sent, deferred, suppressed or skipped."""
        return LOGGED[self.outcome]


def allow(rule: str = "allowed", reason: str | None = None, *, non_phi: bool = False) -> Decision:
    """The send may go."""
    return Decision("allow", rule, reason, non_phi=non_phi)
