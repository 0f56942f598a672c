"""Segments and campaigns in the console: a segment's preview count and first members; create a small
campaign from the form (a bad key refused next to its field), launch it and see its results."""

from __future__ import annotations

import httpx
from playwright.async_api import Browser
from temporalio.worker import Worker

from tests.conftest import AUTH_HEADERS
from tests.console.conftest import axe_violations, sign_in


async def _segment_and_template(url: str) -> None:
    async with httpx.AsyncClient(base_url=url, headers=AUTH_HEADERS) as client:
        template = {
            "key": "flu-console",
            "channel": "sms",
            "body": "Hi {{ patient.given }}, flu shots are in.",
        }
        assert (await client.post("/v1/templates", json=template)).status_code == 201
        segment = {"key": "adults", "name": "Adults", "criteria": {"age": {"gte": 18}}}
        assert (await client.post("/v1/segments", json=segment)).status_code == 201


async def test_preview_a_segment_then_launch_a_campaign_and_see_its_results(
    browser: Browser, console_url: str, worker: Worker
) -> None:
    await _segment_and_template(console_url)
    page = await sign_in(browser, console_url)
    navigation = page.get_by_role("navigation", name="Main")
    await navigation.get_by_role("link", name="Segments").click()
    await page.get_by_role("link", name="Adults").click()
    assert await page.locator("#segment-count").inner_text() == "2"
    assert await page.get_by_role("link", name="p-maria").is_visible()
    assert await axe_violations(page) == []

    await navigation.get_by_role("link", name="Campaigns").click()
    assert await axe_violations(page) == []
    await page.get_by_label("Key (a-z, 0-9, -)").fill("Flu Console")
    await page.get_by_label("Name").fill("Flu shots")
    await page.get_by_role("button", name="Create campaign").click()
    assert await page.locator("#c-key-error").is_visible()
    assert await axe_violations(page) == []

    await page.get_by_label("Key (a-z, 0-9, -)").fill("flu-console")
    await page.get_by_role("button", name="Create campaign").click()
    await page.wait_for_url(f"{console_url}/console/campaigns/flu-console")
    assert await page.locator("#campaign-status").inner_text() == "draft"
    await page.get_by_role("button", name="Launch").click()
    await page.wait_for_url(f"{console_url}/console/campaigns/flu-console")
    await page.locator("#run-status", has_text="completed").wait_for(timeout=60_000)
    totals = page.locator("table.results tbody tr").first
    cells = await totals.locator("td").all_inner_texts()
    assert cells[0] == "2"  # targeted
    assert (
        int(cells[2]) + int(cells[4]) + int(cells[5]) == 2
    )  # sent, skipped or suppressed: every one decided
    assert await axe_violations(page) == []


async def test_build_a_segment_after_a_refused_broken_one(browser: Browser, console_url: str) -> None:
    page = await sign_in(browser, console_url)
    await page.goto(f"{console_url}/console/segments")
    await page.get_by_role("button", name="New segment").click()
    editor = page.get_by_label("Segment (YAML)")
    text = await editor.input_value()
    assert await page.get_by_role("heading", name="Criteria you can use").is_visible()
    assert await axe_violations(page) == []

    await editor.fill(text.replace("age: {gte: 18}", "age: {over: 18}"))
    await page.get_by_role("button", name="Save as a new version").click()
    assert "Line 6" in await page.get_by_role("alert").inner_text()

    await editor.fill(text.replace("gte: 18", "gte: 60"))
    await page.get_by_role("button", name="Save as a new version").click()
    await page.wait_for_url(f"{console_url}/console/segments/new-segment")
    assert await page.locator("#segment-count").inner_text() == "2"  # both patients are over 60
