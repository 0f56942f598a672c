"""Journeys in the console: publish a version from the editor (a broken one is refused with its error at
the line it points to), the journey drawn with counts per step, an enrollment paused and resumed through
its page; axe-core on each page."""

from __future__ import annotations

import asyncio

import httpx
from playwright.async_api import Browser, Page
from temporalio.worker import Worker

from tests.conftest import AUTH_HEADERS
from tests.console.conftest import axe_violations, sign_in

BROKEN = """key: console-demo
version: 1
name: Console demo
steps:
  - id: welcome
    send: {channel: sms, body: "Welcome home"}
    goto: nowhere
  - id: done
    end: {outcome: completed}
"""

WAITING = """key: console-wait
version: 1
name: Console wait
steps:
  - id: hello
    send: {channel: sms, body: "Hello"}
  - id: pause-here
    wait: {duration: PT1H}
  - id: done
    end: {outcome: completed}
"""


async def editor_text(page: Page, text: str) -> None:
    await page.get_by_label("Definition (YAML)").fill(text)
    await page.get_by_role("button", name="Publish as a new version").click()


async def test_publish_from_the_editor_after_a_refused_broken_version(
    browser: Browser, console_url: str
) -> None:
    page = await sign_in(browser, console_url)
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Journeys").click()
    assert await axe_violations(page) == []
    await page.get_by_role("button", name="New journey").click()
    assert await axe_violations(page) == []

    await editor_text(page, BROKEN)
    alert = page.get_by_role("alert")
    assert "Line 7" in await alert.inner_text()
    assert "nowhere" in await alert.inner_text()
    assert "goto: nowhere" in await page.locator(".source .error-line").inner_text()
    assert await axe_violations(page) == []
    async with httpx.AsyncClient(base_url=console_url, headers=AUTH_HEADERS) as client:
        assert (await client.get("/v1/journeys/console-demo")).status_code == 404

    await editor_text(page, BROKEN.replace("    goto: nowhere\n", ""))
    await page.wait_for_url(f"{console_url}/console/journeys/console-demo?published=1")
    assert "Version 1 is published" in await page.get_by_role("status").inner_text()
    assert await page.locator("#step-welcome").is_visible()
    assert await axe_violations(page) == []

    await page.get_by_role("link", name="Edit as a new version").click()
    assert "version: 2" in await page.get_by_label("Definition (YAML)").input_value()
    await page.get_by_role("button", name="Publish as a new version").click()
    await page.wait_for_url(f"{console_url}/console/journeys/console-demo?published=1")
    assert "Version 2 is published" in await page.get_by_role("status").inner_text()


async def test_an_enrollment_is_counted_at_its_step_and_paused_from_its_page(
    browser: Browser, console_url: str, worker: Worker
) -> None:
    async with httpx.AsyncClient(base_url=console_url, headers=AUTH_HEADERS) as client:
        published = await client.post(
            "/v1/journeys", content=WAITING, headers={"content-type": "application/yaml"}
        )
        assert published.status_code == 201, published.text
        enrolled = await client.post("/v1/journeys/console-wait/enrollments", json={"patient_id": "p-maria"})
        enrollment_id = enrolled.json()["enrollment_id"]
        for _ in range(100):
            state = (await client.get(f"/v1/enrollments/{enrollment_id}")).json()
            if state["current_step"] == "pause-here":
                break
            await asyncio.sleep(0.1)
        assert state["current_step"] == "pause-here"

    page = await sign_in(browser, console_url)
    await page.goto(f"{console_url}/console/journeys/console-wait")
    assert "1 waiting here" in await page.locator("#step-pause-here").inner_text()
    assert "1 passed" in await page.locator("#step-hello").inner_text()

    await page.get_by_role("link", name=enrollment_id).click()
    assert await axe_violations(page) == []
    await page.get_by_role("button", name="Pause").click()
    await page.wait_for_url(f"{console_url}/console/enrollments/{enrollment_id}")
    assert "(paused)" in await page.locator(".facts").inner_text()
    await page.get_by_role("button", name="Resume").click()
    assert await page.get_by_role("button", name="Pause").is_visible()

    await page.get_by_role("button", name="Cancel the enrollment").click()
    for _ in range(50):
        if "cancelled" in await page.locator(".facts").inner_text():
            break
        await page.reload()
    assert "cancelled" in await page.locator(".facts").inner_text()
    assert await page.get_by_role("button", name="Pause").count() == 0


async def test_start_from_a_ready_made_journey(browser: Browser, console_url: str) -> None:
    page = await sign_in(browser, console_url)
    await page.goto(f"{console_url}/console/journeys")
    await page.get_by_role("button", name="Install Abnormal lab result follow-up").click()
    await page.wait_for_url(f"{console_url}/console/journeys/abnormal-lab-follow-up?installed=1")
    assert "Installed, with its templates." in await page.get_by_role("status").inner_text()
    assert await page.locator(".graph .node").count() >= 2
    assert await axe_violations(page) == []
