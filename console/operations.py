"""Operations: FHIR sources with how far each is read and its subscriptions' health; the message
providers with what each took in the last 24 hours (counted at most every few seconds); imports and
exports with their status (a failed export retried as a new one); parked ADT messages (retried through
the ADT intake, as `aftercare mllp retry` does) and other parked items, with why (an event parked
until its patient arrives is retried as a repeat of its id)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from activities.registry import build_provider_registry
from aftercare.bulk.export import EXPORT_KIND
from aftercare.bulk.launch import launch_export
from aftercare.bulk.progress import recent_imports
from aftercare.enrollment.event_triggers import retry_parked_event
from aftercare.fhir_sync.sources import SourceMissingError, source_plan
from aftercare.hl7v2.server import intake_for
from aftercare.security.principal import Principal
from aftercare.settings import Settings
from aftercare.store.adt_messages import parked_adt_messages
from aftercare.store.overview import HEALTHY_SUBSCRIPTION_STATUSES, ProviderCounts, provider_counts
from aftercare.store.triggers import EVENT_TRIGGER_SOURCE, parked_items
from api.deps import get_services
from api.routes.fhir_sources import list_sources
from api.services import Services
from console.auth import ConsoleUser
from console.counts_cache import counts_cache
from console.rendering import render
from models.fhir_sources import SourceView
from models.roles import Permission
from models.tables import BulkImport

router = APIRouter(prefix="/console/operations", include_in_schema=False)

CHANNELS = ("sms", "email", "push", "letter")
RETRYABLE_IMPORT_STATUSES = ("failed",)


def failing(source: SourceView) -> bool:
    """A source whose last poll failed or with a subscription that is not active."""
    return any(cursor.last_error for cursor in source.cursors) or any(
        state.status not in HEALTHY_SUBSCRIPTION_STATUSES for state in source.subscriptions
    )


@dataclass(frozen=True)
class ProviderStatus:
    """A channel's provider: which, whether it reaches outside (else the outbox or the letter batch), its
    rate limit, and what it took in the last 24 hours; `state` is `failing` when it failed everything it
    was given, `waiting` when messages wait for it, else `ok` (or `idle` with nothing)."""

    channel: str
    provider: str
    external: bool
    per_second: float | None
    counts: ProviderCounts

    @property
    def state(self) -> str:
        """ok, idle, waiting or failing."""
        counts = self.counts
        if counts.failed and not counts.sent:
            return "failing"
        if counts.waiting:
            return "waiting"
        return "ok" if counts.sent else "idle"


def provider_statuses(request: Request, counts: list[ProviderCounts]) -> list[ProviderStatus]:
    """Each channel's configured provider (from the settings, as the worker builds them) and its counts."""
    services = get_services(request)
    registry = build_provider_registry(services.settings, services.sessions)
    found = {(row.channel, row.provider): row for row in counts}
    statuses = []
    for channel in CHANNELS:
        provider = registry.for_channel(channel)
        limit = registry.rate_limit(provider)
        statuses.append(
            ProviderStatus(
                channel,
                provider.name,
                provider.external,
                limit.per_second if limit else None,
                found.get((channel, provider.name), ProviderCounts(channel, provider.name)),
            )
        )
    return statuses


def retryable(row: BulkImport) -> bool:
    """A failed export (a file import is run again with `aftercare import`)."""
    return row.kind == EXPORT_KIND and row.status in RETRYABLE_IMPORT_STATUSES


async def _provider_counts(services: Services) -> list[ProviderCounts]:
    async with services.sessions() as session:
        return await provider_counts(session, datetime.now(UTC) - timedelta(hours=24))


async def _page(request: Request, user: Principal, status_code: int = 200, **extra: Any) -> HTMLResponse:
    services = get_services(request)
    importer = user.can(Permission.FHIR_IMPORT)
    async with services.sessions() as session:
        sources = (await list_sources(services, session)).items
        parked = list(await parked_items(session)) if importer else []
        adt = list(await parked_adt_messages(session)) if importer else []
        imports = list(await recent_imports(session, 25)) if importer else []
    counts = await counts_cache(request, "providers").get(user.facilities, lambda: _provider_counts(services))
    context = {
        "sources": [(source, failing(source)) for source in sources],
        "providers": provider_statuses(request, counts),
        "parked": parked,
        "adt": adt,
        "imports": [(row, retryable(row)) for row in imports],
        "error": None,
        "event_source": EVENT_TRIGGER_SOURCE,
        **extra,
    }
    return render(request, "operations.html", context, status_code=status_code)


@router.get("", response_class=HTMLResponse)
async def operations(request: Request, user: ConsoleUser) -> HTMLResponse:
    """Sources, providers, imports and parked items."""
    return await _page(request, user)


async def _export_to_retry(
    session: AsyncSession, settings: Settings, import_id: str
) -> tuple[str, dict[str, Any], bool] | str:
    """A failed export's source, request and trigger choice; else why it cannot be retried."""
    row = await session.get(BulkImport, import_id)
    if row is None or row.source_key is None or not retryable(row):
        return "Only a failed export can be retried."
    try:
        await source_plan(session, settings, row.source_key)
    except SourceMissingError as error:
        return str(error)
    return row.source_key, dict(row.request), row.fire_triggers


@router.post("/imports/{import_id}/retry", response_class=HTMLResponse)
async def retry_import(request: Request, import_id: str, user: ConsoleUser) -> Response:
    """Start a failed export again, as a new export with the same request."""
    services = get_services(request)
    async with services.sessions() as session:
        found = await _export_to_retry(session, services.settings, import_id)
    if isinstance(found, str):
        return await _page(request, user, 409, error=found)
    source_key, asked, fire_triggers = found
    since = datetime.fromisoformat(asked["since"]) if asked.get("since") else None
    launched = await launch_export(
        services.sessions,
        services.temporal,
        services.settings.temporal_task_queue,
        source_key=source_key,
        since=since,
        full=bool(asked.get("full")),
        types=asked.get("types"),
        fire_triggers=fire_triggers,
    )
    return RedirectResponse(f"/console/operations?retried={launched.import_id}#imports", status_code=303)


@router.post("/parked/{item_id}/retry", response_class=HTMLResponse)
async def retry_parked(request: Request, item_id: int, user: ConsoleUser) -> Response:
    """Deliver a parked event again (its patient has arrived since), as a repeat of its id."""
    services = get_services(request)
    delivery = await retry_parked_event(services.sessions, services.temporal, services.starter, item_id)
    if delivery is None:
        refused = "Only an event still waiting for its patient can be retried."
        return await _page(request, user, 409, error=refused)
    outcome = "parked" if delivery.parked else "delivered"
    return RedirectResponse(f"/console/operations?event={outcome}#parked", status_code=303)


@router.post("/adt/{message_id}/retry", response_class=HTMLResponse)
async def retry_adt(request: Request, message_id: int, user: ConsoleUser) -> Response:
    """Process a parked ADT message again (after its mapping or data was fixed)."""
    services = get_services(request)
    handled = await intake_for(
        services.settings, services.sessions, services.temporal, services.starter
    ).retry(message_id)
    if handled is None:
        return await _page(request, user, 409, error="This message is not parked, or its text was not kept.")
    return RedirectResponse(f"/console/operations?adt={handled.code}#adt", status_code=303)
