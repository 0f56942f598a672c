"""Survey results in the console, in a real browser: each Questionnaire's surveys sent, answered and
expired, and per question how often each answer was given; free-text answers counted, never shown; the
same numbers as the API's CSV; a role without patient access has neither page nor link."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
from playwright.async_api import Browser
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aftercare.surveys.form import parse_answers
from aftercare.surveys.questionnaires import save_questionnaire
from aftercare.surveys.responses import record_response
from models.survey_tables import Survey
from tests.conftest import AUTH_HEADERS, REPO
from tests.console.conftest import axe_violations, role_key, sign_in

CHECK_IN = json.loads((REPO / "journeys" / "questionnaires" / "post-discharge-48h.json").read_text())


async def _surveys(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Three surveys of the check-in: Maria and Omar answered (pain 8 and 3), a third expired."""
    async with sessions.begin() as session:
        await save_questionnaire(session, CHECK_IN)
        for number, patient, status in (
            (1, "p-maria", "sent"),
            (2, "p-omar", "sent"),
            (3, "p-omar", "expired"),
        ):
            session.add(
                Survey(
                    id=f"survey-{number}",
                    patient_id=patient,
                    enrollment_id=f"enrollment-{number}",
                    journey_key="post-discharge-surveys",
                    step_id="check-in",
                    questionnaire_url=CHECK_IN["url"],
                    questionnaire_version="1",
                    status=status,
                    expires_at=datetime.now(UTC) + timedelta(days=2),
                )
            )
    for survey_id, pain in (("survey-1", "8"), ("survey-2", "3")):
        async with sessions.begin() as session:
            survey = await session.get(Survey, survey_id)
            assert survey is not None
            fields = {
                "q.overall": ["1"],
                "q.pain-score": [pain],
                "q.pain-where": ["my left knee"],
                "q.medicines": ["true"],
            }
            parsed = parse_answers(CHECK_IN, fields)
            assert parsed.errors == {}
            await record_response(session, survey, CHECK_IN, parsed)


async def test_the_results_show_each_questions_answers_and_never_free_text(
    browser: Browser, console_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await _surveys(sessions)
    page = await sign_in(browser, console_url)
    await page.get_by_role("link", name="Surveys").click()
    await page.wait_for_load_state()
    row = " ".join((await page.locator("#surveys tbody tr").first.inner_text()).split())
    assert row.endswith("1 3 2 1 67 %")
    assert await axe_violations(page) == []

    await page.locator("#surveys tbody a").first.click()
    await page.wait_for_load_state()
    totals = await page.locator("#survey-totals").inner_text()
    assert totals == "3 sent, 2 answered, 1 expired; response rate 67 %."
    text = await page.locator("main").inner_text()
    assert "knee" not in text
    assert "1 free-text answer (counted, not shown)." in text  # where the pain is: asked above pain 3
    pain = page.locator("section.survey-question", has_text="How bad is your pain")
    rows = [" ".join(line.split()) for line in await pain.locator("tbody tr").all_inner_texts()]
    assert rows == ["3 1 50 %", "8 1 50 %"]
    assert await axe_violations(page) == []

    async with httpx.AsyncClient(base_url=console_url, headers=AUTH_HEADERS) as client:
        api_csv = await client.get(
            "/v1/questionnaires/results", params={"url": CHECK_IN["url"], "format": "csv"}
        )
    download = await page.request.get(f"{console_url}/console/surveys/results.csv?url={CHECK_IN['url']}")
    assert download.status == 200
    assert await download.text() == api_csv.text
    assert "knee" not in api_csv.text


async def test_a_role_without_patient_access_sees_no_survey_results(
    browser: Browser, console_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await _surveys(sessions)
    page = await sign_in(browser, console_url, await role_key(console_url, "marketing"))
    assert await page.get_by_role("link", name="Surveys").count() == 0
    answer = await page.request.get(f"{console_url}/console/surveys/results?url={CHECK_IN['url']}")
    assert answer.status == 403
