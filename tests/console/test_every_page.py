"""Every console page, opened in the browser on the demo data (the `aftercare dev --demo` set, plus a
segment, a campaign that has run and a care task): each answers 200 and axe-core finds no serious or
critical violation. With `AFTERCARE_SCREENSHOTS=<dir>` (`make screenshots`), each page is saved there as
a PNG for the README."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx
from playwright.async_api import Browser
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.worker import Worker

from aftercare.demo.loader import load_demo
from aftercare.store.tasks import create_task
from tests.conftest import AUTH_HEADERS, DEV_API_KEY
from tests.console.conftest import axe_violations, sign_in

DEMO_PATIENT = "6d23a95e-7e18-4201-90ec-9501fa89fbd2"


async def _demo(url: str, sessions: async_sessionmaker[AsyncSession]) -> str:
    """Load the demo; returns the demo enrollment's id once it waits for the reply."""
    await asyncio.to_thread(load_demo, url, api_key=DEV_API_KEY)
    async with httpx.AsyncClient(base_url=url, headers=AUTH_HEADERS) as client:
        segment = {"key": "adults", "name": "Adults", "criteria": {"age": {"gte": 18}}}
        assert (await client.post("/v1/segments", json=segment)).status_code == 201
        campaign = {"key": "welcome", "name": "Welcome", "segment": "adults", "template": "hba1c-high"}
        assert (await client.post("/v1/campaigns", json=campaign)).status_code == 201, "campaign"
        assert (await client.post("/v1/campaigns/welcome/launch")).status_code == 202
        for _ in range(200):
            enrollments = (await client.get("/v1/enrollments", params={"patient_id": DEMO_PATIENT})).json()
            results = await client.get("/v1/campaigns/welcome/results")
            if (
                enrollments["items"]
                and enrollments["items"][0]["current_step"] == "await-reply"
                and results.status_code == 200
                and results.json()["status"] == "completed"
            ):
                break
            await asyncio.sleep(0.1)
    async with sessions.begin() as session:
        await create_task(
            session,
            {
                "id": "task-demo",
                "idempotency_key": "console:task-demo",
                "queue": "care-coordinators",
                "priority": "high",
                "title": "Call about the HbA1c result",
                "patient_id": DEMO_PATIENT,
            },
        )
    enrollment_id: str = enrollments["items"][0]["enrollment_id"]
    return enrollment_id


async def test_every_page_renders_and_passes_axe(
    browser: Browser, console_url: str, worker: Worker, sessions: async_sessionmaker[AsyncSession]
) -> None:
    enrollment_id = await _demo(console_url, sessions)
    pages = {
        "home": "/console",
        "patients": "/console/patients?q=Castellanos",
        "patient": f"/console/patients/{DEMO_PATIENT}",
        "tasks": "/console/tasks",
        "tcm": "/console/tcm",
        "journeys": "/console/journeys",
        "journey": "/console/journeys/hba1c-followup",
        "journey-editor": "/console/journeys/hba1c-followup/editor",
        "enrollment": f"/console/enrollments/{enrollment_id}",
        "templates": "/console/templates",
        "template": "/console/templates/hba1c-high",
        "template-editor": "/console/templates/hba1c-high/editor?channel=sms&locale=en",
        "segments": "/console/segments",
        "segment": "/console/segments/adults",
        "segment-builder": "/console/segments/adults/editor",
        "campaigns": "/console/campaigns",
        "campaign": "/console/campaigns/welcome",
        "events": "/console/events",
        "event-editor": "/console/events/new",
        "analytics": "/console/analytics",
        "analytics-journey": "/console/analytics/journeys/hba1c-followup",
        "analytics-campaign": "/console/analytics/campaigns/welcome",
        "surveys": "/console/surveys",
        "operations": "/console/operations",
        "audit": "/console/audit",
    }
    shots = os.environ.get("AFTERCARE_SCREENSHOTS")
    page = await sign_in(browser, console_url)
    await page.set_viewport_size({"width": 1280, "height": 900})
    problems = {}
    for name, path in pages.items():
        answer = await page.goto(f"{console_url}{path}")
        assert answer is not None
        assert answer.status == 200, path
        violations = await axe_violations(page)
        if violations:
            problems[path] = violations
        if shots:
            Path(shots).mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(Path(shots) / f"{name}.png"), full_page=True)
    login = await browser.new_page(bypass_csp=True)
    await login.goto(f"{console_url}/console/login")
    problems.update({"/console/login": v} if (v := await axe_violations(login)) else {})
    if shots:
        await login.screenshot(path=str(Path(shots) / "login.png"))
    assert problems == {}
