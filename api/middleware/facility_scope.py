"""Bounds a request's facility scope to the request: whatever the authorisation set is undone when the
request ends, so code that runs after it in the same task (a test, an embedding app) sees the whole
group again. A plain ASGI middleware: no extra task per request."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from aftercare.facilities.scope import request_boundary


class FacilityScopeBoundary:
    """Restores the facility scope in force before the request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        with request_boundary():
            await self.app(scope, receive, send)
