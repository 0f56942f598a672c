"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.client import Client

import aftercare
from aftercare.db.engine import create_engine, session_factory
from aftercare.enrollment.starter import EnrollmentStarter
from aftercare.metrics import HTTP_LATENCY
from aftercare.settings import Settings, get_settings
from aftercare.temporal.client import connect_temporal
from api.errors import register_error_handlers
from api.openapi import install_openapi
from api.routes import (
    bulk_imports,
    campaigns,
    consents,
    decisions,
    enrollments,
    fhir,
    fhir_sources,
    health,
    identity,
    journeys,
    letters,
    library,
    messages,
    metrics,
    patients,
    push,
    segments,
    suppressions,
    tasks,
    templates,
    triggers,
)
from api.routes.webhooks import sendgrid as sendgrid_webhooks
from api.routes.webhooks import twilio as twilio_webhooks
from api.services import Services
from journeys.sync import sync_code_journeys

log = logging.getLogger(__name__)

ROUTERS = (
    health.router,
    metrics.router,
    fhir.router,
    bulk_imports.router,
    fhir_sources.router,
    patients.router,
    consents.router,
    decisions.router,
    identity.router,
    templates.router,
    journeys.router,
    enrollments.router,
    triggers.router,
    messages.router,
    tasks.router,
    library.router,
    segments.router,
    segments.patients_router,
    campaigns.router,
    letters.router,
    push.router,
    suppressions.router,
    twilio_webhooks.router,
    sendgrid_webhooks.router,
)


async def _register_code_journeys(
    sessions: async_sessionmaker[AsyncSession], retry_seconds: float = 10.0
) -> None:
    """Register code journeys; while the database is unreachable, keep trying (the API serves meanwhile,
    and `/healthz` says what is down)."""
    while True:
        try:
            await sync_code_journeys(sessions)
            return
        except (OSError, SQLAlchemyError):
            log.warning("code journeys not registered yet: the database is unreachable; retrying")
            await asyncio.sleep(retry_seconds)


async def _start_registration(sessions: async_sessionmaker[AsyncSession]) -> asyncio.Task[None] | None:
    """Register at once when the database answers; otherwise keep trying in the background."""
    try:
        await sync_code_journeys(sessions)
    except (OSError, SQLAlchemyError):
        return asyncio.create_task(_register_code_journeys(sessions))
    return None


class RequestMetrics:
    """Request latency by route template, as a plain ASGI middleware (no extra task per request)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def remember_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, remember_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            HTTP_LATENCY.labels(scope["method"], route, str(status["code"])).observe(
                time.perf_counter() - started
            )


def create_app(settings: Settings | None = None, *, temporal: Client | None = None) -> FastAPI:
    """The API. The Temporal client connects lazily, so the API starts (and reports 503) without it."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.database_url, pool_size=settings.database_pool_size)
        client = temporal or await connect_temporal(settings, lazy=True)
        sessions = session_factory(engine)
        app.state.services = Services(
            settings=settings,
            engine=engine,
            sessions=sessions,
            temporal=client,
            starter=EnrollmentStarter(sessions, client, settings.temporal_task_queue),
        )
        registration = await _start_registration(sessions)
        try:
            yield
        finally:
            if registration is not None:
                registration.cancel()
            await engine.dispose()

    app = FastAPI(
        title="Aftercare",
        version=aftercare.__version__,
        description="Durable post-discharge patient outreach: FHIR triggers, journeys, messages.",
        lifespan=lifespan,
    )
    register_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    install_openapi(app)

    app.add_middleware(RequestMetrics)
    return app
