"""`aftercare api-keys create|list|revoke`: keys made straight in the database, such as the first
administrator's key of a production install (the API then makes the others)."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import Literal

from sqlalchemy import select

from aftercare.db.engine import create_engine, session_factory
from aftercare.security.api_keys import create_api_key, revoke_api_key
from aftercare.settings import Settings
from models.roles import Permission, Role
from models.security_api import future_expiry
from models.security_tables import ApiKey


def _parse(values: list[str], kind: type[Role] | type[Permission], what: str) -> list[str] | None:
    known = {member.value for member in kind}
    unknown = [value for value in values if value not in known]
    if unknown:
        listed = ", ".join(sorted(known))
        print(
            f"aftercare api-keys: error: unknown {what} {', '.join(unknown)}; known: {listed}",
            file=sys.stderr,
        )
        return None
    return values


def _expiry(value: str | None) -> datetime | Literal[False] | None:
    """`--expires-at` read and checked; False (after saying why) when it is unreadable or has passed."""
    if value is None:
        return None
    try:
        return future_expiry(datetime.fromisoformat(value))
    except ValueError as error:
        print(f"aftercare api-keys: error: --expires-at {value!r}: {error}", file=sys.stderr)
        return False


async def run_api_keys(settings: Settings, arguments: argparse.Namespace) -> int:
    """Run one sub-command; the exit status."""
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    try:
        if arguments.api_keys_command == "create":
            roles = _parse(arguments.roles, Role, "role")
            scopes = _parse(arguments.scopes, Permission, "scope")
            expires_at = _expiry(getattr(arguments, "expires_at", None))
            if roles is None or scopes is None or expires_at is False:
                return 2
            async with sessions.begin() as session:
                made = await create_api_key(
                    session,
                    name=arguments.name,
                    roles=[Role(role) for role in roles],
                    scopes=[Permission(scope) for scope in scopes],
                    created_by="aftercare api-keys",
                    expires_at=expires_at,
                )
            print(f"{made.row.id} {made.row.name} ({', '.join(made.row.roles)})")
            print(made.secret)
            return 0
        if arguments.api_keys_command == "list":
            async with sessions() as session:
                rows = await session.scalars(
                    select(ApiKey).where(ApiKey.revoked_at.is_(None)).order_by(ApiKey.created_at)
                )
                for row in rows:
                    used = row.last_used_at.isoformat() if row.last_used_at else "never"
                    print(f"{row.id} {row.name} roles={','.join(row.roles)} last_used={used}")
            return 0
        async with sessions.begin() as session:
            revoked = await revoke_api_key(session, arguments.key_id)
        if revoked is None:
            print(f"aftercare api-keys: error: no API key {arguments.key_id!r}", file=sys.stderr)
            return 1
        print(f"{revoked.id} revoked")
        return 0
    finally:
        await engine.dispose()
