"""An enrollment: its path so far, current step, pause state, pause/resume/cancel through the same
Temporal calls as the API, and a link to its workflow in the Temporal UI."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from aftercare.store.enrollments import get_enrollment
from api.deps import get_services
from api.routes.enrollments import cancel_enrollment, control_enrollment, read_enrollment
from console.auth import ConsoleUser
from console.rendering import render
from models.api import PauseBody
from models.workflow_names import PAUSE_UPDATE, RESUME_UPDATE

router = APIRouter(prefix="/console/enrollments", include_in_schema=False)

CANCEL = "cancel"


def temporal_ui_link(request: Request, workflow_id: str) -> str | None:
    """The workflow's page in the Temporal UI, where the UI's origin is configured."""
    settings = get_services(request).settings
    if not settings.temporal_ui_origins:
        return None
    origin = settings.temporal_ui_origins[0].rstrip("/")
    return f"{origin}/namespaces/{quote(settings.temporal_namespace)}/workflows/{quote(workflow_id, safe='')}"


@router.get("/{enrollment_id}", response_class=HTMLResponse)
async def enrollment(request: Request, enrollment_id: str, user: ConsoleUser) -> HTMLResponse:
    """The enrollment's status and history."""
    async with get_services(request).sessions() as session:
        row = await get_enrollment(session, enrollment_id)
        if row is None:
            return render(request, "not_found.html", {"what": "enrollment"}, status_code=404)
        view = await read_enrollment(enrollment_id, session)
    context = {"enrollment": view, "temporal_link": temporal_ui_link(request, row.workflow_id), "error": None}
    return render(request, "enrollment.html", context)


async def _control(request: Request, enrollment_id: str, update: str) -> Response:
    services = get_services(request)
    try:
        async with services.sessions() as session:
            if update == CANCEL:
                await cancel_enrollment(enrollment_id, session, services.temporal)
            else:
                await control_enrollment(
                    enrollment_id, update, PauseBody(reason="console"), session, services.temporal
                )
    except HTTPException as error:
        async with services.sessions() as session:
            view = await read_enrollment(enrollment_id, session)
        context = {"enrollment": view, "temporal_link": None, "error": str(error.detail)}
        return render(request, "enrollment.html", context, status_code=error.status_code)
    return RedirectResponse(f"/console/enrollments/{enrollment_id}", status_code=303)


@router.post("/{enrollment_id}/pause", response_class=HTMLResponse)
async def pause(request: Request, enrollment_id: str, user: ConsoleUser) -> Response:
    """Hold the enrollment before its next step."""
    return await _control(request, enrollment_id, PAUSE_UPDATE)


@router.post("/{enrollment_id}/resume", response_class=HTMLResponse)
async def resume(request: Request, enrollment_id: str, user: ConsoleUser) -> Response:
    """Let a paused enrollment go on."""
    return await _control(request, enrollment_id, RESUME_UPDATE)


@router.post("/{enrollment_id}/cancel", response_class=HTMLResponse)
async def cancel(request: Request, enrollment_id: str, user: ConsoleUser) -> Response:
    """Stop the enrollment; it records `cancelled` as it goes."""
    return await _control(request, enrollment_id, CANCEL)
