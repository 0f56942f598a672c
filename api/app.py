"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.client import Client

import aftercare
from aftercare.db.engine import create_engine, session_factory
from aftercare.enrollment.starter import EnrollmentStarter
from aftercare.events.outbox import EffectRunner, retry_forever
from aftercare.long_lived import freeze_startup_objects
from aftercare.metrics import HTTP_LATENCY
from aftercare.security.api_keys import ApiKeyVerifier
from aftercare.security.authenticate import Authenticator
from aftercare.security.clients import parse_networks
from aftercare.security.dev_keys import codec_ui_token
from aftercare.security.jwt_auth import JwtConfig, JwtVerifier
from aftercare.security.rate_limit import RateLimiter
from aftercare.security.startup import api_problems, refuse_if
from aftercare.settings import Settings, get_settings
from aftercare.temporal.client import REQUEST_RETRIES, connect_temporal, payload_codec
from api.content_types import typed_body
from api.docs import install_docs
from api.errors import register_error_handlers
from api.middleware.admission import Admission
from api.middleware.audit_trail import AuditTrail
from api.middleware.body_limit import BodyLimit
from api.middleware.cors import PathCors
from api.middleware.facility_scope import FacilityScopeBoundary
from api.middleware.security_headers import SecurityHeaders
from api.openapi import install_openapi
from api.route_rules import DOCUMENTATION_PAGES, LARGE_BODY_PATHS, routes_without_rules, unexpected_paths
from api.routes import (
    analytics,
    api_keys,
    audit,
    bulk_imports,
    campaigns,
    codec,
    consents,
    decisions,
    enrollments,
    events,
    facilities,
    fhir,
    fhir_messages,
    fhir_sources,
    health,
    hl7v2,
    identity,
    journeys,
    letters,
    library,
    messages,
    metrics,
    patients,
    push,
    questionnaires,
    risk,
    segments,
    suppressions,
    tasks,
    tcm,
    templates,
    triggers,
)
from api.routes.webhooks import sendgrid as sendgrid_webhooks
from api.routes.webhooks import twilio as twilio_webhooks
from api.routes.webhooks import twilio_voice as twilio_voice_webhooks
from api.security import authorize
from api.services import Services
from console.install import install_console
from journeys.sync import sync_code_journeys
from patient_pages import events as event_pages
from patient_pages import preferences as preference_pages
from patient_pages import surveys as survey_pages
from patient_pages import unsubscribe as unsubscribe_pages

log = logging.getLogger(__name__)

ROUTERS = (
    health.router,
    metrics.router,
    fhir.router,
    fhir_messages.router,
    bulk_imports.router,
    fhir_sources.router,
    hl7v2.router,
    patients.router,
    risk.router,
    consents.router,
    decisions.router,
    identity.router,
    templates.router,
    journeys.router,
    enrollments.router,
    triggers.router,
    messages.router,
    questionnaires.router,
    tasks.router,
    tcm.router,
    library.router,
    segments.router,
    segments.patients_router,
    campaigns.router,
    analytics.router,
    events.router,
    event_pages.router,
    unsubscribe_pages.router,
    preference_pages.router,
    survey_pages.router,
    letters.router,
    push.router,
    suppressions.router,
    api_keys.router,
    facilities.router,
    audit.router,
    codec.router,
    twilio_webhooks.router,
    twilio_voice_webhooks.router,
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


def _authenticator(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> Authenticator:
    jwt_config = JwtConfig.from_settings(settings)
    dev_key = settings.aftercare_dev_api_key if settings.development else None
    return Authenticator(
        ApiKeyVerifier(sessions, settings.auth_api_key_cache_seconds),
        JwtVerifier(jwt_config) if jwt_config else None,
        dev_key.get_secret_value() if dev_key else None,
    )


def _refuse_routes_without_rules(app: FastAPI) -> None:
    """Every route must say who may call it (`api/route_rules.py`), or the app does not build."""
    served = [context.original_route for context in iter_route_contexts(app.routes)]
    routes = [
        (method, route.path)
        for route in served
        if isinstance(route, APIRoute)
        for method in sorted(route.methods or ())
    ]
    missing = routes_without_rules(routes)
    missing += unexpected_paths(
        [getattr(route, "path", "?") for route in served if not isinstance(route, APIRoute)]
    )
    if missing:
        raise RuntimeError(f"routes without an access rule in api/route_rules.py: {', '.join(missing)}")


def create_served_app() -> FastAPI:
    """The API as `aftercare api` serves it: the process's own, so what start-up built is frozen out of
    the garbage collector's sight once the app has started (`aftercare.long_lived`)."""
    return create_app(freeze_after_startup=True)


def create_app(
    settings: Settings | None = None, *, temporal: Client | None = None, freeze_after_startup: bool = False
) -> FastAPI:
    """The API. The Temporal client connects lazily, so the API starts (and reports 503) without it.

    Every route sits behind `api.security.authorize` and its rule; the app refuses to build if a route
    has none, and to start when production settings leave it unprotected (`aftercare.security.startup`).
    `freeze_after_startup` is for a process that serves this app alone (tests build many apps in one).
    """
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.database_url, pool_size=settings.database_pool_size)
        sessions = session_factory(engine)
        try:
            refuse_if(await api_problems(settings, sessions), "the API")
            client = temporal or await connect_temporal(settings, lazy=True, retry_config=REQUEST_RETRIES)
        except BaseException:
            await engine.dispose()
            raise
        authenticator = _authenticator(settings, sessions)
        dev_key = authenticator.dev_key
        app.state.services = Services(
            settings=settings,
            engine=engine,
            sessions=sessions,
            temporal=client,
            starter=EnrollmentStarter(sessions, client, settings.temporal_task_queue),
            authenticator=authenticator,
            rate_limiter=RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst),
            codec=payload_codec(settings),
            codec_ui_token=codec_ui_token(dev_key) if dev_key else None,
        )
        registration = await _start_registration(sessions)
        unstarted = asyncio.create_task(app.state.services.starter.start_unstarted())
        # Event changes whose effects Temporal could not take when they committed: retried until done.
        outbox = asyncio.create_task(
            retry_forever(
                EffectRunner(sessions, client, app.state.services.starter, settings.temporal_task_queue)
            )
        )
        if freeze_after_startup:
            freeze_startup_objects()
        try:
            yield
        finally:
            outbox.cancel()
            unstarted.cancel()
            if registration is not None:
                registration.cancel()
            if authenticator.jwt is not None:
                await authenticator.jwt.aclose()
            await engine.dispose()

    app = FastAPI(
        title="Aftercare",
        version=aftercare.__version__,
        description="Durable post-discharge patient outreach: FHIR triggers, journeys, messages.",
        lifespan=lifespan,
        dependencies=[Depends(authorize), Depends(typed_body)],
        docs_url=None,  # FastAPI's pages load Swagger UI and ReDoc from a CDN; `install_docs` serves ours
        redoc_url=None,
    )
    register_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    install_docs(app)
    install_console(app)
    _refuse_routes_without_rules(app)
    install_openapi(app)

    trusted = parse_networks(settings.trusted_proxies)
    app.add_middleware(
        Admission,
        limit=settings.api_max_in_flight or 2 * settings.database_pool_size,
        wait=settings.api_admission_wait_seconds,
    )
    app.add_middleware(AuditTrail, trusted_proxies=trusted)
    app.add_middleware(
        BodyLimit,
        limit=settings.max_request_bytes,
        large_limit=settings.max_import_request_bytes,
        large_paths=LARGE_BODY_PATHS,
    )
    app.add_middleware(
        PathCors, api_origins=settings.cors_origins, codec_origins=settings.temporal_ui_origins
    )
    app.add_middleware(SecurityHeaders, trusted_proxies=trusted, documentation=DOCUMENTATION_PAGES)
    app.add_middleware(RequestMetrics)
    app.add_middleware(FacilityScopeBoundary)
    return app
