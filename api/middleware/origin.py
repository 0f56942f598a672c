"""Where an ASGI request comes from, believing forwarding headers only from trusted proxies."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import Scope

from aftercare.security.clients import ClientOrigin, Network, client_origin


def origin_of(scope: Scope, trusted: tuple[Network, ...]) -> ClientOrigin:
    """The request's client address and whether it came over https."""
    headers = Headers(scope=scope)
    client = scope.get("client")
    return client_origin(
        client[0] if client else None,
        scope.get("scheme", "http"),
        headers.get("x-forwarded-for"),
        headers.get("x-forwarded-proto"),
        trusted,
    )
