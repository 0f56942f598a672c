"""Bursts on the pages the console and the patients use, as `test_faults.py` tries the triggers: the
stack runs as separate processes (PostgreSQL, the Temporal dev server, `aftercare api` with a pool of 5,
`aftercare worker`) and 30 requests arrive at once on the survey pages, a journey's dry run and the
preference centre's save with voice consent.

Every request gets a clear answer before the caller's timeout: the page, or a refusal (503 from
admission control, 429 from the patient pages' rate limit) with `Retry-After`; never a 500. What the
answered requests write is whole: one audit row per page served; a save's consent events, patient
attributes and audit row together or not at all, and saves at once applied one after the other (the
same form posted 30 times records its changes once); no connection is left idle inside a
transaction."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from urllib.parse import urlencode

import httpx
import pytest

from aftercare.patient_links.preferences import CONSENT_CHANNELS
from aftercare.patient_links.tokens import patient_links
from aftercare.settings import Settings
from models.journey import PURPOSES
from tests.conftest import ABDUL_PATIENT_ID, synthea_bundle
from tests.integration.parts import Answer, Stack, answer_of, concurrently, running_stack

CLIENT_TIMEOUT = 10.0
AT_ONCE = 30
SURVEYS = "post-discharge-surveys"
QUESTIONNAIRE = "https://aftercare.example/fhir/Questionnaire/post-discharge-48h"
TITLE = "How are you feeling since you left hospital?"
QUESTION = "Overall, how are you feeling compared with the day you went home?"
ALLOWED = [f"{channel}:{purpose}" for channel in CONSENT_CHANNELS for purpose in PURPOSES]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("page-bursts"), pool_size=5) as started:
        yield started


@pytest.fixture(scope="module")
async def client(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with stack.client() as api:
        imported = await api.post("/v1/fhir/import", json=synthea_bundle(), params={"triggers": "false"})
        installed = await api.post(f"/v1/library/{SURVEYS}/install")
        assert imported.status_code == 200, imported.text
        assert installed.status_code == 201, installed.text
        yield api


async def at_once(request: Callable[[], Awaitable[httpx.Response]], key: str) -> list[Answer]:
    """`AT_ONCE` requests in flight together, each given the caller's whole timeout."""
    return await concurrently(lambda: answer_of(request, key, CLIENT_TIMEOUT), AT_ONCE, AT_ONCE)


def assert_clear(answers: list[Answer], served: set[int], refused: set[int] = frozenset({503})) -> int:
    """Every request answered in time with a status it may get, every refusal saying when to retry;
    how many were served."""
    assert all(answer.status for answer in answers), "a request got no answer in time"
    statuses = Counter(answer.status for answer in answers)
    print(f"{answers[0].trigger_id}: {dict(statuses)}")  # shown with -s: what the burst got
    assert set(statuses) <= served | refused, statuses
    for answer in answers:
        if answer.status in refused:
            assert int(answer.retry_after or 0) > 0, answer
    assert sum(statuses[status] for status in served) > 0, statuses
    return sum(statuses[status] for status in served)


def audit_rows(stack: Stack, action: str, status_code: int) -> int:
    rows = stack.postgres.query(
        "SELECT count(*) FROM audit_events WHERE action = %s AND status_code = %s", action, status_code
    )
    return int(rows[0][0])


async def assert_audited(stack: Stack, action: str, served: int) -> None:
    """Exactly one audit row per page served (the trail writes it once the answer has gone)."""
    deadline = time.monotonic() + 10
    while audit_rows(stack, action, 200) < served and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert audit_rows(stack, action, 200) == served
    assert stack.idle_in_transaction(older_than_seconds=1) == 0


async def test_a_burst_on_the_survey_pages_gets_pages_or_prompt_refusals(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    listed = await at_once(lambda: client.get("/console/surveys", timeout=None), "surveys")
    results = await at_once(
        lambda: client.get("/console/surveys/results", params={"url": QUESTIONNAIRE}, timeout=None),
        "results",
    )

    assert_clear(listed, {200})
    served = assert_clear(results, {200})
    assert all(TITLE in answer.body for answer in listed if answer.status == 200)
    assert all(QUESTION in answer.body for answer in results if answer.status == 200)
    await assert_audited(stack, "read_results", served)


async def test_a_burst_of_journey_dry_runs_gets_paths_or_prompt_refusals(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    form = {"content-type": "application/x-www-form-urlencoded"}
    answers = await at_once(
        lambda: client.post(
            f"/console/journeys/{SURVEYS}/dry-run",
            content=urlencode({"patient_id": ABDUL_PATIENT_ID}),
            headers=form,
            timeout=None,
        ),
        "dry-run",
    )

    served = assert_clear(answers, {200})
    assert all("dry-run-path" in answer.body for answer in answers if answer.status == 200)
    await assert_audited(stack, "dry_run", served)
    journeys = stack.postgres.query("SELECT count(*) FROM enrollments")
    assert journeys == [(0,)]  # a dry run sends nothing and enrolls no one


async def test_a_burst_of_the_same_preference_save_with_voice_consent_records_it_once_and_whole(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    token, _ = patient_links(Settings(database_url=stack.postgres.url)).token(
        "preferences", ABDUL_PATIENT_ID, "care_coordination"
    )
    withdrawn = {"email:care_coordination", "voice:appointment_reminders", "sms:marketing"}
    allow = [value for value in ALLOWED if value not in withdrawn]
    fields = {
        "channel": "sms",
        "language": "en",
        "quiet_start": "21:00",
        "quiet_end": "08:00",
        "pause_days": "",
    }
    body = urlencode([("allow", value) for value in allow] + list(fields.items()))
    form = {"content-type": "application/x-www-form-urlencoded"}

    answers = await at_once(
        lambda: client.post(f"/p/{token}", content=body, headers=form, timeout=None), "preferences"
    )

    assert_clear(answers, {303}, refused={429, 503})
    consents = (await client.get(f"/v1/patients/{ABDUL_PATIENT_ID}/consents")).json()
    saved = Counter(
        (row["channel"], row["purpose"])
        for row in consents["history"]
        if row["source"] == "preference-centre"
    )
    audited = stack.postgres.query("SELECT count(*) FROM audit_events WHERE action = 'change_preferences'")
    # One save recorded all its changes and its audit row (before its redirect); the others, applied
    # after it under the patient's lock, found nothing left to change.
    assert set(saved.values()) == {1}, saved
    assert audited == [(1,)]
    current = {(row["channel"], row["purpose"]): row["status"] for row in consents["current"]}
    assert current[("voice", "appointment_reminders")] == "revoked"
    assert all(
        current[key] == ("revoked" if f"{key[0]}:{key[1]}" in withdrawn else "granted") for key in saved
    )
    assert consents["quiet_hours"] == "21:00-08:00"
    assert stack.idle_in_transaction(older_than_seconds=1) == 0
