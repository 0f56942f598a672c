"""The audit trail, for administrators: who read or changed which resource, when and from where."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from aftercare.security import audit
from api.deps import SessionDep
from models.security_api import AuditEventList, AuditEventView

router = APIRouter(prefix="/v1/audit", tags=["security"])

Filter = Annotated[str | None, Query(max_length=200)]


@router.get("", response_model=AuditEventList)
async def read_audit(
    session: SessionDep,
    resource_type: Filter = None,
    resource_id: Filter = None,
    actor: Filter = None,
    action: Filter = None,
    since: Annotated[datetime | None, Query(description="from this time on")] = None,
    until: Annotated[datetime | None, Query(description="before this time")] = None,
    before_id: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="older than this row")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditEventList:
    """Audit rows, newest first (`actor` is e.g. `api_key:<name>`, `jwt:<sub>` or `dev`)."""
    rows = await audit.query(
        session,
        resource_type=resource_type,
        resource_id=resource_id,
        actor=actor,
        action=action,
        since=since,
        until=until,
        before_id=before_id,
        limit=limit,
    )
    return AuditEventList(items=[AuditEventView.model_validate(row, from_attributes=True) for row in rows])
