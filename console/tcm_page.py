"""The Transitional Care Management worklist for care coordinators: running episodes, those still to be
contacted first by the time left to the contact deadline, with risk band, attempts and the visit."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from aftercare.tcm.views import worklist
from api.deps import get_services
from console.auth import ConsoleUser
from console.rendering import render

router = APIRouter(prefix="/console/tcm", include_in_schema=False)


def time_left(seconds: int) -> str:
    """`1 d 4 h left`, `3 h 10 min left`, or `overdue by 2 h`."""
    remaining = abs(seconds)
    days, hours, minutes = remaining // 86400, remaining % 86400 // 3600, remaining % 3600 // 60
    text = f"{days} d {hours} h" if days else f"{hours} h {minutes} min" if hours else f"{minutes} min"
    return f"{text} left" if seconds >= 0 else f"overdue by {text}"


@router.get("", response_class=HTMLResponse)
async def tcm_worklist(request: Request, user: ConsoleUser) -> HTMLResponse:
    """The worklist."""
    services = get_services(request)
    now = datetime.now(UTC)
    async with services.sessions() as session:
        rows = await worklist(session, now, services.settings.tcm_interactive_channels, limit=200)
    return render(request, "tcm.html", {"rows": rows, "time_left": time_left})
