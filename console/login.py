"""Signing in with an API key, and out. The sign-in form carries a token that must match a cookie set
with the form (double submit), so no other site can sign a browser in."""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from aftercare.security.authenticate import AuthenticationFailed
from aftercare.security.principal import Principal
from api.deps import get_services
from console.auth import LOGIN_PATH, ConsoleUser, current_session, session_store
from console.forms import read_form
from console.rendering import render
from console.sessions import COOKIE, SIGN_IN_COOKIE

router = APIRouter(prefix="/console", include_in_schema=False)


def secure_cookies(request: Request) -> bool:
    return not get_services(request).settings.development


def _form(request: Request, error: str | None = None, status_code: int = 200) -> HTMLResponse:
    token = secrets.token_urlsafe(32)
    settings = get_services(request).settings
    oidc = bool(settings.auth_jwt_issuer and settings.console_oidc_client_id)
    context = {"sign_in_token": token, "error": error, "oidc": oidc}
    page = render(request, "login.html", context, status_code=status_code)
    page.set_cookie(
        SIGN_IN_COOKIE,
        token,
        httponly=True,
        secure=secure_cookies(request),
        samesite="strict",
        path=LOGIN_PATH,
    )
    return page


@router.get("/login", response_class=HTMLResponse)
async def sign_in_page(request: Request) -> Response:
    """The sign-in form (a signed-in user goes home)."""
    if await current_session(request) is not None:
        return RedirectResponse("/console", status_code=303)
    return _form(request)


@router.post("/login", response_class=HTMLResponse)
async def sign_in(request: Request) -> Response:
    """Check the key; open a session and go home, or show the form again with the error by the field."""
    form = await read_form(request)
    token, expected = form.get("sign_in_token"), request.cookies.get(SIGN_IN_COOKIE)
    if not (isinstance(token, str) and expected and hmac.compare_digest(token.encode(), expected.encode())):
        return _form(request, "The form expired; sign in again.", status_code=400)
    api_key = form.get("api_key")
    if not isinstance(api_key, str) or not api_key.strip():
        return _form(request, "Enter your API key.", status_code=400)
    try:
        principal = await get_services(request).authenticator.authenticate(api_key.strip(), None)
    except AuthenticationFailed:
        return _form(request, "This key is not valid.", status_code=400)
    return await signed_in(request, principal)


async def signed_in(
    request: Request, principal: Principal, credential_expires_at: datetime | None = None
) -> RedirectResponse:
    """Open a session for a checked user (until `credential_expires_at`, if given) and go home."""
    session_id = await session_store(request).open(principal, credential_expires_at)
    answer = RedirectResponse("/console", status_code=303)
    answer.set_cookie(
        COOKIE, session_id, httponly=True, secure=secure_cookies(request), samesite="lax", path="/console"
    )
    answer.delete_cookie(SIGN_IN_COOKIE, path=LOGIN_PATH)
    return answer


@router.post("/logout")
async def sign_out(request: Request, _: ConsoleUser) -> Response:
    """End the session."""
    await session_store(request).close(request.cookies.get(COOKIE))
    answer = RedirectResponse(LOGIN_PATH, status_code=303)
    answer.delete_cookie(COOKIE, path="/console")
    return answer
