"""CORS by path: `/codec/*` for the Temporal Web UI's origins (it decodes payloads in the browser, with
credentials), the rest of the API for `CORS_ORIGINS` only. With no origins configured, no CORS header
is ever sent, so browsers keep every other site out."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

CODEC_PREFIX = "/codec/"
_CODEC_HEADERS = ["Content-Type", "X-Namespace", "Authorization", "X-API-Key"]
_API_HEADERS = ["Content-Type", "Authorization", "X-API-Key"]


class PathCors:
    """One CORS policy for the codec endpoints and one for everything else."""

    def __init__(self, app: ASGIApp, *, api_origins: Sequence[str], codec_origins: Sequence[str]) -> None:
        self.app = app
        self.codec: ASGIApp = (
            CORSMiddleware(
                app,
                allow_origins=list(codec_origins),
                allow_methods=["POST"],
                allow_headers=_CODEC_HEADERS,
                allow_credentials=True,
                max_age=600,
            )
            if codec_origins
            else app
        )
        self.api: ASGIApp = (
            CORSMiddleware(
                app,
                allow_origins=list(api_origins),
                allow_methods=["GET", "POST", "PUT", "DELETE"],
                allow_headers=_API_HEADERS,
                max_age=600,
            )
            if api_origins
            else app
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(CODEC_PREFIX):
            await self.codec(scope, receive, send)
        else:
            await self.api(scope, receive, send)
