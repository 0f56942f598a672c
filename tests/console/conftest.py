"""The console on a real port, with the real app (lifespan, database, Temporal dev server), a headless
chromium, and a little data: two patients, a care task and a guardrail decision."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from aftercare.settings import Settings
from aftercare.store.tasks import create_task
from api.app import create_app
from tests.browser import chromium
from tests.conftest import AUTH_HEADERS, DEV_API_KEY
from tests.serving import serving

AXE = Path(__file__).resolve().parents[1] / "vendor" / "axe-core" / "axe.min.js"

PATIENTS = [
    {
        "resourceType": "Patient",
        "id": "p-maria",
        "name": [{"use": "official", "given": ["Maria"], "family": "Console"}],
        "gender": "female",
        "birthDate": "1961-03-04",
        "telecom": [{"system": "phone", "value": "617-555-0142"}],
        "identifier": [{"system": "urn:mrn", "value": "MRN-4242"}],
    },
    {
        "resourceType": "Patient",
        "id": "p-omar",
        "name": [{"use": "official", "given": ["Omar"], "family": "Console"}],
        "gender": "male",
        "birthDate": "1958-07-09",
    },
]


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as browser:
        yield browser


@pytest.fixture
async def console_url(
    api_settings: Settings, dev_server: WorkflowEnvironment, empty_database: AsyncEngine
) -> AsyncIterator[str]:
    """The app on a real port, with two patients and an open care task for the first."""
    async with serving(create_app(api_settings, temporal=dev_server.client)) as url:
        await import_patients(url)
        yield url


async def import_patients(url: str) -> None:
    """The two patients, imported through the API."""
    async with httpx.AsyncClient(base_url=url, headers=AUTH_HEADERS) as client:
        bundle = {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": p} for p in PATIENTS],
        }
        imported = await client.post("/v1/fhir/import", json=bundle, params={"triggers": "false"})
        assert imported.status_code == 200, imported.text


@pytest.fixture
async def care_task(console_url: str, sessions: async_sessionmaker[AsyncSession]) -> str:
    values: dict[str, Any] = {
        "id": "task-call-maria",
        "idempotency_key": "console-test:task-call-maria",
        "queue": "care-coordinators",
        "priority": "high",
        "title": "Call Maria about her lab result",
        "patient_id": "p-maria",
    }
    async with sessions.begin() as session:
        return await create_task(session, values)


async def role_key(url: str, role: str) -> str:
    """A new API key holding one role."""
    async with httpx.AsyncClient(base_url=url, headers=AUTH_HEADERS) as client:
        answer = await client.post("/v1/api-keys", json={"name": f"console-{role}", "roles": [role]})
        assert answer.status_code == 201, answer.text
        key: str = answer.json()["key"]
        return key


async def sign_in(browser: Browser, url: str, key: str = DEV_API_KEY) -> Page:
    """A page signed in with `key`, on the home page."""
    page = await browser.new_page(bypass_csp=True)  # axe is injected as an inline script
    await page.goto(f"{url}/console/login")
    await page.get_by_label("API key").fill(key)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{url}/console")
    return page


async def axe_violations(page: Page) -> list[str]:
    """The serious and critical accessibility violations axe-core finds on the page."""
    await page.add_script_tag(content=AXE.read_text())
    result = await page.evaluate("async () => (await axe.run(document)).violations")
    return [
        f"{violation['id']} ({violation['impact']}): {[node['target'] for node in violation['nodes']]}"
        for violation in result
        if violation["impact"] in ("serious", "critical")
    ]
