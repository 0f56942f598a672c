"""Admission control: a full process refuses at once with 503 and Retry-After instead of letting a
request queue past its caller's timeout."""

from __future__ import annotations

import asyncio

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from api.middleware.admission import Admission


def slow_app(release: asyncio.Event) -> Starlette:
    async def work(request: Request) -> JSONResponse:
        await release.wait()
        return JSONResponse({"done": True})

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route("/v1/triggers", work, methods=["POST"]), Route("/healthz", health)])


async def test_a_request_beyond_the_working_and_waiting_ones_is_refused_at_once_with_retry_after() -> None:
    release = asyncio.Event()
    app = Admission(slow_app(release), limit=1, wait=30)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        working = asyncio.create_task(client.post("/v1/triggers"))
        waiting = asyncio.create_task(client.post("/v1/triggers"))
        await asyncio.sleep(0.1)
        refused = await asyncio.wait_for(client.post("/v1/triggers"), timeout=1)
        refused_fhir = await asyncio.wait_for(client.post("/v1/fhir/notifications"), timeout=1)
        health = await asyncio.wait_for(client.get("/healthz"), timeout=1)
        release.set()
        answers = await asyncio.gather(working, waiting)

    assert [answer.status_code for answer in answers] == [200, 200]
    assert (refused.status_code, refused.headers["retry-after"]) == (503, "2")
    assert "at capacity" in refused.json()["detail"]
    assert refused_fhir.json()["resourceType"] == "OperationOutcome"
    assert refused_fhir.json()["issue"][0]["code"] == "transient"
    assert health.status_code == 200


async def test_a_request_that_cannot_start_within_the_wait_is_refused() -> None:
    release = asyncio.Event()
    app = Admission(slow_app(release), limit=1, wait=0.2)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        working = asyncio.create_task(client.post("/v1/triggers"))
        await asyncio.sleep(0.05)
        waited = await client.post("/v1/triggers")
        release.set()
        await working

    assert waited.status_code == 503
