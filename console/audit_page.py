"""Audit: search the audit trail (who did what to which resource, when), newest first. The filters are
names and ids, never patient data, so they travel in the query string."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from aftercare.security import audit
from api.deps import get_services
from console.auth import ConsoleUser
from console.rendering import render

router = APIRouter(prefix="/console/audit", include_in_schema=False)


@dataclass(frozen=True)
class AuditFilters:
    """The search form's values (blank: any)."""

    actor: str = ""
    resource_type: str = ""
    resource_id: str = ""
    action: str = ""
    since: str = ""

    def since_moment(self) -> datetime | None:
        """The start of the `since` day (UTC), when it is a date."""
        try:
            return datetime.combine(date.fromisoformat(self.since), time(), UTC) if self.since else None
        except ValueError:
            return None


@router.get("", response_class=HTMLResponse)
async def audit_search(
    request: Request,
    user: ConsoleUser,
    actor: str = "",
    resource_type: str = "",
    resource_id: str = "",
    action: str = "",
    since: str = "",
) -> HTMLResponse:
    """The latest 200 rows matching the filters."""
    filters = AuditFilters(actor[:200], resource_type[:200], resource_id[:200], action[:200], since[:10])
    error = "Enter a date as YYYY-MM-DD." if filters.since and filters.since_moment() is None else None
    async with get_services(request).sessions() as session:
        rows = await audit.query(
            session,
            actor=filters.actor or None,
            resource_type=filters.resource_type or None,
            resource_id=filters.resource_id or None,
            action=filters.action or None,
            since=filters.since_moment(),
            limit=200,
        )
    return render(request, "audit.html", {"filters": filters, "rows": rows, "since_error": error})
