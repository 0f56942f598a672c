"""Rendering console pages: one Jinja2 environment over `console/templates` (autoescaped), the layout's
navigation cut to what the user may open, and the pages' security policy (scripts and styles from the
console itself only)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from aftercare.security.principal import Principal
from models.roles import Permission

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"

PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)

environment = Environment(
    loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True), auto_reload=False
)


@dataclass(frozen=True)
class NavItem:
    """A link of the navigation, shown to users holding `permission` (None: everyone signed in)."""

    label: str
    path: str
    permission: Permission | None


NAVIGATION = (
    NavItem("Home", "/console", None),
    NavItem("Patients", "/console/patients", Permission.PATIENTS_READ),
    NavItem("Care tasks", "/console/tasks", Permission.TASKS_READ),
    NavItem("Transitional care", "/console/tcm", Permission.CLINICAL_READ),
    NavItem("Journeys", "/console/journeys", Permission.JOURNEYS_READ),
    NavItem("Templates", "/console/templates", Permission.TEMPLATES_READ),
    NavItem("Segments", "/console/segments", Permission.SEGMENTS_READ),
    NavItem("Campaigns", "/console/campaigns", Permission.CAMPAIGNS_READ),
    NavItem("Events", "/console/events", Permission.EVENTS_READ),
    NavItem("Analytics", "/console/analytics", Permission.ANALYTICS_READ),
    NavItem("Surveys", "/console/surveys", Permission.PATIENTS_READ),
    NavItem("Operations", "/console/operations", Permission.FHIR_SOURCES_READ),
    NavItem("Audit", "/console/audit", Permission.AUDIT_READ),
)


def navigation(principal: Principal | None) -> list[NavItem]:
    """The links this user may follow."""
    if principal is None:
        return []
    return [item for item in NAVIGATION if item.permission is None or principal.can(item.permission)]


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
) -> HTMLResponse:
    """A page in the layout, for the request's user (if any)."""
    principal: Principal | None = getattr(request.state, "principal", None)
    session = getattr(request.state, "console_session", None)
    values = {
        "request": request,
        "user": principal,
        "csrf": session.csrf if session is not None else "",
        "navigation": navigation(principal),
        "current": request.url.path,
        "can": (lambda permission: principal is not None and principal.can(Permission(permission))),
        **(context or {}),
    }
    html = environment.get_template(template).render(values)
    return HTMLResponse(html, status_code=status_code, headers={"Content-Security-Policy": PAGE_CSP})
