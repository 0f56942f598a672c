"""Console sessions in PostgreSQL, so every process of the app (and a restarted one) knows them.

A session is found by the SHA-256 of its id, and only while it is live: used within its idle time,
its identity provider's token not expired, and the API key it was opened with neither revoked nor
expired. Finding it restarts its idle clock, in the same statement.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, delete, exists, func, or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.security.principal import Principal, PrincipalKind
from models.console_tables import ConsoleSessionRow
from models.roles import parse_roles
from models.security_tables import ApiKey


@dataclass(frozen=True)
class StoredSession:
    """A live session: its user and its forms' CSRF token."""

    principal: Principal
    csrf: str


def hash_session_id(session_id: str) -> str:
    """What the table keeps of a cookie's session id."""
    return hashlib.sha256(session_id.encode()).hexdigest()


def _idle_deadline() -> ColumnElement[datetime]:
    idle = func.make_interval(0, 0, 0, 0, 0, 0, ConsoleSessionRow.idle_seconds)
    return ConsoleSessionRow.last_seen_at + idle


def _live() -> list[ColumnElement[bool]]:
    now = func.now()
    key_live = exists().where(
        ApiKey.id == ConsoleSessionRow.key_id,
        ApiKey.revoked_at.is_(None),
        or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > now),
    )
    return [
        _idle_deadline() > now,
        or_(ConsoleSessionRow.credential_expires_at.is_(None), ConsoleSessionRow.credential_expires_at > now),
        or_(ConsoleSessionRow.key_id.is_(None), key_live),
    ]


async def open_session(
    session: AsyncSession,
    session_id: str,
    principal: Principal,
    *,
    csrf: str,
    idle_seconds: int,
    credential_expires_at: datetime | None,
) -> None:
    """Record a new session (and forget sessions idle past their time) in the caller's transaction."""
    await session.execute(delete(ConsoleSessionRow).where(_idle_deadline() <= func.now()))
    session.add(
        ConsoleSessionRow(
            id_hash=hash_session_id(session_id),
            subject=principal.subject[:200],
            kind=principal.kind.value,
            key_id=principal.key_id,
            roles=sorted(role.value for role in principal.roles),
            scopes=sorted(principal.scopes),
            facilities=sorted(principal.facilities),
            csrf=csrf,
            idle_seconds=idle_seconds,
            credential_expires_at=credential_expires_at,
        )
    )
    await session.flush()


async def touch_session(session: AsyncSession, session_id: str) -> StoredSession | None:
    """The live session with this id, its idle clock restarted; None when there is none."""
    row = (
        await session.execute(
            update(ConsoleSessionRow)
            .where(ConsoleSessionRow.id_hash == hash_session_id(session_id), *_live())
            .values(last_seen_at=func.now())
            .returning(ConsoleSessionRow)
        )
    ).scalar_one_or_none()
    if row is None:
        return None
    principal = Principal(
        kind=PrincipalKind(row.kind),
        subject=row.subject,
        roles=parse_roles(row.roles),
        scopes=frozenset(row.scopes),
        key_id=row.key_id,
        facilities=frozenset(row.facilities),
    )
    return StoredSession(principal=principal, csrf=row.csrf)


async def close_session(session: AsyncSession, session_id: str) -> None:
    """End a session (nothing when there is none)."""
    by_id = ConsoleSessionRow.id_hash == hash_session_id(session_id)
    await session.execute(delete(ConsoleSessionRow).where(by_id))
