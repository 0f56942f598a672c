"""FHIR Questionnaires for surveys: store (versioned), list, read, and their survey results. Errors
answer as a FHIR `OperationOutcome`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import JSONResponse

from aftercare.fhir_client.errors import FhirClientError, FhirNotFound
from aftercare.fhir_sync.sources import SourceMissingError, open_client
from aftercare.surveys.questionnaires import (
    QuestionnaireError,
    list_questionnaires,
    save_questionnaire,
    versions_of,
)
from aftercare.surveys.results import results_csv, survey_results
from api.deps import ServicesDep, SessionDep
from api.errors import FHIR_JSON, FhirError, issue
from api.fhir_bodies import read_fhir_body
from api.services import Services
from models.survey_tables import QuestionnaireVersion
from models.surveys import (
    QuestionnaireImport,
    QuestionnaireList,
    QuestionnaireSaved,
    QuestionnaireSummary,
    SurveyResults,
)

router = APIRouter(prefix="/v1/questionnaires", tags=["questionnaires"])
Url = Annotated[str, Query(min_length=1, max_length=500, description="the Questionnaire's canonical url")]


def _outcome(error: QuestionnaireError) -> FhirError:
    code = {404: "not-found", 409: "conflict"}.get(error.status, "invalid")
    return FhirError(error.status, [issue(code, message, path or None) for path, message in error.problems])


def _summary(row: QuestionnaireVersion) -> QuestionnaireSummary:
    items = len(row.resource.get("item") or [])
    return QuestionnaireSummary(
        url=row.url,
        version=row.version,
        status=row.status,
        title=row.title,
        items=items,
        created_at=row.created_at,
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=QuestionnaireSaved)
async def post_questionnaire(
    request: Request, response: Response, services: ServicesDep
) -> QuestionnaireSaved:
    """Store a FHIR R4 Questionnaire version (validated); the same content again answers 200."""
    body = await read_fhir_body(request)
    if len(body.entries) != 1:
        raise FhirError(400, [issue("structure", "send one Questionnaire resource")])
    saved = await _store(services, body.entries[0].resource)
    if not saved.created:
        response.status_code = status.HTTP_200_OK
    return saved


async def _store(services: Services, resource: Any) -> QuestionnaireSaved:
    try:
        async with services.sessions.begin() as session:
            saved = await save_questionnaire(session, resource)
    except QuestionnaireError as error:
        raise _outcome(error) from error
    row = saved.row
    return QuestionnaireSaved(url=row.url, version=row.version, status=row.status, created=saved.created)


@router.post("/import", status_code=status.HTTP_201_CREATED, response_model=QuestionnaireSaved)
async def import_questionnaire(
    body: QuestionnaireImport, response: Response, services: ServicesDep
) -> QuestionnaireSaved:
    """Read a Questionnaire from a FHIR source and store it (validated and versioned as a POST is)."""
    try:
        async with services.sessions() as session:
            client = await open_client(session, services.settings, body.source)
    except SourceMissingError as error:
        raise FhirError(409, [issue("not-supported", str(error))]) from error
    try:
        async with client:
            resource = await client.read("Questionnaire", body.id)
    except FhirNotFound as error:
        raise FhirError(
            404, [issue("not-found", f"the FHIR source has no Questionnaire/{body.id}")]
        ) from error
    except FhirClientError as error:
        raise FhirError(502, [issue("transient", f"the FHIR source could not be read: {error}")]) from error
    saved = await _store(services, resource)
    if not saved.created:
        response.status_code = status.HTTP_200_OK
    return saved


@router.get("", response_model=QuestionnaireList)
async def get_questionnaires(session: SessionDep, all_versions: bool = False) -> QuestionnaireList:
    """Stored Questionnaires: the newest version of each (every version with `all_versions=true`)."""
    rows = await list_questionnaires(session, all_versions=all_versions)
    return QuestionnaireList(items=[_summary(row) for row in rows])


@router.get("/resource", response_class=JSONResponse)
async def get_questionnaire(session: SessionDep, url: Url, version: str | None = None) -> JSONResponse:
    """The Questionnaire resource of `url` (its newest version, or `version`)."""
    versions = await versions_of(session, url)
    row = next((r for r in versions if r.version == version), None) if version else next(iter(versions), None)
    if row is None:
        raise _outcome(QuestionnaireError([("url", f"no Questionnaire {url}")], 404))
    return JSONResponse(row.resource, media_type=FHIR_JSON)


@router.get("/results", response_model=SurveyResults)
async def get_results(session: SessionDep, url: Url, format: str = "json") -> Response | SurveyResults:
    """Response rate and answer distributions of the Questionnaire's surveys (`format=csv` for CSV)."""
    try:
        results = await survey_results(session, url)
    except QuestionnaireError as error:
        raise _outcome(error) from error
    if format == "csv":
        return Response(
            results_csv(results),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="survey-results.csv"'},
        )
    return results
