"""Home: today's numbers at a glance. Each count shows only to users who may open what it counts; the
counts are cached for a few seconds per facility scope (`console/counts_cache.py`; htmx refreshes
them), so a busy console costs the database little."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aftercare.store.overview import Overview, overview
from api.deps import get_services
from console.auth import ConsoleUser
from console.counts_cache import counts_cache
from console.rendering import render

router = APIRouter(prefix="/console", include_in_schema=False)


async def _overview(sessions: async_sessionmaker[AsyncSession]) -> Overview:
    async with sessions() as session:
        return await overview(session, datetime.now(UTC) - timedelta(hours=24))


@router.get("", response_class=HTMLResponse)
async def home(request: Request, user: ConsoleUser) -> HTMLResponse:
    """Today's counts."""
    sessions = get_services(request).sessions
    counts = await counts_cache(request, "home").get(user.facilities, lambda: _overview(sessions))
    template = "home_counts.html" if request.headers.get("hx-request") else "home.html"
    return render(request, template, {"counts": counts})
