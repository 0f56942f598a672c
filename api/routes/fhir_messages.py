"""FHIR messaging: `$process-message` for Da Vinci Unsolicited Notifications (admit, transfer,
discharge). Errors are `OperationOutcome`s."""

from __future__ import annotations

import json
import uuid

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from aftercare.fhir.notification_messages import (
    NotificationMessageError,
    read_notification_message,
    response_message,
)
from aftercare.nesting import TooDeepError, load_json
from api.deps import ServicesDep
from api.errors import FhirError, issue

router = APIRouter(prefix="/v1/fhir", tags=["fhir"])
SOURCE = "davinci"
MESSAGE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/fhir+json": {"schema": {"type": "object", "description": "a message Bundle"}}
        },
    }
}


@router.post("/$process-message", response_model=None, openapi_extra=MESSAGE_BODY)
async def process_message(request: Request, services: ServicesDep) -> JSONResponse:
    """Take a Da Vinci admit, transfer or discharge notification (a FHIR message Bundle)."""
    try:
        document = load_json(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError, TooDeepError) as error:
        raise FhirError(400, [issue("structure", f"the body is not FHIR JSON: {error}")]) from error
    try:
        notification = read_notification_message(document)
    except NotificationMessageError as error:
        raise FhirError(422, [issue("invalid", str(error), error.expression)]) from error
    received = await services.ingestion().receive(notification.resources, source=SOURCE)
    if received.parked and not received.stored_by_type and not received.unchanged_by_type:
        raise FhirError(
            422, [issue("invalid", "no resource of the message is valid FHIR R4 (they are parked)")]
        )
    return JSONResponse(response_message(notification, str(uuid.uuid4())), media_type="application/fhir+json")
