"""The public self-service page of an event: opened by a signed, expiring link; register, choose a
session, cancel, add to calendar; a bad link gets a clear page, never an error. And in a browser."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from playwright.async_api import Browser
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from aftercare.events.links import link_token
from aftercare.settings import Settings, event_link_secret
from api.app import create_app
from patient_pages import events as event_pages
from tests.api.test_events import an_event, patients
from tests.browser import chromium, offline_except
from tests.conftest import AUTH_HEADERS
from tests.serving import serving


@pytest.fixture(autouse=True)
def fresh_rate_limit() -> None:
    event_pages._limiter = event_pages.RateLimiter(rate=2.0, burst=20)


async def a_link(api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]) -> str:
    await patients(sessions, "ana")
    await api.post("/v1/events", json=an_event(capacity=1))
    await api.post("/v1/events/diabetes-class/publish")
    created = await api.post("/v1/events/diabetes-class/links", json={"patient_id": "ana"})
    assert created.status_code == 201
    url: str = created.json()["url"]
    assert "ana" not in url
    return url


async def test_a_patient_registers_adds_it_to_the_calendar_and_cancels_from_the_page(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    url = await a_link(api, sessions)

    page = await api.get(url)
    unchosen = await api.post(
        f"{url}/register", content="", headers={"content-type": "application/x-www-form-urlencoded"}
    )
    registered = await api.post(
        f"{url}/register",
        content="session_id=evening",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    after = await api.get(registered.headers["location"])
    invite = await api.get(f"{url}/invite.ics")
    cancelled = await api.post(f"{url}/cancel")
    final = await api.get(cancelled.headers["location"])
    registrations = (await api.get("/v1/events/diabetes-class/registrations")).json()["items"]

    assert page.status_code == 200
    assert "Living well with diabetes" in page.text
    assert unchosen.status_code == 422
    assert "Please choose a session." in unchosen.text
    assert registered.status_code == 303
    assert "You are registered." in after.text
    assert "you have a place" in after.text
    assert invite.headers["content-type"].startswith("text/calendar")
    assert b"METHOD:REQUEST" in invite.content
    assert "Your place is cancelled." in final.text
    assert [(r["session_id"], r["status"], r["source"]) for r in registrations] == [
        ("evening", "cancelled", "self_service")
    ]


async def test_tampered_foreign_and_expired_links_get_a_clear_page(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], api_settings: Settings
) -> None:
    url = await a_link(api, sessions)
    token = url.rsplit("/", 1)[1]
    tampered = url[:-6] + ("AAAAAA" if not url.endswith("AAAAAA") else "BBBBBB")
    expired, _ = link_token(
        event_link_secret(api_settings), "diabetes-class", "ana", now=datetime.now(UTC) - timedelta(days=31)
    )
    other_secret, _ = link_token(b"another hospital", "diabetes-class", "ana")

    answers = [
        await api.get(tampered),
        await api.get(f"/e/{token[:20]}"),
        await api.get(f"/e/{other_secret}"),
        await api.post(f"/e/{other_secret}/register", content="session_id=morning"),
        await api.get(f"/e/{expired}"),
    ]

    assert [a.status_code for a in answers] == [403, 403, 403, 403, 410]
    assert all(a.headers["content-type"].startswith("text/html") for a in answers)
    assert "This link does not work" in answers[0].text
    assert "This link has expired" in answers[4].text


async def test_the_page_is_rate_limited_per_client(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    url = await a_link(api, sessions)
    codes = [(await api.get(url)).status_code for _ in range(25)]
    assert codes[:20] == [200] * 20
    assert 429 in codes[20:]


@pytest.fixture
async def site(
    api_settings: Settings, dev_server: WorkflowEnvironment, empty_database: AsyncEngine
) -> AsyncIterator[str]:
    async with serving(create_app(api_settings, temporal=dev_server.client)) as url:
        yield url


async def test_in_a_browser_the_patient_chooses_a_session_and_registers(
    site: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with httpx.AsyncClient(base_url=site, headers=AUTH_HEADERS) as api:
        url = await a_link(api, sessions)
    async with chromium() as browser_instance:
        browser: Browser = browser_instance
        page = await browser.new_page()
        refused = await offline_except(page, site)
        await page.goto(f"{site}{url}")
        assert await page.title() == "Living well with diabetes"
        await page.get_by_role("button", name="Register").click()
        assert await page.locator(".error").inner_text() == "Please choose a session."
        await page.get_by_label("1 places left", exact=False).first.check()
        await page.get_by_role("button", name="Register").click()
        await page.wait_for_url(f"{site}{url}?done=registered")
        assert await page.get_by_role("status").inner_text() == "You are registered."
        assert await page.get_by_role("link", name="Add to my calendar").count() == 1
        await page.get_by_role("button", name="Cancel my place").click()
        await page.wait_for_url(f"{site}{url}?done=cancelled")
        assert await page.get_by_role("status").inner_text() == "Your place is cancelled."
    assert refused == []
