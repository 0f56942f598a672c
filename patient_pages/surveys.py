"""The survey page: a FHIR Questionnaire as a form for a phone, server-rendered (no JavaScript
needed), validated on the server against the Questionnaire (types, required items, `enableWhen`);
the answers become a QuestionnaireResponse and the `survey.completed` event of the patient's
enrollments. A link can be answered once: a second submission, or an expired survey, gets a clear
page and writes nothing."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from aftercare.enrollment.event_triggers import deliver_event
from aftercare.patient_links.catalogue import translate
from aftercare.patient_links.tokens import PatientLinkClaims
from aftercare.surveys.form import Parsed, Question, parse_answers, questions
from aftercare.surveys.responses import AlreadyAnswered, record_response
from api.deps import ServicesDep
from api.services import Services
from models.survey_tables import QuestionnaireVersion, Survey
from patient_pages.pages import form, patient_language, read_link, refused, render

router = APIRouter(prefix="/s", tags=["patient pages"], include_in_schema=False)


async def _open(
    request: Request, services: Services, token: str
) -> tuple[PatientLinkClaims, Survey, dict[str, Any], str] | Response:
    """The link's survey, its Questionnaire and the patient's language; or the page saying why not."""
    claims = read_link(request, services, "survey", token)
    if isinstance(claims, HTMLResponse):
        return claims
    async with services.sessions() as session:
        survey = await session.get(Survey, claims.ref) if claims.ref else None
        if survey is None or survey.patient_id != claims.patient_id:
            return refused("gone", "en")
        stored = await session.get(
            QuestionnaireVersion, (survey.questionnaire_url, survey.questionnaire_version)
        )
    language = await patient_language(services, claims.patient_id) or "en"
    if stored is None:
        return refused("gone", language)
    return claims, survey, stored.resource, language


def _html_id(question: Question) -> str:
    """An HTML id for a question (linkIds may hold any character)."""
    return "q-" + re.sub(r"[^A-Za-z0-9_-]", "-", question.link_id)


def _page(
    token: str, questionnaire: dict[str, Any], language: str, parsed: Parsed | None, status: int
) -> Response:
    items = questions(questionnaire)
    texts = {q.link_id: q.text for q in items}
    return render(
        "survey.html",
        language,
        status,
        title=questionnaire.get("title") or translate(language, "survey.subject"),
        description=questionnaire.get("description"),
        action=f"/s/{token}",
        questions=items,
        texts=texts,
        typed=parsed.typed if parsed else {},
        loop_id=_html_id,
        errors=parsed.errors if parsed else {},
    )


@router.get("/{token}", response_class=HTMLResponse)
async def survey_page(token: str, request: Request, services: ServicesDep, done: int = 0) -> Response:
    """The survey's form (or the thanks, once answered)."""
    opened = await _open(request, services, token)
    if isinstance(opened, Response):
        return opened
    _, survey, questionnaire, language = opened
    if survey.status == "completed":
        if done:
            title = translate(language, "survey.thanks.title")
            return render(
                "refused.html", language, title=title, message=translate(language, "survey.thanks.text")
            )
        return refused("used", language)
    if survey.status == "expired" or survey.expires_at <= datetime.now(UTC):
        return refused("closed", language)
    return _page(token, questionnaire, language, None, 200)


@router.post("/{token}", response_class=HTMLResponse)
async def submit(token: str, request: Request, services: ServicesDep) -> Response:
    """Check the answers; store them once and tell the journey (`survey.completed`)."""
    opened = await _open(request, services, token)
    if isinstance(opened, Response):
        return opened
    claims, survey, questionnaire, language = opened
    if survey.status == "completed":
        return refused("used", language)
    if survey.status == "expired" or survey.expires_at <= datetime.now(UTC):
        return refused("closed", language)
    parsed = parse_answers(questionnaire, await form(request, limit=64_000))
    if parsed.errors:
        return _page(token, questionnaire, language, parsed, 422)
    try:
        async with services.sessions.begin() as session:
            recorded = await record_response(session, survey, questionnaire, parsed)
    except AlreadyAnswered:
        return refused("used", language)
    await deliver_event(
        services.sessions,
        services.temporal,
        services.starter,
        event_type="survey.completed",
        patient_id=claims.patient_id,
        data=recorded.event_data,
        event_id=f"survey.completed:{survey.id}",
    )
    return RedirectResponse(f"/s/{token}?done=1", status_code=303)
