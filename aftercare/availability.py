"""Which part is down, from the error a call raised: the database, Temporal, or neither.

The API answers such errors with 503 and `Retry-After` (api/errors.py); the caller's retry is safe,
because every trigger, notification and enrollment request is idempotent."""

from __future__ import annotations

import psycopg
from sqlalchemy import exc as sa
from temporalio.service import RPCError, RPCStatusCode

DATABASE = "database"
TEMPORAL = "temporal"

_TEMPORAL_TRANSIENT = frozenset(
    {
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.RESOURCE_EXHAUSTED,
        RPCStatusCode.CANCELLED,
    }
)


_DATABASE_DOWN = (sa.TimeoutError, sa.InterfaceError, sa.OperationalError, psycopg.OperationalError)


class TemporalUnavailableError(Exception):
    """Temporal did not answer in time."""


def unavailable_part(error: BaseException) -> str | None:
    """`database` or `temporal` when `error` says that part cannot be reached now; None otherwise."""
    if isinstance(error, _DATABASE_DOWN):
        return DATABASE
    if isinstance(error, sa.DBAPIError) and error.connection_invalidated:
        return DATABASE
    if isinstance(error, TemporalUnavailableError):
        return TEMPORAL
    if isinstance(error, RPCError) and error.status in _TEMPORAL_TRANSIENT:
        return TEMPORAL
    if isinstance(error, RuntimeError) and str(error).startswith("Failed client connect"):
        return TEMPORAL
    return None


def explanation(part: str, error: BaseException) -> str:
    """What a caller is told: which part, and that a retry is safe (never the error's own text, which
    may quote a statement's parameters)."""
    if part == DATABASE and isinstance(error, sa.TimeoutError):
        return "the database has no free connection right now (the pool is exhausted); retry shortly"
    if part == DATABASE:
        return "the database is unavailable; the request was not completed, and retrying it is safe"
    return "Temporal is unavailable; the request was not completed, and retrying it (same id) is safe"
