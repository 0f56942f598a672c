"""Every route has a rule, and the rules hold: with a key of each role, every route answers 403 exactly
when the role lacks the route's permission; without credentials, 401 with `WWW-Authenticate`.
docs/security.md's table "Who may do what" is this table, rendered."""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from api.app import create_app
from api.route_rules import RULES, Access
from models.roles import ROLE_PERMISSIONS, Permission, Role
from tests.conftest import AUTH_HEADERS, REPO

# Path parameters that must match a pattern to reach the route at all.
SAMPLE_PATH_VALUES = {"resource_type": "Patient", "date": "2026-01-01", "channel": "sms"}


@dataclass(frozen=True)
class Route:
    method: str
    path: str

    def url(self) -> str:
        return re.sub(r"\{(\w+)\}", lambda match: SAMPLE_PATH_VALUES.get(match[1], "unknown-1"), self.path)


def app_routes(app: FastAPI) -> list[Route]:
    return sorted(
        {
            Route(method, context.original_route.path)
            for context in iter_route_contexts(app.routes)
            if isinstance(context.original_route, APIRoute)
            for method in context.original_route.methods
        },
        key=lambda route: (route.path, route.method),
    )


APP = create_app()
ROUTES = app_routes(APP)
PROTECTED = [route for route in ROUTES if RULES[(route.method, route.path)].access is Access.PERMISSION]
CODEC_UI = [route for route in ROUTES if RULES[(route.method, route.path)].access is Access.CODEC_UI]


def test_every_route_has_a_rule_and_every_rule_a_route() -> None:
    assert {(route.method, route.path) for route in ROUTES} == set(RULES)


def test_an_app_with_a_route_without_a_rule_does_not_build(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(RULES, ("POST", "/v1/triggers"))
    with pytest.raises(RuntimeError, match=r"routes without an access rule .*POST /v1/triggers"):
        create_app()


async def request(client: httpx.AsyncClient, route: Route, headers: dict[str, str]) -> httpx.Response:
    return await client.request(route.method, route.url(), headers=headers)


@pytest.fixture
async def keys(api: httpx.AsyncClient) -> dict[Role, str]:
    made = {}
    for role in Role:
        answer = await api.post("/v1/api-keys", json={"name": f"walk-{role.value}", "roles": [role.value]})
        assert answer.status_code == 201, answer.text
        made[role] = answer.json()["key"]
    return made


async def test_each_role_is_refused_exactly_the_routes_its_permissions_do_not_cover(
    api: httpx.AsyncClient, keys: dict[Role, str]
) -> None:
    wrong: list[str] = []
    for route in PROTECTED:
        permission = RULES[(route.method, route.path)].permission
        assert permission is not None
        for role, key in keys.items():
            answer = await request(api, route, {"X-API-Key": key})
            allowed = permission in ROLE_PERMISSIONS[role]
            if (allowed and answer.status_code in (401, 403)) or (not allowed and answer.status_code != 403):
                wrong.append(
                    f"{role.value} {route.method} {route.path}: {answer.status_code} {answer.text[:120]}"
                )
    assert wrong == []


async def test_without_credentials_every_protected_route_is_401_with_a_challenge(
    anonymous_api: httpx.AsyncClient,
) -> None:
    assert CODEC_UI
    for route in PROTECTED + CODEC_UI:
        answer = await request(anonymous_api, route, {})
        assert answer.status_code == 401, f"{route}: {answer.status_code}"
        assert answer.headers["www-authenticate"].startswith('Bearer realm="aftercare"'), route


async def test_public_and_provider_signed_routes_need_no_api_credentials(
    anonymous_api: httpx.AsyncClient,
) -> None:
    for route in ROUTES:
        rule = RULES[(route.method, route.path)]
        if rule.access in (Access.PUBLIC, Access.PROVIDER_SIGNED):
            answer = await request(anonymous_api, route, {})
            assert answer.status_code != 401, route
            if rule.access is Access.PROVIDER_SIGNED:
                assert answer.status_code == 403  # no provider signature


async def test_a_bad_key_is_401_naming_the_token_as_invalid(anonymous_api: httpx.AsyncClient) -> None:
    for credentials in (
        {"X-API-Key": "ak_0123456789abcdef_wrongwrongwrongwrong"},
        {"X-API-Key": "nonsense"},
        {"Authorization": "Bearer ak_x_y"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
    ):
        answer = await anonymous_api.get("/v1/journeys", headers=credentials)
        assert answer.status_code == 401, credentials
        assert "error=" in answer.headers["www-authenticate"]


def test_the_security_page_shows_the_roles_and_rules_as_they_are() -> None:
    table = roles_table()
    assert table in (REPO / "docs" / "security.md").read_text(), (
        "docs/security.md's 'Who may do what' is stale; it should be:\n" + table
    )


def roles_table() -> str:
    """The security page's table: each permission, its routes, and the roles that hold it."""
    roles = list(Role)
    lines = [
        "| permission | routes | " + " | ".join(role.value for role in roles) + " |",
        "|---|---|" + "---|" * len(roles),
    ]
    for permission in Permission:
        routes = sorted(
            f"`{method} {path}`" for (method, path), rule in RULES.items() if rule.permission is permission
        )
        marks = " | ".join("✓" if permission in ROLE_PERMISSIONS[role] else "" for role in roles)
        lines.append(f"| `{permission.value}` | {', '.join(routes) or '(no endpoint yet)'} | {marks} |")
    for access, label in ((Access.PUBLIC, "anyone"), (Access.PROVIDER_SIGNED, "the provider's signature")):
        routes = sorted(
            f"`{method} {path}`" for (method, path), rule in RULES.items() if rule.access is access
        )
        lines.append(f"| {label} | {', '.join(routes)} |" + " |" * len(roles))
    return "\n".join(lines)


def test_the_development_key_holds_every_permission() -> None:
    assert AUTH_HEADERS["X-API-Key"].startswith("ak_dev_")
