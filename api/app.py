"""The FastAPI application factory."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
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
from api.routes import enrollments, fhir, health, journeys, messages, metrics, patients, templates, triggers
from api.services import Services

ROUTERS = (
    health.router,
    metrics.router,
    fhir.router,
    patients.router,
    templates.router,
    journeys.router,
    enrollments.router,
    triggers.router,
    messages.router,
)


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
        try:
            yield
        finally:
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
