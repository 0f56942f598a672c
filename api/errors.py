"""Error answers: FastAPI's `{"detail": ...}` everywhere, a FHIR `OperationOutcome` under `/v1/fhir/`."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from fastapi import FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.service import RPCError

from aftercare.availability import TemporalUnavailableError, explanation, unavailable_part
from aftercare.definitions import DefinitionInvalidError
from aftercare.metrics import UNAVAILABLE_ANSWERS

log = logging.getLogger(__name__)

# Seconds a caller is asked to wait when a part is down: Temporal and PostgreSQL restart in seconds.
RETRY_AFTER_SECONDS = 2

FHIR_PREFIX = "/v1/fhir"
FHIR_JSON = "application/fhir+json"


class FhirError(Exception):
    """An error on a FHIR endpoint, answered as an `OperationOutcome`."""

    def __init__(self, status_code: int, issues: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(str(issue.get("diagnostics")) for issue in issues))
        self.status_code = status_code
        self.issues = issues


def issue(
    code: str, diagnostics: str, expression: str | None = None, severity: str = "error"
) -> dict[str, Any]:
    """One `OperationOutcome.issue`."""
    item: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if expression:
        item["expression"] = [expression]
    return item


def operation_outcome(
    status_code: int, issues: list[dict[str, Any]], headers: dict[str, str] | None = None
) -> JSONResponse:
    """An `OperationOutcome` answer."""
    return JSONResponse(
        {"resourceType": "OperationOutcome", "issue": issues},
        status_code=status_code,
        media_type=FHIR_JSON,
        headers=headers,
    )


def _is_fhir(request: Request) -> bool:
    return request.url.path.startswith(FHIR_PREFIX)


async def _fhir_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, FhirError)
    return operation_outcome(error.status_code, error.issues)


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    if not _is_fhir(request):
        return await request_validation_exception_handler(request, error)
    issues = [
        issue("invalid", item["msg"], ".".join(str(part) for part in item["loc"])) for item in error.errors()
    ]
    return operation_outcome(422, issues)


async def _http_error(request: Request, error: Exception) -> Any:
    assert isinstance(error, StarletteHTTPException)
    if not _is_fhir(request):
        return await http_exception_handler(request, error)
    code = {
        401: "login",
        403: "forbidden",
        404: "not-found",
        405: "not-supported",
        413: "too-costly",
        415: "not-supported",
        429: "throttled",
    }.get(error.status_code, "processing")
    return operation_outcome(
        error.status_code, [issue(code, str(error.detail))], getattr(error, "headers", None)
    )


async def _data_error(request: Request, error: Exception) -> JSONResponse:
    """A value PostgreSQL cannot take (a NUL character, a number out of range): the caller's input."""
    assert isinstance(error, DataError)
    reason = str(getattr(error, "orig", error)).splitlines()[0]
    message = f"a value in the request cannot be used: {reason}"
    if _is_fhir(request):
        return operation_outcome(422, [issue("invalid", message)])
    return JSONResponse({"detail": message}, status_code=422)


async def _definition_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, DefinitionInvalidError)
    return JSONResponse({"detail": [problem.as_detail() for problem in error.problems]}, status_code=422)


async def _part_unavailable(request: Request, error: Exception) -> Any:
    """A part that is down (connection refused, pool exhausted, Temporal unreachable): 503 with
    `Retry-After`, in the API's error shape. Anything else of these types is an internal error."""
    part = unavailable_part(error)
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    if part is None:
        log.error("internal error", extra={"error_type": type(error).__name__, "path": request.url.path})
        message, status_code, headers, code = "internal error", 500, {}, "exception"
    else:
        UNAVAILABLE_ANSWERS.labels(part).inc()
        log.warning("answered 503: a part is down", extra={"part": part, "error_type": type(error).__name__})
        message, status_code, code = explanation(part, error), 503, "transient"
    if _is_fhir(request):
        return operation_outcome(status_code, [issue(code, message)], headers or None)
    return JSONResponse({"detail": message}, status_code=status_code, headers=headers or None)


UNAVAILABILITY_ERRORS: tuple[type[Exception], ...] = (
    sa.TimeoutError,
    sa.OperationalError,
    sa.InterfaceError,
    sa.DBAPIError,
    psycopg.OperationalError,
    RPCError,
    TemporalUnavailableError,
    RuntimeError,
)


async def _programming_error(request: Request, error: Exception) -> Any:
    """A row-level security refusal (a write about another facility's patient) is that record being
    out of reach: 404, as a read of it would be. Anything else goes the way of other database errors."""
    if isinstance(getattr(error, "orig", None), psycopg.errors.InsufficientPrivilege):
        message = "not found"
        if _is_fhir(request):
            return operation_outcome(404, [issue("not-found", message)])
        return JSONResponse({"detail": message}, status_code=404)
    return await _part_unavailable(request, error)


def register_error_handlers(app: FastAPI) -> None:
    """Install the handlers."""
    app.add_exception_handler(FhirError, _fhir_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(DefinitionInvalidError, _definition_error)
    app.add_exception_handler(DataError, _data_error)
    for error_type in UNAVAILABILITY_ERRORS:
        app.add_exception_handler(error_type, _part_unavailable)
    app.add_exception_handler(sa.ProgrammingError, _programming_error)
