"""`/metrics` for Prometheus."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError

from aftercare.analytics.prometheus import COLLECTOR, read_snapshot
from api.deps import ServicesDep

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=Response)
async def metrics(services: ServicesDep) -> Response:
    """Prometheus exposition of the API process's metrics and the analytics totals of every process."""
    try:
        async with services.sessions() as session:
            COLLECTOR.snapshot = await read_snapshot(session)
    except (SQLAlchemyError, OSError):
        # The database is down: the process's own metrics still answer, the totals stay as last read.
        log.warning("analytics totals could not be read for /metrics")
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
