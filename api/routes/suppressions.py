"""Suppressed addresses: what staff see and lift (an address fixed, a bounce resolved)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status

from aftercare.store.suppressions import lift_suppression, list_suppressions
from api.deps import SessionDep
from models.api import SuppressionList, SuppressionView
from models.journey import Channel

router = APIRouter(prefix="/v1/suppressions", tags=["suppressions"])

# Staff may lift these; a STOP is the patient's to lift, by texting START (carrier rules).
LIFTABLE_REASONS = ("invalid", "landline", "bounce", "manual", "unsubscribe", "spamreport")


@router.get("", response_model=SuppressionList)
async def read_suppressions(
    session: SessionDep,
    channel: Channel | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> SuppressionList:
    """Suppressed phone numbers and email addresses, newest first."""
    rows = await list_suppressions(session, channel, limit)
    return SuppressionList(items=[SuppressionView.model_validate(row, from_attributes=True) for row in rows])


@router.delete("/{channel}/{address}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def delete_suppression(channel: Channel, address: str, session: SessionDep) -> Response:
    """Lift a suppression. A number that texted STOP is lifted only by the patient texting START."""
    async with session.begin():
        lifted = await lift_suppression(session, channel, address, reasons=LIFTABLE_REASONS)
    if not lifted:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"no suppression of {channel} {address!r} that staff can lift (an SMS STOP is lifted by START)",
        )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
