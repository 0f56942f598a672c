"""When to try a FHIR request again, and how long to wait first."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

# Statuses that say "not now" rather than "no".
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# Statuses that promise the request was not acted on, so even a non-idempotent one may be sent again.
NOT_PROCESSED_STATUSES = frozenset({429, 503})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: attempt n waits about `base * 2**(n-1)` seconds (at most
    `max_delay`), or what `Retry-After` asks (at most `max_retry_after`)."""

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0

    def delay(
        self,
        attempt: int,
        retry_after: float | None,
        random_fraction: Callable[[], float] = random.random,
    ) -> float:
        """Seconds to wait after failed attempt `attempt` (1-based)."""
        if retry_after is not None:
            return float(min(max(retry_after, 0.0), self.max_retry_after))
        ceiling: float = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return ceiling / 2 + random_fraction() * ceiling / 2


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """`Retry-After` as seconds: either delta-seconds or an HTTP-date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


def may_retry(method: str, status: int) -> bool:
    """Whether a request may be sent again after this answer. Non-idempotent requests (POST) are only
    repeated when the server said it did not act on them."""
    if status not in RETRYABLE_STATUSES:
        return False
    return method.upper() in IDEMPOTENT_METHODS or status in NOT_PROCESSED_STATUSES


def may_retry_after_error(method: str, error: httpx.TransportError) -> bool:
    """Whether a request may be sent again after the network failed. A POST is only repeated when it
    cannot have reached the server (no connection was made)."""
    if method.upper() in IDEMPOTENT_METHODS:
        return True
    return isinstance(error, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
