"""Home: today's numbers at a glance. Each count shows only to users who may open what it counts; the
counts are cached for a few seconds (htmx refreshes them), so a busy console costs the database little."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aftercare.store.overview import Overview, overview
from api.deps import get_services
from console.auth import ConsoleUser
from console.rendering import render

router = APIRouter(prefix="/console", include_in_schema=False)

CACHE_SECONDS = 5.0


@dataclass
class _Cached:
    at: float
    value: Overview


class OverviewCache:
    """The last counts, reused for `CACHE_SECONDS`."""

    def __init__(self) -> None:
        self._last: _Cached | None = None

    async def get(self, sessions: async_sessionmaker[AsyncSession]) -> Overview:
        """Fresh enough counts."""
        now = time.monotonic()
        if self._last is None or now - self._last.at > CACHE_SECONDS:
            async with sessions() as session:
                counts = await overview(session, datetime.now(UTC) - timedelta(hours=24))
            self._last = _Cached(now, counts)
        return self._last.value


def _cache(request: Request) -> OverviewCache:
    state = request.app.state
    if not hasattr(state, "console_overview"):
        state.console_overview = OverviewCache()
    cache: OverviewCache = state.console_overview
    return cache


@router.get("", response_class=HTMLResponse)
async def home(request: Request, user: ConsoleUser) -> HTMLResponse:
    """Today's counts."""
    counts = await _cache(request).get(get_services(request).sessions)
    template = "home_counts.html" if request.headers.get("hx-request") else "home.html"
    return render(request, template, {"counts": counts})
