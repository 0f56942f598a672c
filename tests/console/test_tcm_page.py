"""The TCM worklist page in a real browser: a discharge of an hour ago is listed with its contact
deadline, time left, risk band and attempts, and its patient's page shows the score; a role without `clinical:read` does not see the page in
the navigation and is refused it; axe-core finds no serious or critical violation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from playwright.async_api import Browser

from tests.conftest import AUTH_HEADERS
from tests.console.conftest import axe_violations, role_key, sign_in


async def discharge(url: str, patient_id: str, identifier: str, hours_ago: float, days: int) -> None:
    end = datetime.now(UTC) - timedelta(hours=hours_ago)
    stay = {
        "resourceType": "Encounter",
        "id": identifier,
        "status": "finished",
        "class": {"code": "IMP"},
        "subject": {"reference": f"Patient/{patient_id}"},
        "period": {"start": (end - timedelta(days=days)).isoformat(), "end": end.isoformat()},
    }
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": stay}]}
    async with httpx.AsyncClient(base_url=url, headers=AUTH_HEADERS) as client:
        answer = await client.post("/v1/fhir/import", json=bundle, params={"triggers": "false"})
        assert answer.status_code == 200, answer.text


async def test_the_worklist_lists_episodes_by_their_contact_deadline(
    browser: Browser, console_url: str
) -> None:
    await discharge(console_url, "p-omar", "omar-stay", hours_ago=1, days=14)  # LACE 7: moderate
    # five days earlier: a nearer contact deadline whatever the weekday (any five days hold a business day)
    await discharge(console_url, "p-maria", "maria-stay", hours_ago=120, days=2)
    page = await sign_in(browser, console_url)
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Transitional care").click()
    assert page.url == f"{console_url}/console/tcm"
    rows = page.locator("table.tcm tbody tr")
    assert await rows.count() == 2
    first, second = await rows.nth(0).inner_text(), await rows.nth(1).inner_text()
    assert "p-maria" in first
    assert "p-omar" in second
    assert " left" in second or "overdue by" in second
    assert "moderate" in second
    assert await axe_violations(page) == []

    # The patient page shows the score of each discharge, component by component.
    await rows.nth(1).get_by_role("link", name="p-omar").click()
    risk = page.get_by_role("region", name="Readmission risk")
    assert "LACE" in await risk.inner_text()
    assert "L 7 · A 0 · C 0 · E 0" in await risk.inner_text()
    assert await axe_violations(page) == []


async def test_a_role_without_clinical_access_is_refused_the_worklist(
    browser: Browser, console_url: str
) -> None:
    key = await role_key(console_url, "marketing")
    page = await sign_in(browser, console_url, key)
    navigation = page.get_by_role("navigation", name="Main")
    assert await navigation.get_by_role("link", name="Transitional care").count() == 0
    answer = await page.goto(f"{console_url}/console/tcm")
    assert answer is not None
    assert answer.status == 403
