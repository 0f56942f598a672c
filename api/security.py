"""Authorisation: one dependency, on every route of the app, that applies the route's rule from
`api/route_rules.py`. It authenticates the caller, checks the permission (403 for a caller without it,
401 with `WWW-Authenticate` for no or bad credentials), and spends a rate-limit token where the rule
says so (429 with `Retry-After`). The caller is kept on the request for the route and the audit trail.
"""

from __future__ import annotations

import hmac
import re
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from aftercare.facilities.scope import enter_scope, leave_scope
from aftercare.security.authenticate import API_KEY_HEADER, AuthenticationFailed
from aftercare.security.jwt_auth import JwksUnavailable
from aftercare.security.principal import Principal, PrincipalKind
from aftercare.security.rate_limit import retry_after
from api.deps import get_services
from api.route_rules import Access, Rule, rule_for
from models.roles import Role

_REALM = 'realm="aftercare"'
_UNQUOTABLE = re.compile(r'["\\\r\n]')

CODEC_UI_PRINCIPAL = Principal(
    kind=PrincipalKind.CODEC_UI,
    subject="temporal-ui",
    roles=frozenset({Role.OPERATOR}),
    scopes=frozenset({"codec:decode", "codec:encode"}),
)


def challenge(error: str | None = None, description: str | None = None) -> str:
    """A `WWW-Authenticate` value (RFC 6750), naming the API key header as a second scheme."""
    parts = [f"Bearer {_REALM}"]
    if error:
        parts.append(f'error="{error}"')
        if description:
            parts.append(f'error_description="{_UNQUOTABLE.sub("", description)[:200]}"')
    return ", ".join(parts) + f', ApiKey {_REALM}, header="{API_KEY_HEADER}"'


def route_rule(request: Request) -> Rule | None:
    """The rule of the route this request matched."""
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    return rule_for(request.method, path) if path else None


def _unauthorized(message: str, error: str | None = None) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, message, headers={"WWW-Authenticate": challenge(error, message)}
    )


async def _authenticate(request: Request, rule: Rule) -> Principal:
    services = get_services(request)
    if rule.access is Access.CODEC_UI:
        expected = services.codec_ui_token
        token = str(request.path_params.get("token", ""))
        if expected is None or not hmac.compare_digest(token.encode(), expected.encode()):
            raise _unauthorized("this codec endpoint is not open", "invalid_token")
        return CODEC_UI_PRINCIPAL
    try:
        return await services.authenticator.authenticate(
            request.headers.get(API_KEY_HEADER), request.headers.get("authorization")
        )
    except AuthenticationFailed as error:
        raise _unauthorized(str(error), error.error) from error
    except JwksUnavailable as error:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(error)) from error


async def authorize(request: Request) -> Principal | None:
    """Apply the route's rule; the caller (None on public and provider-signed routes)."""
    leave_scope()
    rule = route_rule(request)
    if rule is None:  # `create_app` refuses routes without rules; this is the fail-safe
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this route has no access rule")
    if rule.access in (Access.PUBLIC, Access.PROVIDER_SIGNED, Access.CONSOLE_SIGN_IN):
        return None
    if rule.access is Access.CONSOLE:  # the console's own dependency signs in and checks (console/auth.py)
        return None
    principal = await _authenticate(request, rule)
    request.state.principal = principal
    # From here on every transaction of this request sees only the caller's facilities.
    enter_scope(principal.facilities)
    assert rule.permission is not None
    if not principal.can(rule.permission):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"this needs the permission {rule.permission.value!r}, which the caller lacks",
        )
    if rule.rate_limited:
        wait = get_services(request).rate_limiter.take(principal.key_id or principal.subject)
        if wait:
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                "too many requests from this caller; retry later",
                headers={"Retry-After": retry_after(wait)},
            )
    return principal


def current_principal(request: Request, _: Annotated[Principal | None, Depends(authorize)]) -> Principal:
    """The authenticated caller of a route that needs one."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:
        raise _unauthorized("authentication required")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
