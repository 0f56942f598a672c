"""Signing in through the identity provider (where `AUTH_JWT_ISSUER` and `CONSOLE_OIDC_CLIENT_ID` are
set): OpenID Connect's authorization code flow with PKCE (S256). The console sends the browser to the
provider with a fresh `state` and code challenge, and keeps the sign-in in flight (state, verifier,
redirect URI) in an HttpOnly cookie for 10 minutes, so any process of the app can finish it. On the way
back it checks the state against the cookie's, exchanges the code with the verifier, and checks the
access token as the API checks any bearer token (issuer, audience, signature, roles), which then stands
for the session."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from aftercare.security.authenticate import AuthenticationFailed
from aftercare.settings import Settings
from api.deps import get_services
from console.auth import LOGIN_PATH
from console.login import secure_cookies, signed_in
from console.rendering import render

router = APIRouter(prefix="/console/login", include_in_schema=False)

STATE_COOKIE = "aftercare_console_oidc"
PENDING_SECONDS = 600
CALLBACK = "/console/login/oidc/callback"


@dataclass(frozen=True)
class Pending:
    """A sign-in sent to the provider and not back yet (`started`: Unix time)."""

    verifier: str
    redirect_uri: str
    started: float


def pending_cookie(pending: Pending, state: str) -> str:
    """The state cookie's value: the sign-in in flight, carried by the browser itself, so that whichever
    process of the app the provider sends the browser back to can finish it."""
    document = {"state": state, "verifier": pending.verifier, "redirect_uri": pending.redirect_uri}
    return base64.urlsafe_b64encode(json.dumps({**document, "started": pending.started}).encode()).decode()


def pending_from_cookie(value: str, state: str) -> Pending | None:
    """The sign-in the cookie carries, when it is for this `state` and not older than 10 minutes."""
    try:
        document = json.loads(base64.urlsafe_b64decode(value.encode()))
        expected, started = str(document["state"]), float(document["started"])
        pending = Pending(str(document["verifier"]), str(document["redirect_uri"]), started)
    except (ValueError, KeyError, TypeError):
        return None
    if not (state and hmac.compare_digest(state.encode(), expected.encode())):
        return None
    return pending if 0 <= time.time() - started <= PENDING_SECONDS else None


def code_challenge(verifier: str) -> str:
    """PKCE's S256 challenge of a verifier."""
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


async def provider(settings: Settings) -> dict[str, Any]:
    """The provider's discovery document."""
    assert settings.auth_jwt_issuer is not None
    url = settings.auth_jwt_issuer.rstrip("/") + "/.well-known/openid-configuration"
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.get(url)
        answer.raise_for_status()
        document: dict[str, Any] = answer.json()
        return document


def _failed(request: Request, message: str) -> HTMLResponse:
    return render(request, "forbidden.html", {"message": message}, status_code=400)


@router.get("/oidc")
async def start(request: Request) -> Response:
    """Send the browser to the provider's authorization endpoint."""
    settings = get_services(request).settings
    if not (settings.auth_jwt_issuer and settings.console_oidc_client_id):
        return RedirectResponse(LOGIN_PATH, status_code=303)
    try:
        endpoint = (await provider(settings))["authorization_endpoint"]
    except (httpx.HTTPError, KeyError, ValueError):
        return _failed(request, "The identity provider cannot be reached; sign in with an API key.")
    state, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(48)
    redirect_uri = str(request.base_url).rstrip("/") + CALLBACK
    pending = Pending(verifier, redirect_uri, time.time())
    query = {
        "response_type": "code",
        "client_id": settings.console_oidc_client_id,
        "redirect_uri": redirect_uri,
        "scope": settings.console_oidc_scopes,
        "state": state,
        "code_challenge": code_challenge(verifier),
        "code_challenge_method": "S256",
    }
    answer = RedirectResponse(f"{endpoint}?{urlencode(query)}", status_code=303)
    answer.set_cookie(
        STATE_COOKIE,
        pending_cookie(pending, state),
        max_age=PENDING_SECONDS,
        httponly=True,
        secure=secure_cookies(request),
        samesite="lax",
        path=LOGIN_PATH,
    )
    return answer


async def _exchange(settings: Settings, pending: Pending, code: str) -> str:
    """The access token the code and verifier are worth."""
    assert settings.console_oidc_client_id is not None
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": pending.redirect_uri,
        "client_id": settings.console_oidc_client_id,
        "code_verifier": pending.verifier,
    }
    secret = settings.console_oidc_client_secret
    auth = (settings.console_oidc_client_id, secret.get_secret_value()) if secret else None
    endpoint = (await provider(settings))["token_endpoint"]
    async with httpx.AsyncClient(timeout=10) as client:
        answer = (
            await client.post(endpoint, data=form, auth=auth)
            if auth
            else await client.post(endpoint, data=form)
        )
        answer.raise_for_status()
        token = answer.json()["access_token"]
    if not isinstance(token, str):
        raise ValueError("the provider answered no access token")
    return token


def token_expiry(token: str) -> datetime | None:
    """When a checked access token expires (a session opened with it ends then); None for a token that
    is not a JWT with an `exp` claim."""
    try:
        expiry = jwt.decode(token, options={"verify_signature": False}).get("exp")
    except jwt.PyJWTError:
        return None
    return datetime.fromtimestamp(expiry, UTC) if isinstance(expiry, int | float) else None


@router.get("/oidc/callback")
async def callback(request: Request, code: str = "", state: str = "") -> Response:
    """Back from the provider: check the state, exchange the code, check the token, open a session."""
    pending = pending_from_cookie(request.cookies.get(STATE_COOKIE, ""), state)
    if pending is None:
        return _failed(request, "This sign-in did not start here, or it has expired; sign in again.")
    if not code:
        return _failed(request, "This sign-in was refused; sign in again.")
    services = get_services(request)
    try:
        token = await _exchange(services.settings, pending, code)
        principal = await services.authenticator.authenticate(None, f"Bearer {token}")
    except (httpx.HTTPError, KeyError, ValueError):
        return _failed(request, "The identity provider did not complete the sign-in; sign in again.")
    except AuthenticationFailed:
        return _failed(request, "The identity provider's token is not accepted here.")
    answer = await signed_in(request, principal, token_expiry(token))
    answer.delete_cookie(STATE_COOKIE, path=LOGIN_PATH)
    return answer
