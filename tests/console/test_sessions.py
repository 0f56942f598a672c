"""Console sessions: found by their id, ended after the idle time or at sign-out; and the cookie's
flags outside development."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from temporalio.testing import WorkflowEnvironment

from aftercare.settings import Settings
from api.app import create_app
from console import sessions
from console.sessions import Credential, SessionStore
from tests.conftest import DEV_API_KEY, serve


def test_a_session_ends_after_the_idle_time(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(sessions.time, "monotonic", lambda: now[0])
    store = SessionStore(idle_seconds=60)
    session_id, session = store.open(Credential(api_key="ak_key"))
    now[0] += 59
    assert store.find(session_id) is session  # and its idle clock starts again
    now[0] += 59
    assert store.find(session_id) is session
    now[0] += 61
    assert store.find(session_id) is None
    assert store.find(None) is None


def test_signing_out_ends_the_session() -> None:
    store = SessionStore(idle_seconds=60)
    session_id, _ = store.open(Credential(api_key="ak_key"))
    store.close(session_id)
    assert store.find(session_id) is None


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
