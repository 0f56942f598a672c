"""Survey results in the console: every Questionnaire with how many surveys went out and how many were
answered, and per Questionnaire each question's answers counted (free-text answers are counted, never
shown), with the API's CSV. The counts are of patients' answers, so the pages need `patients:read`,
as `GET /v1/questionnaires/results` does."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from aftercare.surveys.questionnaires import QuestionnaireError, list_questionnaires
from aftercare.surveys.results import results_csv, survey_results
from api.deps import get_services
from console.auth import ConsoleUser
from console.rendering import render
from models.surveys import SurveyResults

router = APIRouter(prefix="/console/surveys", include_in_schema=False)

Url = Annotated[str, Query(min_length=1, max_length=500, description="the Questionnaire's canonical url")]


@dataclass(frozen=True)
class QuestionnaireRow:
    """A Questionnaire's newest version and its surveys' totals."""

    url: str
    title: str | None
    version: str
    results: SurveyResults


@router.get("", response_class=HTMLResponse)
async def surveys(request: Request, user: ConsoleUser) -> HTMLResponse:
    """Every Questionnaire with its surveys sent, answered, expired and the response rate."""
    async with get_services(request).sessions() as session:
        rows = [
            QuestionnaireRow(row.url, row.title, row.version, await survey_results(session, row.url))
            for row in await list_questionnaires(session)
        ]
    return render(request, "surveys.html", {"rows": rows})


@router.get("/results", response_class=HTMLResponse)
async def results(request: Request, user: ConsoleUser, url: Url) -> HTMLResponse:
    """One Questionnaire's results: each question's answers and how often each was given."""
    async with get_services(request).sessions() as session:
        try:
            found = await survey_results(session, url)
        except QuestionnaireError:
            return render(request, "not_found.html", {"what": "questionnaire"}, status_code=404)
    return render(request, "survey_results.html", {"results": found})


@router.get("/results.csv")
async def results_export(request: Request, user: ConsoleUser, url: Url) -> Response:
    """The results as the API's CSV."""
    async with get_services(request).sessions() as session:
        try:
            found = await survey_results(session, url)
        except QuestionnaireError:
            return Response("no such questionnaire\n", status_code=404, media_type="text/plain")
    return Response(
        results_csv(found),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="survey-results.csv"'},
    )
