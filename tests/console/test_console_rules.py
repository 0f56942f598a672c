"""Every console route has a console rule and is held to it: with the API's credentials of each role, a
page answers 403 exactly when the role lacks the page's permission (or the one it `also` needs); without credentials, 303 to the
sign-in page; a form posted with a session but without its CSRF token is refused."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from api.app import create_app
from api.route_rules import RULES, Access
from console.auth import console_principal
from models.roles import ROLE_PERMISSIONS, Role
from tests.conftest import DEV_API_KEY

APP = create_app()
CONSOLE_ROUTES = sorted(
    {
        (method, context.original_route.path)
        for context in iter_route_contexts(APP.routes)
        if isinstance(context.original_route, APIRoute) and context.original_route.path.startswith("/console")
        for method in context.original_route.methods
    }
)
PAGES = [(method, path) for method, path in CONSOLE_ROUTES if RULES[(method, path)].access is Access.CONSOLE]


def url(path: str) -> str:
    return re.sub(r"\{\w+\}", "unknown-1", path)


def test_every_console_route_has_a_console_rule_and_signs_its_user_in() -> None:
    assert len(PAGES) >= 8
    for method, path in CONSOLE_ROUTES:
        assert RULES[(method, path)].access in (Access.CONSOLE, Access.CONSOLE_SIGN_IN), path
    for context in iter_route_contexts(APP.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and (sorted(route.methods)[0], route.path) in PAGES:
            calls = {dependency.call for dependency in route.dependant.dependencies}
            assert console_principal in calls, route.path


@pytest.fixture
async def keys(api: httpx.AsyncClient) -> dict[Role, str]:
    made = {}
    for role in Role:
        answer = await api.post("/v1/api-keys", json={"name": f"console-{role.value}", "roles": [role.value]})
        made[role] = answer.json()["key"]
    return made


async def test_each_role_is_refused_exactly_the_pages_its_permissions_do_not_cover(
    api: httpx.AsyncClient, keys: dict[Role, str]
) -> None:
    wrong = []
    for method, path in PAGES:
        rule = RULES[(method, path)]
        needed = {permission for permission in (rule.permission, rule.also) if permission is not None}
        for role, key in keys.items():
            answer = await api.request(method, url(path), headers={"X-API-Key": key})
            allowed = needed <= ROLE_PERMISSIONS[role]
            signed_out = answer.headers.get("location") == "/console/login" and path != "/console/logout"
            refused = answer.status_code in (401, 403) or signed_out
            if allowed == refused or (not allowed and answer.status_code != 403):
                wrong.append(f"{role.value} {method} {path}: {answer.status_code}")
    assert wrong == []


async def test_without_a_session_every_page_redirects_to_sign_in(anonymous_api: httpx.AsyncClient) -> None:
    for method, path in PAGES:
        answer = await anonymous_api.request(method, url(path))
        assert answer.status_code == 303, (method, path)
        assert answer.headers["location"] == "/console/login"
    bad_key = await anonymous_api.get("/console/tasks", headers={"X-API-Key": "ak_bad_badbadbad"})
    assert bad_key.status_code == 303


async def test_a_session_form_without_its_csrf_token_is_refused(anonymous_api: httpx.AsyncClient) -> None:
    form = await anonymous_api.get("/console/login")
    token = re.search(r'name="sign_in_token" value="([^"]+)"', form.text)
    assert token
    signed_in = await anonymous_api.post(
        "/console/login", data={"sign_in_token": token[1], "api_key": DEV_API_KEY}
    )
    assert signed_in.status_code == 303
    for method, path in PAGES:
        if method == "POST":
            answer = await anonymous_api.post(url(path), data={"csrf": "not-the-token"})
            assert answer.status_code == 403, path
    assert (await anonymous_api.get("/console/tasks")).status_code == 200


async def test_a_sign_in_without_the_form_token_is_refused(anonymous_api: httpx.AsyncClient) -> None:
    answer = await anonymous_api.post("/console/login", data={"api_key": DEV_API_KEY})
    assert answer.status_code == 400
    assert "aftercare_console" not in answer.cookies
