"""Surveys end to end on the real Temporal dev server and PostgreSQL: a Questionnaire is stored and
versioned (bad ones answered with an OperationOutcome); a journey's `survey` step sends a signed link;
the patient answers on the page, validated on the server against the Questionnaire (types, required
items, enableWhen); the QuestionnaireResponse is stored once, `survey.completed` carries the answers
to a branch (`%event.data.answer('pain-score') >= 7`), or the survey expires as `survey.expired`."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from aftercare.settings import Settings
from api.app import create_app
from models.survey_tables import SurveyResponse
from tests.browser import chromium, offline_except
from tests.conftest import ABDUL_PATIENT_ID, AUTH_HEADERS, REPO, synthea_bundle
from tests.console.conftest import axe_violations
from tests.serving import serving

pytestmark = pytest.mark.usefixtures("worker")

QUESTIONNAIRES = REPO / "journeys" / "questionnaires"
CHECK_IN = json.loads((QUESTIONNAIRES / "post-discharge-48h.json").read_text())
CHECK_IN_URL = CHECK_IN["url"]
FORM = {"content-type": "application/x-www-form-urlencoded"}
FHIR = {"content-type": "application/fhir+json"}


def journey(expires: str = "P7D", key: str = "survey-check-in") -> dict[str, Any]:
    return {
        "key": key,
        "version": 1,
        "name": "48-hour check-in survey",
        "steps": [
            {
                "id": "check-in",
                "survey": {
                    "questionnaire": CHECK_IN_URL,
                    "expires": expires,
                    "channel": "sms",
                    "on_expired": "no-answer",
                },
            },
            {
                "id": "route",
                "branch": [
                    {"when": "%event.data.answer('pain-score') >= 7", "goto": "call"},
                    {"otherwise": "done"},
                ],
            },
            {
                "id": "call",
                "task": {
                    "queue": "care-coordinators",
                    "title": "Call {{ patient.name }}: pain",
                    "due": "P1D",
                },
                "goto": "done",
            },
            {"id": "no-answer", "task": {"queue": "care-coordinators", "title": "No answer to the check-in"}},
            {"id": "done", "end": {"outcome": "completed"}},
        ],
    }


async def eventually(check: Any, timeout: float = 30.0) -> Any:
    async with asyncio.timeout(timeout):
        while not (value := await check()):
            await asyncio.sleep(0.1)
        return value


async def enrolled(api: httpx.AsyncClient, definition: dict[str, Any]) -> str:
    assert (
        await api.post("/v1/fhir/import", json=synthea_bundle(), params={"triggers": "false"})
    ).status_code == 200
    assert (await api.post("/v1/questionnaires", json=CHECK_IN, headers=FHIR)).status_code in (200, 201)
    assert (await api.post("/v1/journeys", json=definition)).status_code == 201
    answer = await api.post(
        f"/v1/journeys/{definition['key']}/enrollments", json={"patient_id": ABDUL_PATIENT_ID}
    )
    assert answer.status_code == 201, answer.text
    enrollment_id: str = answer.json()["enrollment_id"]
    return enrollment_id


async def survey_link(api: httpx.AsyncClient, enrollment_id: str) -> str:
    async def sent() -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = (
            await api.get("/v1/messages", params={"enrollment_id": enrollment_id})
        ).json()["items"]
        return items

    [message] = await eventually(sent)
    match = re.search(r"http://localhost:8000(/s/\S+)", message["body"])
    assert match, message["body"]
    assert message["purpose"] == "surveys"
    return match.group(1)


async def finished(api: httpx.AsyncClient, enrollment_id: str) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        detail: dict[str, Any] = (await api.get(f"/v1/enrollments/{enrollment_id}")).json()
        return detail if detail["status"] != "running" else None

    result: dict[str, Any] = await eventually(done)
    return result


def answers(**values: str | list[str]) -> str:
    pairs = []
    for link_id, value in values.items():
        for one in value if isinstance(value, list) else [value]:
            pairs.append((f"q.{link_id.replace('_', '-')}", one))
    return urlencode(pairs)


async def test_questionnaires_are_validated_versioned_and_listed(api: httpx.AsyncClient) -> None:
    experience = json.loads((QUESTIONNAIRES / "patient-experience.json").read_text())
    unversioned = {**CHECK_IN, "url": "https://aftercare.example/q/unversioned"}
    del unversioned["version"]

    first = await api.post("/v1/questionnaires", json=CHECK_IN, headers=FHIR)
    same = await api.post("/v1/questionnaires", json=CHECK_IN, headers=FHIR)
    changed = await api.post("/v1/questionnaires", json={**CHECK_IN, "title": "Changed"}, headers=FHIR)
    numbered = [
        await api.post("/v1/questionnaires", json=body, headers=FHIR)
        for body in (unversioned, {**unversioned, "title": "Second"})
    ]
    unsupported = await api.post(
        "/v1/questionnaires",
        json={
            **CHECK_IN,
            "version": "9",
            "item": [{"linkId": "photo", "text": "A photo", "type": "attachment"}],
        },
        headers=FHIR,
    )
    invalid = await api.post("/v1/questionnaires", json={**CHECK_IN, "status": "sometimes"}, headers=FHIR)
    empty = await api.post("/v1/questionnaires", content=b"", headers=FHIR)
    assert (await api.post("/v1/questionnaires", json=experience, headers=FHIR)).status_code == 201
    listed = (await api.get("/v1/questionnaires")).json()["items"]
    read = await api.get("/v1/questionnaires/resource", params={"url": CHECK_IN_URL})

    assert (first.status_code, first.json()) == (
        201,
        {"url": CHECK_IN_URL, "version": "1", "status": "active", "created": True},
    )
    assert (same.status_code, same.json()["created"]) == (200, False)
    assert changed.status_code == 409
    assert changed.json()["resourceType"] == "OperationOutcome"
    assert [n.json()["version"] for n in numbered] == ["1", "2"]
    assert unsupported.status_code == 422
    assert "attachment" in unsupported.json()["issue"][0]["diagnostics"]
    assert unsupported.json()["issue"][0]["expression"] == ["Questionnaire.item[0].type"]
    assert invalid.status_code == 422
    assert invalid.json()["resourceType"] == "OperationOutcome"
    assert empty.status_code == 400
    assert empty.json()["resourceType"] == "OperationOutcome"
    assert sorted((q["url"], q["version"]) for q in listed) == sorted(
        [(CHECK_IN_URL, "1"), (experience["url"], "1"), (unversioned["url"], "2")]
    )
    assert read.json()["title"] == CHECK_IN["title"]


async def test_a_survey_journey_branches_on_the_answer_and_a_link_answers_once(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    enrollment_id = await enrolled(api, journey())
    path = await survey_link(api, enrollment_id)

    page = await api.get(path)
    incomplete = await api.post(
        path, content=answers(overall="2", pain_score="8", medicines="true"), headers=FORM
    )
    mistyped = await api.post(
        path, content=answers(overall="2", pain_score="a lot", medicines="true"), headers=FORM
    )
    complete = answers(
        overall="2",
        pain_score="8",
        pain_where="my left knee",
        medicines="true",
        medicines_problem="1",  # not enabled (medicines = true): dropped
        warning_signs=["0", "2"],
        anything_else="Please call after 3pm",
    )
    sent = await api.post(path, content=complete, headers=FORM)
    thanks = await api.get(sent.headers["location"])
    again = await api.post(path, content=complete, headers=FORM)
    reopened = await api.get(path)
    done = await finished(api, enrollment_id)
    tasks = (await api.get("/v1/tasks", params={"queue": "care-coordinators"})).json()["items"]
    async with sessions() as session:
        [stored] = (await session.scalars(select(SurveyResponse))).all()
    results = (await api.get("/v1/questionnaires/results", params={"url": CHECK_IN_URL})).json()
    csv = await api.get("/v1/questionnaires/results", params={"url": CHECK_IN_URL, "format": "csv"})

    assert page.status_code == 200
    assert "How bad is your pain right now" in page.text
    assert "Answer this only if it applies after your answer to: How bad is your pain" in page.text
    assert incomplete.status_code == 422
    assert "This question needs an answer." in incomplete.text
    assert mistyped.status_code == 422
    assert "Give a whole number." in mistyped.text
    assert 'value="a lot"' in mistyped.text
    assert sent.status_code == 303
    assert "Your answers were sent to your care team." in thanks.text
    assert again.status_code == 409
    assert "This link was already used" in again.text
    assert reopened.status_code == 409
    assert done["status"] == "completed"
    assert [item["step"] for item in done["history"]] == ["check-in", "check-in", "route", "call", "done"]
    assert [task["title"] for task in tasks] == ["Call Abdul Koepp: pain"]
    assert stored.answers == {
        "overall": ["worse"],
        "pain-score": [8],
        "pain-where": ["my left knee"],
        "medicines": [True],
        "warning-signs": ["fever", "wound"],
        "anything-else": ["Please call after 3pm"],
    }
    assert stored.resource["resourceType"] == "QuestionnaireResponse"
    assert stored.resource["questionnaire"] == f"{CHECK_IN_URL}|1"
    assert stored.resource["subject"] == {"reference": f"Patient/{ABDUL_PATIENT_ID}"}
    assert (results["sent"], results["completed"], results["response_rate"]) == (1, 1, 1.0)
    by_question = {row["link_id"]: row for row in results["questions"]}
    assert by_question["pain-score"]["answers"] == {"8": 1}
    assert "answers" not in by_question["anything-else"]  # free text: counted, never shown
    assert csv.headers["content-type"].startswith("text/csv")
    assert "pain-score" in csv.text
    assert "Please call" not in csv.text
    assert "knee" not in csv.text


async def test_an_unanswered_survey_expires_and_the_journey_takes_the_expiry_path(
    api: httpx.AsyncClient,
) -> None:
    enrollment_id = await enrolled(api, journey(expires="PT3S", key="survey-expiring"))
    path = await survey_link(api, enrollment_id)

    done = await finished(api, enrollment_id)
    closed = await api.get(path)
    late = await api.post(path, content=answers(overall="0", pain_score="1", medicines="true"), headers=FORM)
    results = (await api.get("/v1/questionnaires/results", params={"url": CHECK_IN_URL})).json()

    assert done["status"] == "completed"
    assert [item["step"] for item in done["history"]] == ["check-in", "check-in", "no-answer", "done"]
    assert closed.status_code == late.status_code == 410
    assert "This survey is closed" in closed.text
    assert (results["sent"], results["expired"], results["completed"], results["response_rate"]) == (
        1,
        1,
        0,
        0.0,
    )


async def test_a_retired_questionnaire_fails_the_step_with_a_clear_reason(api: httpx.AsyncClient) -> None:
    definition = journey(key="survey-retired")
    definition["steps"][0]["survey"]["questionnaire"] = "https://aftercare.example/q/retired"
    await api.post(
        "/v1/questionnaires",
        json={**CHECK_IN, "url": "https://aftercare.example/q/retired", "status": "retired"},
        headers=FHIR,
    )
    enrollment_id = await enrolled(api, definition)

    done = await finished(api, enrollment_id)

    assert done["status"] == "failed"
    assert "is retired" in json.dumps(done["history"])


@pytest.fixture
async def site(
    api_settings: Settings, dev_server: WorkflowEnvironment, empty_database: AsyncEngine
) -> AsyncIterator[str]:
    async with serving(create_app(api_settings, temporal=dev_server.client)) as url:
        yield url


async def test_in_a_browser_the_patient_fixes_a_missing_answer_and_sends_the_survey(site: str) -> None:
    async with httpx.AsyncClient(base_url=site, headers=AUTH_HEADERS) as api:
        enrollment_id = await enrolled(api, journey(key="survey-in-browser"))
        path = await survey_link(api, enrollment_id)
        async with chromium() as browser:
            page = await browser.new_page(bypass_csp=True)  # axe is injected as an inline script
            refused = await offline_except(page, site)
            await page.set_viewport_size({"width": 390, "height": 844})  # a phone
            await page.goto(f"{site}{path}")
            assert await page.title() == CHECK_IN["title"]
            assert await axe_violations(page) == []
            await page.get_by_label("Worse").check()
            await page.get_by_label("How bad is your pain right now", exact=False).fill("9")
            await (
                page.get_by_role(
                    "group", name="Have you been able to get and take all the medicines", exact=False
                )
                .get_by_label("No")
                .check()
            )
            await page.get_by_role("button", name="Send my answers").click()
            assert await page.get_by_role("alert").inner_text() == "Please correct the answers marked below."
            assert await page.locator("#error-q-pain-where").inner_text() == "This question needs an answer."
            assert (
                await page.locator("#error-q-medicines-problem").inner_text()
                == "This question needs an answer."
            )
            assert await page.get_by_label("How bad is your pain right now", exact=False).input_value() == "9"
            assert await axe_violations(page) == []
            await page.get_by_label("Where is the pain?", exact=False).fill("chest")
            await page.get_by_label("Side effects").check()
            await page.get_by_role("button", name="Send my answers").click()
            await page.wait_for_url(f"{site}{path}?done=1")
            assert await page.get_by_role("heading").inner_text() == "Thank you"
        assert refused == []
        done = await finished(api, enrollment_id)
    assert [item["step"] for item in done["history"]][-2:] == ["call", "done"]


async def test_survey_results_count_only_the_callers_facilities(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    from datetime import UTC, datetime, timedelta

    from models.survey_tables import Survey
    from tests.api.test_facilities import _add_facilities, _keys, bundle, patient

    await _add_facilities(api)
    north = patient("srv-north", "Norberta", "+12125550111", "Organization/north")
    south = patient("srv-south", "Southwick", "+13105550122", "Organization/south")
    assert (
        await api.post("/v1/fhir/import", params={"triggers": "false"}, json=bundle(north, south))
    ).status_code == 200
    assert (await api.post("/v1/questionnaires", json=CHECK_IN, headers=FHIR)).status_code == 201
    async with sessions.begin() as session:
        for patient_id, status in (("srv-north", "completed"), ("srv-south", "expired")):
            session.add(
                Survey(
                    id=f"survey-{patient_id}",
                    patient_id=patient_id,
                    enrollment_id="e",
                    journey_key="j",
                    step_id="s",
                    questionnaire_url=CHECK_IN_URL,
                    questionnaire_version="1",
                    status=status,
                    expires_at=datetime.now(UTC) + timedelta(days=1),
                )
            )
    north_key = (await _keys(api, "north-hospital"))["healthcare"]

    everyone = (await api.get("/v1/questionnaires/results", params={"url": CHECK_IN_URL})).json()
    northern = await api.get(
        "/v1/questionnaires/results", params={"url": CHECK_IN_URL}, headers={"X-API-Key": north_key}
    )

    assert (everyone["sent"], everyone["completed"], everyone["expired"]) == (2, 1, 1)
    assert (northern.json()["sent"], northern.json()["completed"], northern.json()["expired"]) == (1, 1, 0)


async def test_a_questionnaire_is_imported_from_a_fhir_source(api: httpx.AsyncClient) -> None:
    from tests.fhir_server import running_fhir_server

    async with running_fhir_server() as ehr:
        ehr.store.put(json.loads((QUESTIONNAIRES / "patient-experience.json").read_text()))
        source = {
            "key": "ehr",
            "base_url": ehr.base_url,
            "auth": {"kind": "none"},
            "watched_types": ["Patient"],
        }
        assert (await api.post("/v1/fhir/sources", json=source)).status_code in (200, 201)

        imported = await api.post(
            "/v1/questionnaires/import", json={"id": "patient-experience", "source": "ehr"}
        )
        again = await api.post(
            "/v1/questionnaires/import", json={"id": "patient-experience", "source": "ehr"}
        )
        missing = await api.post("/v1/questionnaires/import", json={"id": "nothing-here", "source": "ehr"})
        unknown_source = await api.post("/v1/questionnaires/import", json={"id": "x", "source": "nowhere"})

    assert imported.status_code == 201, imported.text
    assert imported.json()["url"] == "https://aftercare.example/fhir/Questionnaire/patient-experience"
    assert again.status_code == 200
    assert missing.status_code == 404
    assert missing.json()["resourceType"] == "OperationOutcome"
    assert unknown_source.status_code == 409
