"""What a failed message's fate is: run again, left unanswered for the sender to resend, or parked with
an `AE` naming the field the database refused."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import exc as sa
from temporalio.service import RPCError, RPCStatusCode

from aftercare.hl7v2.failures import AfterCommit, Failure, error_name, failure_of
from aftercare.hl7v2.messages import V2Message
from tests.aftercare.hl7v2.samples import sample


def wrapped(error: Exception) -> sa.DBAPIError:
    """As SQLAlchemy raises a psycopg error."""
    return sa.DBAPIError.instance("INSERT ...", {}, error, psycopg.Error)


@pytest.mark.parametrize(
    ("error", "failure"),
    [
        (wrapped(psycopg.errors.SerializationFailure()), "again"),
        (wrapped(psycopg.errors.DeadlockDetected()), "again"),
        (wrapped(psycopg.errors.StringDataRightTruncation()), "refused"),
        (wrapped(psycopg.errors.NotNullViolation()), "refused"),
        (wrapped(psycopg.errors.UniqueViolation()), "refused"),
        (wrapped(psycopg.OperationalError("connection refused")), "unreachable"),
        (sa.TimeoutError("QueuePool limit"), "unreachable"),
        (ConnectionResetError(), "unreachable"),
        (RPCError("unavailable", RPCStatusCode.UNAVAILABLE, b""), "unreachable"),
        (KeyError("encounter"), "refused"),
    ],
)
def test_each_failure_has_its_fate(error: Exception, failure: Failure) -> None:
    assert failure_of(error) == failure


def test_the_log_names_an_error_without_its_text() -> None:
    error = wrapped(psycopg.errors.StringDataRightTruncation("value too long: 'Wyman'"))

    assert "Wyman" not in error_name(error)
    assert error_name(error).startswith("StringDataRightTruncation")


def test_the_field_holding_a_value_too_long_is_the_first_with_a_component_that_long() -> None:
    long_family = V2Message(sample("a01_admit").replace("Wyman^Alfreda", "W" * 250 + "^Alfreda"))

    assert long_family.first_field_longer_than(200) == "PID-5"
    assert long_family.first_field_longer_than(300) == ""
    assert V2Message(sample("a01_admit")).first_field_longer_than(200) == ""


def test_a_failure_once_the_batch_is_stored_is_never_the_messages_fault() -> None:
    assert failure_of(AfterCommit(RuntimeError("Failed client connect"))) == "unreachable"
    assert failure_of(AfterCommit(wrapped(psycopg.errors.StringDataRightTruncation()))) == "unreachable"
    assert failure_of(AfterCommit(wrapped(psycopg.errors.DeadlockDetected()))) == "again"
