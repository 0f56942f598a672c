"""Security headers on every answer: no MIME sniffing, no framing, no referrer, nothing cached (answers
carry patient data), and HSTS when the request came over https (directly or through a trusted proxy)."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aftercare.security.clients import Network
from api.middleware.origin import origin_of

_ALWAYS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
}
# The API answers data, never pages to render: nothing may load or frame it.
_API_CSP = "default-src 'none'; frame-ancestors 'none'"
# The documentation pages load their scripts, styles and the OpenAPI document from the API itself, never
# from a CDN. Swagger UI and ReDoc set inline styles and show data: images; ReDoc runs a blob: worker.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
HSTS = "max-age=31536000; includeSubDomains"


class SecurityHeaders:
    """Adds the headers; `/docs` and `/redoc` get a policy that lets their pages load from the API alone."""

    def __init__(
        self, app: ASGIApp, *, trusted_proxies: tuple[Network, ...], documentation: frozenset[str]
    ) -> None:
        self.app = app
        self.trusted = trusted_proxies
        self.documentation = documentation

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = origin_of(scope, self.trusted).https
        page = scope["path"] in self.documentation

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _ALWAYS.items():
                    headers.setdefault(name, value)
                headers.setdefault("Cache-Control", "no-store")
                headers.setdefault("Content-Security-Policy", DOCS_CSP if page else _API_CSP)
                if https:
                    headers.setdefault("Strict-Transport-Security", HSTS)
            await send(message)

        await self.app(scope, receive, with_headers)
