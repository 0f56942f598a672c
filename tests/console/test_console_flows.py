"""The console in a real browser against the real app: sign in with an API key, find a patient, change a
consent (and see a bad one refused by the field), complete a care task, sign out; a role without rights
finds the page absent from the navigation and its URL refused; axe-core finds no serious or critical
violation on any page."""

from __future__ import annotations

import httpx
from playwright.async_api import Browser

from tests.console.conftest import axe_violations, role_key, sign_in


async def test_without_a_session_every_page_goes_to_sign_in_and_shows_no_data(console_url: str) -> None:
    async with httpx.AsyncClient(base_url=console_url) as client:
        for path in ("/console", "/console/patients", "/console/patients/p-maria", "/console/tasks"):
            answer = await client.get(path)
            assert answer.status_code == 303, path
            assert answer.headers["location"] == "/console/login"
            assert "Maria" not in answer.text


async def test_a_wrong_key_is_refused_next_to_the_field(browser: Browser, console_url: str) -> None:
    page = await browser.new_page()
    await page.goto(f"{console_url}/console/login")
    await page.get_by_label("API key").fill("ak_wrong_wrongwrongwrong")
    await page.get_by_role("button", name="Sign in").click()
    assert await page.locator("#api_key-error").inner_text() == "This key is not valid."
    assert page.url == f"{console_url}/console/login"


async def test_sign_in_find_a_patient_and_change_a_consent(browser: Browser, console_url: str) -> None:
    page = await sign_in(browser, console_url)
    cookie = next(c for c in await page.context.cookies() if c["name"] == "aftercare_console")
    assert cookie["httpOnly"]
    assert cookie["sameSite"] == "Lax"
    assert await axe_violations(page) == []

    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Patients").click()
    await page.get_by_label("Name, MRN or phone").fill("MRN-4242")
    await page.get_by_role("button", name="Search").click()
    assert "MRN-4242" not in page.url
    await page.get_by_role("link", name="Maria Console").click()
    await page.wait_for_url(f"{console_url}/console/patients/p-maria")
    assert await page.get_by_role("heading", name="Maria Console").is_visible()
    assert await axe_violations(page) == []

    await page.get_by_label("Channel", exact=True).select_option("sms")
    await page.get_by_label("Purpose", exact=True).select_option("marketing")
    await page.get_by_label("Status", exact=True).select_option("revoked")
    await page.get_by_label("Note").fill("asked on the phone")
    await page.get_by_role("button", name="Save consent").click()
    await page.wait_for_url(f"{console_url}/console/patients/p-maria#consents")
    row = page.locator("#consents tbody tr", has_text="marketing")
    assert "revoked" in await row.inner_text()
    assert "console" in await row.inner_text()

    for path in ("/console/patients",):
        await page.goto(f"{console_url}{path}")
        assert await axe_violations(page) == [], path


async def test_a_forged_consent_form_is_refused_and_nothing_is_saved(
    browser: Browser, console_url: str
) -> None:
    page = await sign_in(browser, console_url)
    await page.goto(f"{console_url}/console/patients/p-maria")
    answer = await page.request.post(
        f"{console_url}/console/patients/p-maria/consents",
        form={"channel": "sms", "purpose": "*", "status": "revoked", "csrf": "forged"},
    )
    assert answer.status == 403
    invalid = await page.evaluate(
        """async () => {
            const form = new URLSearchParams(new FormData(document.querySelector("form[action$='/consents']")));
            form.set("channel", "fax");
            const answer = await fetch(location.pathname + "/consents", {method: "POST", body: form});
            return [answer.status, await answer.text()];
        }"""
    )
    assert invalid[0] == 422
    assert 'id="consent-channel-error"' in invalid[1]
    await page.reload()
    assert await page.locator("#consents tbody tr").count() == 0


async def test_complete_a_care_task_with_an_outcome(
    browser: Browser, console_url: str, care_task: str
) -> None:
    page = await sign_in(browser, console_url)
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Care tasks").click()
    task = page.locator(f"#task-{care_task}")
    assert "Call Maria about her lab result" in await task.inner_text()
    assert await axe_violations(page) == []

    await task.get_by_label("Outcome").select_option("reached")
    await task.get_by_label("Note").fill("booked a visit")
    await task.get_by_role("button", name="Complete").click()
    await page.wait_for_url(f"{console_url}/console/tasks?completed=1")
    assert await page.locator(f"#task-{care_task}").count() == 0

    await page.get_by_label("Status").select_option("completed")
    await page.get_by_role("button", name="Filter").click()
    assert "reached" in await page.locator(f"#task-{care_task}").inner_text()


async def test_a_role_without_rights_finds_the_page_absent_and_its_url_refused(
    browser: Browser, console_url: str
) -> None:
    page = await sign_in(browser, console_url, await role_key(console_url, "marketing"))
    navigation = page.get_by_role("navigation", name="Main")
    assert await navigation.get_by_role("link", name="Home").is_visible()
    assert await navigation.get_by_role("link", name="Patients").count() == 0
    assert await navigation.get_by_role("link", name="Care tasks").count() == 0
    assert await axe_violations(page) == []

    answer = await page.goto(f"{console_url}/console/patients/p-maria")
    assert answer is not None
    assert answer.status == 403
    assert "Maria" not in await page.content()
    assert await axe_violations(page) == []


async def test_sign_out_ends_the_session(browser: Browser, console_url: str) -> None:
    page = await sign_in(browser, console_url)
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url(f"{console_url}/console/login")
    assert await axe_violations(page) == []
    await page.goto(f"{console_url}/console/tasks")
    assert page.url == f"{console_url}/console/login"
