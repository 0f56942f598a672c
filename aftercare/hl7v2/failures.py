"""Why processing a message failed, and what follows: try again (a transaction that lost a race),
leave it unanswered so the sender resends (the database or Temporal out of reach, or any failure once
the batch was stored: its hand-off or its record), or park it with an `AE` (the database refused one
of its values, or Aftercare failed on it the same way twice before storing it).

A refusal names the field where the database's error allows: a value longer than a column takes is
traced back to the first v2 field holding a component that long. The reason never quotes a value
(it is kept unsealed and listed to operators).
"""

from __future__ import annotations

import re
from typing import Literal

import psycopg
from sqlalchemy import exc as sa
from temporalio.exceptions import TemporalError

from aftercare.hl7v2.messages import V2Message, V2Problem

Failure = Literal["again", "unreachable", "refused"]
_LIMIT = re.compile(r"character varying\((\d+)\)")
_QUOTED = re.compile(r'(:\s*)".*"$')


class AfterCommit(Exception):
    """A batch failed once stored: in its hand-off to Temporal or its record. Never the fault of a
    message (Temporal or the database went away): its messages stay unanswered and are resent."""

    def __init__(self, error: Exception) -> None:
        super().__init__(error_name(error))
        self.error = error


def _cause(error: BaseException) -> BaseException:
    if isinstance(error, AfterCommit):
        return _cause(error.error)
    return error.orig if isinstance(error, sa.DBAPIError) and error.orig is not None else error


def failure_of(error: BaseException) -> Failure:
    """`again`: a serialisation failure or deadlock, worth running again at once; `unreachable`: the
    database or Temporal cannot be reached (no answer, the sender resends later); `refused`: something
    about this message (a value the database refuses, or an error of Aftercare's own)."""
    if isinstance(error, AfterCommit):
        return "again" if failure_of(error.error) == "again" else "unreachable"
    cause = _cause(error)
    if isinstance(cause, (psycopg.errors.SerializationFailure, psycopg.errors.DeadlockDetected)):
        return "again"
    if isinstance(cause, (psycopg.DataError, psycopg.IntegrityError)):
        return "refused"
    unreachable = (
        psycopg.OperationalError,
        psycopg.InterfaceError,
        sa.OperationalError,
        sa.InterfaceError,
        sa.DisconnectionError,
        sa.TimeoutError,
        OSError,
        TimeoutError,
        TemporalError,
    )
    return "unreachable" if isinstance(cause, unreachable) else "refused"


def refusal(message: V2Message, error: BaseException) -> V2Problem:
    """The `AE` for a message the database refused (HL7 table 0357: 102, a data type error, with the
    field when it can be traced) or that failed inside Aftercare (207)."""
    cause = _cause(error)
    if isinstance(cause, (psycopg.DataError, psycopg.IntegrityError)):
        primary = cause.diag.message_primary or type(cause).__name__
        limit = _LIMIT.search(primary)
        location = message.first_field_longer_than(int(limit.group(1))) if limit else ""
        said = _QUOTED.sub(r"\1(value left out)", primary)
        code = "102" if isinstance(cause, psycopg.DataError) else "207"
        return V2Problem("AE", location, code, f"the database refused a value: {said}")
    return V2Problem("AE", "", "207", f"Aftercare failed on this message twice: {type(cause).__name__}")


def error_name(error: BaseException) -> str:
    """An error as a log may show it: its type and SQLSTATE, never its text (which may quote PHI)."""
    cause = _cause(error)
    state = getattr(getattr(cause, "diag", None), "sqlstate", None)
    return f"{type(cause).__name__} ({state})" if state else type(cause).__name__
