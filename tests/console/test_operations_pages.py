"""Operations and Audit in the console: FHIR sources with their health and the parked items; the
audit trail searched, where the console's own page views appear like the API's."""

from __future__ import annotations

from playwright.async_api import Browser
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aftercare.store.fhir_sources import save_source
from aftercare.store.triggers import park
from models.tables import SyncCursor
from tests.console.conftest import axe_violations, sign_in


async def test_operations_show_a_failing_source_and_parked_items(
    browser: Browser, console_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with sessions.begin() as session:
        await save_source(
            session,
            key="ehr",
            base_url="https://ehr.example.org/fhir",
            auth={},
            watched_types=["Observation"],
            poll_seconds=60,
        )
        session.add(SyncCursor(source_key="ehr", resource_type="Observation", last_error="HTTP 503"))
        await park(session, "trigger", "no patient with this id", "trigger:42")
    page = await sign_in(browser, console_url)
    assert "1" in await page.locator(".tile.alert", has_text="failing FHIR sources").inner_text()
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Operations").click()
    assert "ehr — failing" in await page.locator("#src-ehr").inner_text()
    assert "HTTP 503" in await page.locator("section.card").inner_text()
    assert "no patient with this id" in await page.locator("table").last.inner_text()
    assert await axe_violations(page) == []


async def test_a_console_page_view_is_in_the_audit_trail(browser: Browser, console_url: str) -> None:
    page = await sign_in(browser, console_url)
    await page.goto(f"{console_url}/console/patients/p-maria")
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit").click()
    await page.get_by_label("Resource id").fill("p-maria")
    await page.get_by_role("button", name="Search").click()
    row = page.locator("tbody tr", has_text="/console/patients/{patient_id}")
    assert "dev" in await row.first.inner_text()
    assert "patient p-maria" in await row.first.inner_text()
    assert await axe_violations(page) == []

    await page.get_by_label("Since (YYYY-MM-DD)").fill("yesterday")
    await page.get_by_role("button", name="Search").click()
    assert await page.locator("#a-since-error").is_visible()
