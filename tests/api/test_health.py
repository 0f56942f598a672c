"""`/healthz` names the part that is down."""

from __future__ import annotations

import httpx
from temporalio.testing import WorkflowEnvironment

from aftercare.settings import Settings
from api.app import create_app


async def test_healthy_when_temporal_and_the_database_answer(api: httpx.AsyncClient) -> None:
    response = await api.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "temporal": "ok", "database": "ok"}


async def test_a_database_that_does_not_answer_is_named(
    settings: Settings, dev_server: WorkflowEnvironment
) -> None:
    broken = settings.model_copy(update={"database_url": "postgresql+psycopg://postgres@127.0.0.1:1/none"})
    app = create_app(broken, temporal=dev_server.client)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        response = await client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["temporal"] == "ok"
    assert body["database"].startswith("down")


async def test_a_temporal_that_does_not_answer_is_named(settings: Settings) -> None:
    unreachable = settings.model_copy(update={"temporal_address": "127.0.0.1:1"})
    app = create_app(unreachable)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        response = await client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "ok"
    assert response.json()["temporal"].startswith("down")


async def test_metrics_are_exposed_for_prometheus(api: httpx.AsyncClient) -> None:
    await api.get("/healthz")
    response = await api.get("/metrics")
    assert response.status_code == 200
    assert "aftercare_http_request_seconds" in response.text
