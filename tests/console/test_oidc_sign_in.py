"""Signing in to the console through a real (local) OpenID Connect provider: authorization code with
PKCE; the provider's roles decide what the user sees. A callback that did not start in this browser is
refused and opens no session."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from playwright.async_api import Browser
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import WorkflowEnvironment

from aftercare.settings import Settings
from api.app import create_app
from tests.aftercare.security.issuer import Issuer, running_issuer
from tests.console.conftest import axe_violations
from tests.serving import serving


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    with running_issuer() as issuer:
        yield issuer


@pytest.fixture
def oidc_settings(api_settings: Settings, issuer: Issuer) -> Settings:
    return api_settings.model_copy(
        update={
            "auth_jwt_issuer": issuer.url,
            "auth_jwt_audience": "aftercare",
            "console_oidc_client_id": "aftercare-console",
        }
    )


@pytest.fixture
async def oidc_console(
    oidc_settings: Settings, dev_server: WorkflowEnvironment, empty_database: AsyncEngine
) -> AsyncIterator[str]:
    async with serving(create_app(oidc_settings, temporal=dev_server.client)) as url:
        yield url


async def test_sign_in_through_the_identity_provider(
    browser: Browser, oidc_console: str, issuer: Issuer
) -> None:
    page = await browser.new_page(bypass_csp=True)
    await page.goto(f"{oidc_console}/console/login")
    assert await axe_violations(page) == []
    await page.get_by_role("link", name="Sign in with your organisation's account").click()
    await page.wait_for_url(f"{oidc_console}/console")
    navigation = page.get_by_role("navigation", name="Main")
    assert await navigation.get_by_role("link", name="Patients").is_visible()  # healthcare
    assert await navigation.get_by_role("link", name="Campaigns").count() == 0
    assert await page.locator(".who").inner_text() == "jwt:nurse-1"
    assert issuer.codes == {}  # the code was spent


async def test_a_callback_that_did_not_start_here_opens_no_session(oidc_console: str) -> None:
    async with httpx.AsyncClient(base_url=oidc_console) as client:
        answer = await client.get("/console/login/oidc/callback", params={"code": "x", "state": "forged"})
        assert answer.status_code == 400
        assert "aftercare_console" not in answer.cookies
        assert (await client.get("/console")).status_code == 303


async def test_a_sign_in_started_on_one_instance_finishes_on_another(
    oidc_settings: Settings, dev_server: WorkflowEnvironment, empty_database: AsyncEngine, issuer: Issuer
) -> None:
    async with (
        serving(create_app(oidc_settings, temporal=dev_server.client)) as first,
        serving(create_app(oidc_settings, temporal=dev_server.client)) as second,
        httpx.AsyncClient() as browser,
    ):
        started = await browser.get(f"{first}/console/login/oidc")
        assert started.status_code == 303
        assert started.cookies.get("aftercare_console_oidc")  # the sign-in in flight, in the browser
        approved = await browser.get(started.headers["location"])
        assert approved.status_code in (302, 303)
        callback = approved.headers["location"]
        assert callback.startswith(f"{first}/console/login/oidc/callback?")
        # the load balancer sends the browser back to the other instance
        finished = await browser.get(callback.replace(first, second, 1))
        assert finished.status_code == 303, finished.text
        assert finished.headers["location"] == "/console"
        assert (await browser.get(f"{first}/console")).status_code == 200
        assert issuer.codes == {}
