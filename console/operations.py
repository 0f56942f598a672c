"""Operations: FHIR sources with how far each is read and its subscriptions' health, and the items
parked because they could not be used (with why). (Retrying parked items, imports and exports, and
provider status are left for later.)"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from aftercare.security.roles import Permission
from aftercare.store.overview import HEALTHY_SUBSCRIPTION_STATUSES
from aftercare.store.triggers import parked_items
from api.deps import get_services
from api.routes.fhir_sources import list_sources
from console.auth import ConsoleUser
from console.rendering import render
from models.fhir_sources import SourceView

router = APIRouter(prefix="/console/operations", include_in_schema=False)


def failing(source: SourceView) -> bool:
    """A source whose last poll failed or with a subscription that is not active."""
    return any(cursor.last_error for cursor in source.cursors) or any(
        state.status not in HEALTHY_SUBSCRIPTION_STATUSES for state in source.subscriptions
    )


@router.get("", response_class=HTMLResponse)
async def operations(request: Request, user: ConsoleUser) -> HTMLResponse:
    """Sources and parked items."""
    services = get_services(request)
    async with services.sessions() as session:
        sources = (await list_sources(services, session)).items
        parked = list(await parked_items(session)) if user.can(Permission.FHIR_IMPORT) else []
    rows = [(source, failing(source)) for source in sources]
    return render(request, "operations.html", {"sources": rows, "parked": parked})
