"""Liveness of the parts the API needs."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.deps import ServicesDep
from models.api import HealthStatus

router = APIRouter(tags=["health"])

_TIMEOUT = 3.0


async def _database(services: ServicesDep) -> str:
    try:
        async with asyncio.timeout(_TIMEOUT), services.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as error:  # any failure means down; the answer says which kind
        return f"down: {type(error).__name__}"
    return "ok"


async def _temporal(services: ServicesDep) -> str:
    try:
        async with asyncio.timeout(_TIMEOUT):
            healthy = await services.temporal.service_client.check_health()
    except Exception as error:  # any failure means down; the answer says which kind
        return f"down: {type(error).__name__}"
    return "ok" if healthy else "down: not serving"


@router.get("/healthz", response_model=HealthStatus, responses={503: {"model": HealthStatus}})
async def healthz(services: ServicesDep) -> JSONResponse:
    """`ok` when Temporal and the database answer; 503 naming the part that does not."""
    database, temporal = await asyncio.gather(_database(services), _temporal(services))
    healthy = database == "ok" and temporal == "ok"
    body = HealthStatus(status="ok" if healthy else "degraded", temporal=temporal, database=database)
    return JSONResponse(body.model_dump(), status_code=200 if healthy else 503)
