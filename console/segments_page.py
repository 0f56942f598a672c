"""Segments: the list, and a segment's preview (its size, the first members, how many patients each
criterion holds for), through the API's own preview, so a role without `clinical:read` sees counts only
with small ones suppressed. (Building a segment with a field picker is left for later: segments are
published as YAML through the API.)"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse

from api.deps import get_services
from api.routes.segments import list_segments, preview_segment
from console.auth import ConsoleUser
from console.rendering import render

router = APIRouter(prefix="/console/segments", include_in_schema=False)


@router.get("", response_class=HTMLResponse)
async def segments(request: Request, user: ConsoleUser) -> HTMLResponse:
    """Every segment's latest version."""
    async with get_services(request).sessions() as session:
        listed = await list_segments(session)
    return render(request, "segments.html", {"segments": listed.items})


@router.get("/{key}", response_class=HTMLResponse)
async def segment(request: Request, key: str, user: ConsoleUser) -> HTMLResponse:
    """A segment's size, first members and counts per criterion, now."""
    try:
        async with get_services(request).sessions() as session:
            result = await preview_segment(key, session, user, None, 10)
    except HTTPException as error:
        if error.status_code == 404:
            return render(request, "not_found.html", {"what": "segment"}, status_code=404)
        raise
    return render(request, "segment.html", {"preview": result})
