"""The HL7 v2 feed's parked messages: listed for an operator, and processed again after a fix (the
same as `aftercare mllp parked` and `aftercare mllp retry`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status

from aftercare.hl7v2.server import intake_for
from aftercare.security.principal import Principal
from aftercare.store.adt_messages import get_adt_message, parked_adt_messages
from api.deps import ServicesDep
from api.security import CurrentPrincipal
from models.adt_api import AdtRetryResult, ParkedAdtMessage, ParkedAdtMessages

router = APIRouter(prefix="/v1/hl7v2/messages", tags=["hl7v2"])

MessageIdPath = Annotated[int, Path(ge=1, description="the parked message's id")]


def _group_wide(principal: Principal) -> None:
    # A parked message never reached a patient, so it belongs to no facility yet: only callers who
    # reach the whole group see them.
    if principal.facilities:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "parked feed messages belong to no facility yet: they are for group-wide operators",
        )


@router.get("/parked", response_model=ParkedAdtMessages)
async def list_parked(
    services: ServicesDep,
    principal: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> ParkedAdtMessages:
    """Messages answered `AE` or `AR`, newest first, with the field and the reason."""
    _group_wide(principal)
    async with services.sessions() as session:
        rows = await parked_adt_messages(session, limit)
        items = [
            ParkedAdtMessage(
                id=row.id,
                received_at=row.received_at,
                sending_facility=row.sending_facility,
                control_id=row.control_id,
                message_type=row.message_type,
                ack_code=row.ack_code,
                error_location=row.error_location,
                error_code=row.error_code,
                reason=row.reason,
                retried_at=row.retried_at,
                retryable=row.raw_sealed is not None,
            )
            for row in rows
        ]
    return ParkedAdtMessages(items=items)


@router.post("/{message_id}/retry", response_model=AdtRetryResult)
async def retry_parked(
    message_id: MessageIdPath, services: ServicesDep, principal: CurrentPrincipal
) -> AdtRetryResult:
    """Process a parked message again (after the mapping or the data was fixed); `AA` when it went
    through, else the new reason. 404 for a message that is not parked, 409 for one whose text was not
    kept."""
    _group_wide(principal)
    async with services.sessions() as session:
        row = await get_adt_message(session, message_id)
        found = None if row is None else (row.ack_code, row.raw_sealed is not None)
    if found is None or found[0] == "AA":
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no parked message {message_id}")
    if not found[1]:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"message {message_id} cannot be retried: its raw text was not kept"
        )
    intake = intake_for(services.settings, services.sessions, services.temporal, services.starter)
    handled = await intake.retry(message_id)
    if handled is None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"message {message_id} was processed meanwhile")
    async with services.sessions() as session:
        after = await get_adt_message(session, message_id)
        reason = after.reason if after is not None and handled.code != "AA" else None
    return AdtRetryResult(id=message_id, ack_code=handled.code, reason=reason)
