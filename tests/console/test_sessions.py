"""Console sessions live in PostgreSQL: a session opened on one instance of the app works on another
and after a restart, sign-out on either ends it everywhere, the table keeps only a hash of the id, and a
session ends after its idle time or when the key it was opened with is revoked. And the cookie's flags
outside development."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import replace

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import WorkflowEnvironment

from aftercare.settings import Settings
from api.app import create_app
from tests.conftest import AUTH_HEADERS, DEV_API_KEY, serve


async def _sign_in(client: httpx.AsyncClient, key: str = DEV_API_KEY) -> str:
    """Sign in through the form; the session cookie's value."""
    form = await client.get("/console/login")
    token = re.search(r'name="sign_in_token" value="([^"]+)"', form.text)
    assert token
    answer = await client.post("/console/login", data={"sign_in_token": token[1], "api_key": key})
    assert answer.status_code == 303, answer.text
    session_id = answer.cookies.get("aftercare_console")
    assert session_id
    client.cookies.clear()  # each request below names the session it uses
    return session_id


def _csrf(page: httpx.Response) -> str:
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token, "the page has a form with the session's CSRF token"
    return token[1]


@pytest.fixture
async def two_instances(
    api_settings: Settings, dev_server: WorkflowEnvironment, empty_database: AsyncEngine
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """Two instances of the app on the same database, as two processes behind a load balancer."""
    async with AsyncExitStack() as stack:
        first = await stack.enter_async_context(serve(create_app(api_settings, temporal=dev_server.client)))
        second = await stack.enter_async_context(serve(create_app(api_settings, temporal=dev_server.client)))
        yield first, second


def _cookie(session_id: str) -> dict[str, str]:
    return {"cookie": f"aftercare_console={session_id}"}


async def _home(client: httpx.AsyncClient, session_id: str) -> httpx.Response:
    return await client.get("/console", headers=_cookie(session_id))


async def test_a_session_opened_on_one_instance_works_on_another(
    two_instances: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    first, second = two_instances
    session_id = await _sign_in(first)
    home = await _home(second, session_id)
    assert home.status_code == 200
    # and its forms' CSRF token is the same on both
    assert _csrf(home) == _csrf(await _home(first, session_id))


async def test_a_session_outlives_a_restart(
    api_settings: Settings, dev_server: WorkflowEnvironment, empty_database: AsyncEngine
) -> None:
    async with serve(create_app(api_settings, temporal=dev_server.client)) as before:
        session_id = await _sign_in(before)
    async with serve(create_app(api_settings, temporal=dev_server.client)) as after:
        assert (await _home(after, session_id)).status_code == 200


async def test_signing_out_on_one_instance_ends_the_session_on_every_instance(
    two_instances: tuple[httpx.AsyncClient, httpx.AsyncClient], empty_database: AsyncEngine
) -> None:
    first, second = two_instances
    session_id = await _sign_in(first)
    csrf = _csrf(await _home(second, session_id))
    out = await second.post("/console/logout", data={"csrf": csrf}, headers=_cookie(session_id))
    assert out.status_code == 303
    assert (await _home(first, session_id)).headers["location"] == "/console/login"
    async with empty_database.connect() as connection:
        assert await connection.scalar(text("SELECT count(*) FROM console_sessions")) == 0


async def test_the_table_keeps_the_user_and_a_hash_of_the_session_id_never_the_key(
    two_instances: tuple[httpx.AsyncClient, httpx.AsyncClient], empty_database: AsyncEngine
) -> None:
    first, _ = two_instances
    session_id = await _sign_in(first)
    async with empty_database.connect() as connection:
        row = (await connection.execute(text("SELECT * FROM console_sessions"))).mappings().one()
    assert row["id_hash"] == hashlib.sha256(session_id.encode()).hexdigest()
    assert row["subject"] == "dev"
    assert "admin" in row["roles"]
    assert row["idle_seconds"] == 30 * 60
    assert session_id not in str(dict(row))
    assert DEV_API_KEY not in str(dict(row))


async def test_a_session_ends_after_its_idle_time(
    two_instances: tuple[httpx.AsyncClient, httpx.AsyncClient], empty_database: AsyncEngine
) -> None:
    first, second = two_instances
    session_id = await _sign_in(first)
    async with empty_database.begin() as connection:
        await connection.execute(
            text("UPDATE console_sessions SET last_seen_at = now() - interval '29 minutes'")
        )
    assert (await _home(second, session_id)).status_code == 200  # and its idle clock starts again
    async with empty_database.begin() as connection:
        await connection.execute(
            text("UPDATE console_sessions SET last_seen_at = now() - interval '31 minutes'")
        )
    assert (await _home(second, session_id)).status_code == 303
    # an idle session is forgotten when the next one opens
    await _sign_in(first)
    async with empty_database.connect() as connection:
        assert await connection.scalar(text("SELECT count(*) FROM console_sessions")) == 1


async def test_revoking_the_key_ends_its_sessions_on_every_instance(
    two_instances: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    first, second = two_instances
    made = await first.post(
        "/v1/api-keys", json={"name": "console-coordinator", "roles": ["healthcare"]}, headers=AUTH_HEADERS
    )
    assert made.status_code == 201, made.text
    session_id = await _sign_in(first, made.json()["key"])
    assert (await _home(second, session_id)).status_code == 200
    revoked = await first.delete(f"/v1/api-keys/{made.json()['id']}", headers=AUTH_HEADERS)
    assert revoked.status_code in (200, 204), revoked.text
    assert (await _home(second, session_id)).status_code == 303


async def test_outside_development_the_cookie_is_secure(
    api_settings: Settings, dev_server: WorkflowEnvironment, empty_database: object
) -> None:
    app = create_app(api_settings, temporal=dev_server.client)
    async with serve(app) as client:
        # the running app's settings turned to production (it would not start so with the development key)
        services = app.state.services
        production = services.settings.model_copy(update={"aftercare_env": "production"})
        app.state.services = replace(services, settings=production)
        form = await client.get("/console/login")
        token = re.search(r'name="sign_in_token" value="([^"]+)"', form.text)
        assert token
        assert "secure" in form.headers["set-cookie"].lower()
        # a Secure cookie does not travel over this test's plain http: send it back by hand
        form_cookie = form.headers["set-cookie"].split(";")[0]
        signed_in = await client.post(
            "/console/login",
            data={"sign_in_token": token[1], "api_key": DEV_API_KEY},
            headers={"cookie": form_cookie},
        )
    assert signed_in.status_code == 303
    cookie = next(
        c for c in signed_in.headers.get_list("set-cookie") if c.startswith("aftercare_console=")
    ).lower()
    assert "httponly" in cookie
    assert "secure" in cookie
    assert "samesite=lax" in cookie
