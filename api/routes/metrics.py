"""`/metrics` for Prometheus."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=Response)
async def metrics() -> Response:
    """Prometheus exposition of the API process's metrics."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
