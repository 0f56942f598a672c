"""Liveness of the parts the API needs."""

from __future__ import annotations

import asyncio

import psycopg
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.pool import QueuePool

from aftercare import __version__
from aftercare.db.migrate import libpq_dsn
from api.deps import ServicesDep
from models.api import HealthStatus

router = APIRouter(tags=["health"])

_TIMEOUT = 3.0


async def _database(services: ServicesDep) -> str:
    """A connection of its own, outside the pool: an exhausted pool is not a database that is down."""
    dsn = libpq_dsn(services.engine.url)
    try:
        async with asyncio.timeout(_TIMEOUT):
            connection = await psycopg.AsyncConnection.connect(dsn, connect_timeout=int(_TIMEOUT))
            async with connection:
                await connection.execute("SELECT 1")
    except Exception as error:  # any failure means down; the answer says which kind
        return f"down: {type(error).__name__}"
    return "ok"


def _pool(services: ServicesDep) -> str | None:
    pool = services.engine.sync_engine.pool
    if not isinstance(pool, QueuePool):
        return None
    return f"{pool.checkedout()} of {pool.size() + pool._max_overflow} connections in use"


async def _temporal(services: ServicesDep) -> str:
    try:
        async with asyncio.timeout(_TIMEOUT):
            healthy = await services.temporal.service_client.check_health()
    except Exception as error:  # any failure means down; the answer says which kind
        return f"down: {type(error).__name__}"
    return "ok" if healthy else "down: not serving"


@router.get("/healthz", response_model=HealthStatus, responses={503: {"model": HealthStatus}})
async def healthz(services: ServicesDep) -> JSONResponse:
    """`ok` when Temporal and the database answer; 503 naming the part that does not. `database_pool`
    says how many of the API's pooled connections are in use, `version` which Aftercare answers."""
    database, temporal = await asyncio.gather(_database(services), _temporal(services))
    healthy = database == "ok" and temporal == "ok"
    body = HealthStatus(
        status="ok" if healthy else "degraded",
        temporal=temporal,
        database=database,
        database_pool=_pool(services),
        version=__version__,
    )
    headers = None if healthy else {"Retry-After": "2"}
    return JSONResponse(
        body.model_dump(exclude_none=True), status_code=200 if healthy else 503, headers=headers
    )
