"""Analytics in the console: after a journey texted both patients, the overview shows the messages per
channel and per day (charts drawn, tables with the numbers) and the journey's dashboard its funnel, each
step's drop-off in words; the CSV link downloads the same numbers with small cells hidden. axe-core finds
nothing serious on either page."""

from __future__ import annotations

import asyncio

import httpx
from playwright.async_api import Browser
from temporalio.worker import Worker

from tests.conftest import AUTH_HEADERS
from tests.console.conftest import axe_violations, sign_in

JOURNEY = {
    "key": "analytics-check-in",
    "version": 1,
    "name": "Check in",
    "steps": [
        {"id": "hello", "send": {"channel": "sms", "body": "Hello {{ patient.given }}, how are you?"}},
        {"id": "listen", "wait_for": {"event": "sms.reply", "timeout": "P1D"}},
    ],
}


async def _two_enrollments_waiting(url: str) -> None:
    async with httpx.AsyncClient(base_url=url, headers=AUTH_HEADERS) as client:
        assert (await client.post("/v1/journeys", json=JOURNEY)).status_code == 201
        for patient in ("p-maria", "p-omar"):
            created = await client.post(
                "/v1/journeys/analytics-check-in/enrollments", json={"patient_id": patient}
            )
            assert created.status_code == 201, created.text
        wanted = [("hello", 2, 0), ("listen", 0, 2)]
        seen: list[tuple[str, int, int]] = []
        for _ in range(300):
            funnel = (await client.get("/v1/analytics/journeys/analytics-check-in/funnel")).json()
            seen = [(s["id"], s["passed"], s["waiting"]) for s in funnel["steps"]]
            if seen == wanted:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"the funnel stayed at {seen}")


async def test_the_overview_and_a_journey_s_dashboard_show_charts_tables_and_csv(
    browser: Browser, console_url: str, worker: Worker
) -> None:
    await _two_enrollments_waiting(console_url)
    page = await sign_in(browser, console_url)

    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Analytics").click()
    await page.wait_for_url(f"{console_url}/console/analytics")
    sms = await page.locator("#channels tbody tr").first.locator("th, td").all_inner_texts()
    # Omar has no phone: his text is recorded and blocked.
    assert sms[:4] == ["sms", "2", "1", "0"]
    assert sms[8] == "1"
    await page.locator("#chart-channels canvas").first.wait_for()
    await page.locator("#chart-daily canvas").first.wait_for()
    assert await axe_violations(page) == []
    download = await page.request.get(
        f"{console_url}/console/analytics/export.csv?table=messages&group_by=channel"
    )
    assert download.headers["content-type"].startswith("text/csv")
    assert (await download.text()).splitlines()[1].startswith("sms,<11,<11,0,")

    await page.get_by_role("link", name="Check in").click()
    await page.wait_for_url(f"{console_url}/console/analytics/journeys/analytics-check-in?days=30")
    assert await page.locator("#funnel-entered").inner_text() == "2"
    rows = page.locator("#funnel tbody tr")
    assert await rows.nth(0).locator("th, td").all_inner_texts() == [
        "hello", "2", "2", "0", "0", "0", "—", "≤ 0.0 h / ≤ 0.0 h", "low",
    ]  # fmt: skip
    assert (await rows.nth(1).locator("th, td").all_inner_texts())[:4] == ["listen", "2", "0", "2"]
    # Both still wait for a reply: nobody lost yet.
    assert await rows.nth(1).get_attribute("class") == "drop-low"
    await page.locator("#chart-funnel canvas").first.wait_for()
    assert await axe_violations(page) == []

    # The filters swap the funnel in place (htmx) and the CSV link follows them.
    await page.get_by_label("Channel of the step").select_option("sms")
    await page.wait_for_url("**channel=sms**")
    await page.locator("#funnel-filtered-entered").wait_for()
    filtered = page.locator("#funnel tbody tr")
    assert await filtered.count() == 1
    assert (await filtered.nth(0).locator("th, td").all_inner_texts())[:4] == ["hello", "2", "2", "0"]
    await page.locator("#chart-funnel canvas").first.wait_for()
    await page.get_by_label("Segment entered through").select_option(label="None (started otherwise)")
    await page.wait_for_url("**segment=_none**")
    await page.wait_for_function("document.querySelector('#funnel-csv').href.includes('segment=_none')")
    assert await page.locator("#funnel-filtered-entered").inner_text() == "2"
    csv = await page.request.get(f"{console_url}{await page.locator('#funnel-csv').get_attribute('href')}")
    assert [line.split(",")[:4] for line in (await csv.text()).splitlines()] == [
        ["step", "entered", "passed", "waiting"],
        ["hello", "<11", "<11", "0"],
    ]
    await page.get_by_label("Channel of the step").select_option("email")
    await page.wait_for_url("**channel=email**")
    await page.get_by_text("No enrollments in this window.").wait_for()
    assert await axe_violations(page) == []
    missing = await page.goto(f"{console_url}/console/analytics/journeys/nothing")
    assert missing is not None
    assert missing.status == 404
