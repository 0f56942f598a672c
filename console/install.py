"""Mounting the console on the API's app: its pages, its static files, and the answers for a missing
session (303 to the sign-in page) and a refused page (403)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from api.route_rules import CONSOLE_STATIC_PREFIX
from console import (
    analytics_page,
    audit_page,
    campaigns_page,
    enrollments,
    event_editor,
    events_page,
    home,
    journey_editor,
    journeys,
    login,
    oidc,
    operations,
    patients,
    segment_editor,
    segments_page,
    surveys_page,
    tasks,
    tcm_page,
    template_editor,
    templates_page,
)
from console.auth import LOGIN_PATH, ConsoleForbidden, SignInRequired
from console.forms import FormRefused
from console.rendering import STATIC, render

PAGES = (
    login.router,
    oidc.router,
    home.router,
    patients.router,
    tasks.router,
    tcm_page.router,
    journeys.router,
    journey_editor.router,
    enrollments.router,
    templates_page.router,
    template_editor.router,
    segments_page.router,
    segment_editor.router,
    campaigns_page.router,
    event_editor.router,  # before the event pages: /console/events/new is no event key
    events_page.router,
    analytics_page.router,
    surveys_page.router,
    operations.router,
    audit_page.router,
)


async def _sign_in(request: Request, _: Exception) -> Response:
    return RedirectResponse(LOGIN_PATH, status_code=303)


async def _forbidden(request: Request, error: Exception) -> HTMLResponse:
    message = error.message if isinstance(error, ConsoleForbidden) else "forbidden"
    return render(request, "forbidden.html", {"message": message}, status_code=403)


async def _unreadable_form(request: Request, error: Exception) -> HTMLResponse:
    return render(request, "forbidden.html", {"message": str(error)}, status_code=415)


def install_console(app: FastAPI) -> None:
    """Add the console's routes and static files to `app` (its sessions are in the database)."""
    for router in PAGES:
        app.include_router(router)
    app.mount(CONSOLE_STATIC_PREFIX, StaticFiles(directory=STATIC), name="console-static")
    app.add_exception_handler(SignInRequired, _sign_in)
    app.add_exception_handler(ConsoleForbidden, _forbidden)
    app.add_exception_handler(FormRefused, _unreadable_form)
