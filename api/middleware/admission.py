"""Admission control: at most `limit` API requests do work at once in this process, and at most as many
again wait their turn; a request beyond those, or one that cannot start within `wait` seconds, is
refused with 503 and `Retry-After`, in the API's error shape.

A burst larger than the process can serve then costs the callers a prompt refusal, never a request that
hangs past their timeout while it queues for a database connection. `limit` is sized to the pool: a
request holds at most one connection at a time, so the requests admitted never wait long for one.
Liveness, metrics and documentation are always admitted."""

from __future__ import annotations

import asyncio
import contextlib

from fastapi.responses import JSONResponse
from prometheus_client import Counter, Gauge
from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import FHIR_PREFIX, RETRY_AFTER_SECONDS, issue, operation_outcome

ADMITTED = Gauge("aftercare_api_requests_in_flight", "API requests doing work in this process")
SHED = Counter(
    "aftercare_api_requests_shed_total", "API requests refused with 503 because the process was full"
)

_ALWAYS_ADMITTED = ("/healthz", "/metrics", "/docs", "/redoc", "/openapi.json", "/static/")


class Admission:
    """The middleware."""

    def __init__(self, app: ASGIApp, *, limit: int, wait: float) -> None:
        self.app = app
        self.permits = asyncio.Semaphore(limit)
        self.max_waiting = limit
        self.waiting = 0
        self.wait = wait

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(_ALWAYS_ADMITTED):
            await self.app(scope, receive, send)
            return
        if not await self._admit():
            SHED.inc()
            await self._refuse(scope, receive, send)
            return
        ADMITTED.inc()
        try:
            await self.app(scope, receive, send)
        finally:
            ADMITTED.dec()
            self.permits.release()

    async def _admit(self) -> bool:
        if self.permits.locked() and self.waiting >= self.max_waiting:
            return False
        self.waiting += 1
        try:
            async with asyncio.timeout(self.wait):
                await self.permits.acquire()
        except TimeoutError:
            return False
        finally:
            self.waiting -= 1
        return True

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = "the API is at capacity; the request was not started, and retrying it is safe"
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        if scope["path"].startswith(FHIR_PREFIX):
            response = operation_outcome(503, [issue("transient", message)], headers)
        else:
            response = JSONResponse({"detail": message}, status_code=503, headers=headers)
        with contextlib.suppress(OSError):
            await response(scope, receive, send)
