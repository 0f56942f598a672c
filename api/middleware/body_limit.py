"""Request body limits: `MAX_REQUEST_BYTES` for every route, `MAX_IMPORT_REQUEST_BYTES` for the routes
whose rule says `large_body` (FHIR imports). A declared length over the limit is refused before the
body is read; a streamed body is cut off when it passes the limit. The 413 has the API's error shape
(an `OperationOutcome` under `/v1/fhir/`)."""

from __future__ import annotations

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import FHIR_PREFIX, issue, operation_outcome


def _too_large(limit: int) -> str:
    return f"the request body is larger than the {limit} bytes this endpoint takes"


class BodyLimit:
    """The middleware; `large_paths` take `large_limit`, everything else `limit`."""

    def __init__(self, app: ASGIApp, *, limit: int, large_limit: int, large_paths: frozenset[str]) -> None:
        self.app = app
        self.limit = limit
        self.large_limit = large_limit
        self.large_paths = large_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.large_limit if scope["path"] in self.large_paths else self.limit
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, receive, send, limit)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise HTTPException(413, _too_large(limit))
            return message

        await self.app(scope, limited, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        message = _too_large(limit)
        if scope["path"].startswith(FHIR_PREFIX):
            response = operation_outcome(413, [issue("too-costly", message)])
        else:
            response = JSONResponse({"detail": message}, status_code=413)
        await response(scope, receive, send)
