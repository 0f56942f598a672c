"""The audit trail: who read or changed which resource, when, from where, and how it ended.

Rows are appended (the table refuses UPDATE, DELETE and TRUNCATE) and hold ids only, never patient
data. `api/middleware/audit_trail.py` writes one per audited call, after the answer is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aftercare.security.principal import Principal
from models.security_tables import AuditEvent
from models.tables import table_of

_DEFAULT_ACTIONS = {"GET": "read", "HEAD": "read", "POST": "create", "PUT": "update", "DELETE": "delete"}
_INSERT = insert(table_of(AuditEvent))


def default_action(method: str) -> str:
    """The action a method stands for when a rule names none."""
    return _DEFAULT_ACTIONS.get(method, method.lower())


@dataclass(frozen=True)
class AuditEntry:
    """One audited call."""

    principal: Principal
    action: str
    resource_type: str
    resource_id: str | None
    method: str
    route: str
    status_code: int
    client_ip: str | None
    user_agent: str | None


async def record(sessions: async_sessionmaker[AsyncSession], entry: AuditEntry) -> None:
    """Append one row."""
    principal = entry.principal
    async with sessions.begin() as session:
        await session.execute(
            _INSERT,
            {
                "actor": principal.subject,
                "actor_kind": principal.kind.value,
                "actor_key_id": principal.key_id,
                "actor_roles": sorted(role.value for role in principal.roles),
                "actor_facilities": sorted(principal.facilities),
                "action": entry.action[:32],
                "resource_type": entry.resource_type,
                "resource_id": entry.resource_id[:200] if entry.resource_id else None,
                "method": entry.method,
                "route": entry.route[:200],
                "status_code": entry.status_code,
                "client_ip": entry.client_ip,
                "user_agent": entry.user_agent[:500] if entry.user_agent else None,
            },
        )


async def query(
    session: AsyncSession,
    *,
    resource_type: str | None = None,
    resource_id: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[AuditEvent]:
    """Audit rows, newest first, filtered (every filter is a bound parameter)."""
    statement = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if resource_type is not None:
        statement = statement.where(AuditEvent.resource_type == resource_type)
    if resource_id is not None:
        statement = statement.where(AuditEvent.resource_id == resource_id)
    if actor is not None:
        statement = statement.where(AuditEvent.actor == actor)
    if action is not None:
        statement = statement.where(AuditEvent.action == action)
    if since is not None:
        statement = statement.where(AuditEvent.occurred_at >= since)
    if until is not None:
        statement = statement.where(AuditEvent.occurred_at < until)
    if before_id is not None:
        statement = statement.where(AuditEvent.id < before_id)
    return list(await session.scalars(statement))
