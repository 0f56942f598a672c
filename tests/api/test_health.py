"""`/healthz` names the part that is down."""

from __future__ import annotations

import asyncio

import httpx
from temporalio.testing import WorkflowEnvironment

import aftercare
from aftercare.settings import Settings
from api.app import create_app


async def test_healthy_when_temporal_and_the_database_answer(api: httpx.AsyncClient) -> None:
    response = await api.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["temporal"], body["database"]) == ("ok", "ok", "ok")
    assert body["database_pool"].endswith("connections in use")
    assert body["version"] == aftercare.__version__


async def test_an_exhausted_pool_is_not_reported_as_a_database_that_is_down(
    api_settings: Settings, dev_server: WorkflowEnvironment
) -> None:
    app = create_app(api_settings.model_copy(update={"database_pool_size": 1}), temporal=dev_server.client)
    release = asyncio.Event()

    async def hold_a_connection() -> None:
        async with app.state.services.engine.connect() as connection:
            await connection.exec_driver_sql("SELECT 1")
            await release.wait()

    async with app.router.lifespan_context(app):
        holders = [asyncio.create_task(hold_a_connection()) for _ in range(2)]
        while app.state.services.engine.sync_engine.pool.checkedout() < 2:
            await asyncio.sleep(0.01)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            response = await client.get("/healthz")
        release.set()
        await asyncio.gather(*holders)
    assert response.status_code == 200
    assert response.json()["database"] == "ok"
    assert response.json()["database_pool"] == "2 of 2 connections in use"


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
    assert body["version"] == aftercare.__version__


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
