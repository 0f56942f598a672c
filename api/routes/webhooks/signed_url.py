"""The URL a provider requested, as it signed it."""

from __future__ import annotations

from fastapi import Request

from aftercare.settings import Settings


def requested_url(request: Request, settings: Settings) -> str:
    """The public URL of this request: behind a proxy the app sees another host, so `PUBLIC_BASE_URL`
    (when set) replaces the scheme and host the provider used."""
    if not settings.public_base_url:
        return str(request.url)
    query = f"?{request.url.query}" if request.url.query else ""
    return f"{settings.public_base_url.rstrip('/')}{request.url.path}{query}"
