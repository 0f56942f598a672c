"""Hardening: request size limits, rate limits per caller, strict CORS and security headers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import WorkflowEnvironment

from aftercare.settings import Settings
from api.app import create_app
from api.middleware.security_headers import DOCS_CSP
from tests.conftest import AUTH_HEADERS, serve


@pytest.fixture
async def strict_api(
    api_settings: Settings, dev_server: WorkflowEnvironment, empty_database: AsyncEngine
) -> AsyncIterator[httpx.AsyncClient]:
    settings = api_settings.model_copy(
        update={
            "max_request_bytes": 2048,
            "max_import_request_bytes": 8192,
            "rate_limit_per_second": 1.0,
            "rate_limit_burst": 2,
            "cors_origins": ["https://portal.hospital.example"],
            "trusted_proxies": ["127.0.0.1"],
        }
    )
    async with serve(create_app(settings, temporal=dev_server.client), AUTH_HEADERS) as client:
        yield client


async def test_a_body_over_the_limit_is_413_before_it_is_read(strict_api: httpx.AsyncClient) -> None:
    answer = await strict_api.post(
        "/v1/journeys", content=b"x" * 3000, headers={"content-type": "application/json"}
    )
    assert answer.status_code == 413


async def test_a_streamed_body_over_the_limit_is_413_too(strict_api: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b"x" * 1000

    answer = await strict_api.post(
        "/v1/journeys", content=chunks(), headers={"content-type": "application/json"}
    )
    assert answer.status_code == 413


async def test_imports_have_a_larger_limit_of_their_own(strict_api: httpx.AsyncClient) -> None:
    ndjson = {"content-type": "application/fhir+ndjson"}
    assert (await strict_api.post("/v1/fhir/import", content=b" " * 5000, headers=ndjson)).status_code == 400
    too_large = await strict_api.post("/v1/fhir/import", content=b" " * 9000, headers=ndjson)
    assert too_large.status_code == 413
    assert too_large.json()["resourceType"] == "OperationOutcome"


async def test_triggers_over_the_callers_rate_are_429_with_retry_after(strict_api: httpx.AsyncClient) -> None:
    trigger = {"type": "x.happened", "patient_id": "nobody"}
    answers = [await strict_api.post("/v1/triggers", json=trigger) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [202, 202, 429]
    assert answers[2].headers["retry-after"] == "1"

    made = await strict_api.post("/v1/api-keys", json={"name": "other-ehr", "roles": ["trigger"]})
    other = await strict_api.post("/v1/triggers", json=trigger, headers={"X-API-Key": made.json()["key"]})
    assert other.status_code == 202  # its own bucket


async def test_notifications_are_rate_limited_per_caller(strict_api: httpx.AsyncClient) -> None:
    answers = [await strict_api.post("/v1/fhir/notifications", content=b"") for _ in range(3)]
    assert answers[-1].status_code == 429
    assert answers[-1].json()["issue"][0]["code"] == "throttled"


async def test_only_the_configured_origins_get_cors_headers(strict_api: httpx.AsyncClient) -> None:
    preflight = {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "x-api-key"}
    portal = await strict_api.options(
        "/v1/journeys", headers={"Origin": "https://portal.hospital.example", **preflight}
    )
    other = await strict_api.get("/v1/journeys", headers={"Origin": "https://evil.example"})
    assert portal.headers["access-control-allow-origin"] == "https://portal.hospital.example"
    assert "access-control-allow-origin" not in other.headers


async def test_no_cors_headers_at_all_by_default(api: httpx.AsyncClient) -> None:
    answer = await api.get("/v1/journeys", headers={"Origin": "https://portal.hospital.example"})
    assert "access-control-allow-origin" not in answer.headers


async def test_answers_carry_the_security_headers(api: httpx.AsyncClient) -> None:
    answer = await api.get("/v1/journeys")
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert "strict-transport-security" not in answer.headers  # plain http
    docs = await api.get("/docs")
    assert docs.headers["content-security-policy"] == DOCS_CSP
    assert "http" not in DOCS_CSP  # nothing from another origin, no CDN


async def test_hsts_over_https_directly_or_through_a_trusted_proxy(
    strict_api: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    direct = await api.get("https://aftercare.test/healthz")
    proxied = await strict_api.get("/healthz", headers={"X-Forwarded-Proto": "https"})
    untrusted = await api.get("/healthz", headers={"X-Forwarded-Proto": "https"})
    assert direct.headers["strict-transport-security"].startswith("max-age=31536000")
    assert proxied.headers["strict-transport-security"].startswith("max-age=31536000")
    assert "strict-transport-security" not in untrusted.headers
