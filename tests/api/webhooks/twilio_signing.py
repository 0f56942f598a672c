"""Requests signed exactly as Twilio signs them, with the SDK's own algorithm (`RequestValidator`)."""

from __future__ import annotations

from urllib.parse import urlencode

import httpx
from twilio.request_validator import RequestValidator

AUTH_TOKEN = "twilio-auth-token-for-tests"
PUBLIC_BASE_URL = "https://outreach.hospital.example"


async def post_signed(
    api: httpx.AsyncClient,
    path: str,
    params: dict[str, str],
    *,
    token: str = AUTH_TOKEN,
    signed_params: dict[str, str] | None = None,
    signed_url: str | None = None,
) -> httpx.Response:
    """POST form parameters as Twilio does; `signed_*` sign something else than what is sent (tampering)."""
    url = signed_url or f"{PUBLIC_BASE_URL}{path}"
    signature = RequestValidator(token).compute_signature(url, signed_params or params)
    return await api.post(
        path,
        content=urlencode(params),
        headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature},
    )
