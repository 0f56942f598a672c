"""Who is using the console: the session's user, or a caller sending the API's own credentials
(`X-API-Key` or a bearer token, for scripts and smoke tests). Without either, a page answers 303 to the
sign-in page and shows nothing; a user without the page's permission gets 403. A form posted with a
session must carry the session's CSRF token."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from aftercare.facilities.scope import enter_scope
from aftercare.security.authenticate import API_KEY_HEADER, AuthenticationFailed
from aftercare.security.principal import Principal
from api.deps import get_services
from api.route_rules import Access, rule_for
from console.forms import read_form
from console.sessions import COOKIE, ConsoleSession, SessionStore

LOGIN_PATH = "/console/login"


class SignInRequired(Exception):
    """No usable session or credentials: the answer is a redirect to the sign-in page."""


class ConsoleForbidden(Exception):
    """The user lacks what the page or form needs (a permission, a valid CSRF token)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def session_store(request: Request) -> SessionStore:
    """The console's sessions (in the database, shared by every process of the app)."""
    services = get_services(request)
    return SessionStore(services.sessions, services.settings.console_idle_minutes * 60)


async def current_session(request: Request) -> ConsoleSession | None:
    """The request's live session, if it has one."""
    return await session_store(request).find(request.cookies.get(COOKIE))


async def _principal(request: Request) -> tuple[Principal, ConsoleSession | None]:
    authenticator = get_services(request).authenticator
    api_key = request.headers.get(API_KEY_HEADER)
    authorization = request.headers.get("authorization")
    if api_key or authorization:
        try:
            return await authenticator.authenticate(api_key, authorization), None
        except AuthenticationFailed as error:
            raise SignInRequired from error
    # None too when the key it was opened with was revoked or expired, or the token expired, since.
    session = await current_session(request)
    if session is None:
        raise SignInRequired
    return session.principal, session


async def _check_csrf(request: Request, session: ConsoleSession) -> None:
    form = await read_form(request)  # kept for the route
    token = form.get("csrf")
    if not isinstance(token, str) or not hmac.compare_digest(token.encode(), session.csrf.encode()):
        raise ConsoleForbidden("the form has expired or did not come from this console; reload the page")


async def console_principal(request: Request) -> Principal:
    """The signed-in user of a console page, held to the page's rule (`api/route_rules.py`)."""
    path = getattr(request.scope.get("route"), "path", "")
    rule = rule_for(request.method, path)
    if rule is None or rule.access is not Access.CONSOLE:
        raise ConsoleForbidden("this page has no console access rule")
    principal, session = await _principal(request)
    request.state.principal = principal  # for the audit trail
    # Every transaction of this page sees only the user's facilities, as the API's routes do.
    enter_scope(principal.facilities)
    request.state.console_session = session
    for permission in (rule.permission, rule.also):
        if permission is not None and not principal.can(permission):
            raise ConsoleForbidden(f"this page needs the permission {permission.value!r}")
    if session is not None and request.method not in ("GET", "HEAD"):
        await _check_csrf(request, session)
    return principal


ConsoleUser = Annotated[Principal, Depends(console_principal)]
