"""Busy and failing servers: FhirClient waits as the server asks (Retry-After), backs off otherwise, and
gives up after `max_attempts` with FhirUnavailable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from aftercare.fhir_client.client import FhirClient
from aftercare.fhir_client.errors import FhirClientError, FhirUnavailable
from aftercare.fhir_client.retry import RetryPolicy, may_retry, may_retry_after_error, retry_after_seconds
from tests.aftercare.fhir_client.conftest import Sleeps
from tests.fhir_server import FhirTestServer

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("2", 2.0),
        (" 7 ", 7.0),
        ("0.5", 0.5),
        ("-3", 0.0),
        (format_datetime(NOW + timedelta(seconds=30), usegmt=True), 30.0),
        (format_datetime(NOW - timedelta(seconds=30), usegmt=True), 0.0),
        ("Sun, 01 Mar 2026 12:00:10", 10.0),  # no zone: taken as GMT
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_is_delta_seconds_or_an_http_date(value: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(value, now=NOW) == seconds


def test_backoff_doubles_up_to_the_maximum_and_retry_after_is_capped() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=4.0, max_retry_after=60.0)
    assert [policy.delay(n, None, random_fraction=lambda: 1.0) for n in (1, 2, 3, 4, 5)] == [
        0.5,
        1.0,
        2.0,
        4.0,
        4.0,
    ]
    assert policy.delay(3, None, random_fraction=lambda: 0.0) == 1.0
    assert policy.delay(1, 9.0) == 9.0
    assert policy.delay(1, 600.0) == 60.0


def test_only_requests_the_server_did_not_act_on_are_sent_again_when_not_idempotent() -> None:
    assert may_retry("GET", 500)
    assert may_retry("PUT", 502)
    assert may_retry("POST", 429)
    assert may_retry("POST", 503)
    assert not may_retry("POST", 500)
    assert not may_retry("GET", 400)
    assert may_retry_after_error("POST", httpx.ConnectError("refused"))
    assert not may_retry_after_error("POST", httpx.ReadTimeout("slow"))
    assert may_retry_after_error("GET", httpx.ReadTimeout("slow"))


@pytest.mark.parametrize("status", [429, 503])
async def test_busy_answers_are_retried_after_the_wait_the_server_asks(
    fhir: FhirTestServer, sleeps: Sleeps, status: int
) -> None:
    fhir.put({"resourceType": "Patient", "id": "p1"})
    fhir.fail_next(2, status=status, retry_after="2")
    async with FhirClient(fhir.base_url, sleep=sleeps) as client:
        patient = await client.read("Patient", "p1")
    assert patient["id"] == "p1"
    assert sleeps.waits == [2.0, 2.0]
    assert [path for _, path, _ in fhir.requests] == ["Patient/p1"] * 3


async def test_an_http_date_retry_after_is_waited_until(fhir: FhirTestServer, sleeps: Sleeps) -> None:
    fhir.put({"resourceType": "Patient", "id": "p1"})
    fhir.fail_next(
        1, status=503, retry_after=format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    )
    async with FhirClient(fhir.base_url, sleep=sleeps) as client:
        await client.read("Patient", "p1")
    assert len(sleeps.waits) == 1
    assert 17.0 <= sleeps.waits[0] <= 20.0


async def test_without_retry_after_the_client_backs_off(fhir: FhirTestServer, sleeps: Sleeps) -> None:
    fhir.put({"resourceType": "Patient", "id": "p1"})
    fhir.fail_next(3, status=500)
    policy = RetryPolicy(max_attempts=5, base_delay=1.0, max_delay=30.0)
    async with FhirClient(fhir.base_url, sleep=sleeps, retry=policy) as client:
        await client.read("Patient", "p1")
    assert len(sleeps.waits) == 3
    assert 0.5 <= sleeps.waits[0] <= 1.0
    assert 1.0 <= sleeps.waits[1] <= 2.0
    assert 2.0 <= sleeps.waits[2] <= 4.0


async def test_it_gives_up_after_max_attempts_with_fhir_unavailable(
    fhir: FhirTestServer, sleeps: Sleeps
) -> None:
    fhir.fail_next(10, status=503, retry_after="1")
    async with FhirClient(fhir.base_url, sleep=sleeps, max_attempts=3) as client:
        with pytest.raises(FhirUnavailable) as raised:
            await client.read("Patient", "p1")
    assert raised.value.status == 503
    assert raised.value.retry_after == 1.0
    assert "after 3 attempt(s)" in str(raised.value)
    assert raised.value.issues == ["injected failure 503"]
    assert sleeps.waits == [1.0, 1.0]
    assert len(fhir.requests) == 3


async def test_a_post_is_not_repeated_after_a_500(fhir: FhirTestServer, sleeps: Sleeps) -> None:
    fhir.fail_next(1, status=500)
    async with FhirClient(fhir.base_url, sleep=sleeps) as client:
        with pytest.raises(FhirClientError) as raised:
            await client.create({"resourceType": "Patient"})
    assert raised.value.status == 500
    assert sleeps.waits == []
    assert fhir.store.of_type("Patient") == []


async def test_a_post_is_repeated_after_a_503(fhir: FhirTestServer, sleeps: Sleeps) -> None:
    fhir.fail_next(1, status=503, retry_after="0")
    async with FhirClient(fhir.base_url, sleep=sleeps) as client:
        created = await client.create({"resourceType": "Patient"})
    assert [p["id"] for p in fhir.store.of_type("Patient")] == [created["id"]]


async def test_an_unreachable_server_is_fhir_unavailable(sleeps: Sleeps) -> None:
    from tests.prism import free_port

    async with FhirClient(f"http://127.0.0.1:{free_port()}/fhir", sleep=sleeps, max_attempts=2) as client:
        with pytest.raises(FhirUnavailable, match=r"GET Patient/1 failed after 2 attempt\(s\): ConnectError"):
            await client.read("Patient", "1")
    assert len(sleeps.waits) == 1
