"""Console sessions, kept in PostgreSQL (`aftercare/store/console_sessions.py`) so that every process
of the app, and a restarted one, knows them: a random id in an HttpOnly cookie names the session; the
table keeps only the id's SHA-256, the user as the API saw them at sign-in (subject, roles, scopes,
facilities), the CSRF token of the session's forms, and when it was last used.

The key or token the user signed in with is never stored. A session opened with an API key ends when the
key is revoked or expires; one opened through the identity provider ends when its token expires. Every
session ends after `console_idle_minutes` without a request, and at sign-out.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aftercare.security.principal import Principal
from aftercare.store.console_sessions import close_session, open_session, touch_session

COOKIE = "aftercare_console"
SIGN_IN_COOKIE = "aftercare_console_sign_in"  # the sign-in form's CSRF token (double submit)


@dataclass(frozen=True)
class ConsoleSession:
    """One signed-in browser: its user and its forms' CSRF token."""

    principal: Principal
    csrf: str


class SessionStore:
    """The console's sessions, each ending after `idle_seconds` without a request."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], idle_seconds: int) -> None:
        self._sessions = sessions
        self.idle_seconds = idle_seconds

    async def open(self, principal: Principal, credential_expires_at: datetime | None = None) -> str:
        """A new session for this user; its id for the cookie."""
        session_id = secrets.token_urlsafe(32)
        async with self._sessions.begin() as session:
            await open_session(
                session,
                session_id,
                principal,
                csrf=secrets.token_urlsafe(32),
                idle_seconds=self.idle_seconds,
                credential_expires_at=credential_expires_at,
            )
        return session_id

    async def find(self, session_id: str | None) -> ConsoleSession | None:
        """The live session with this id (its idle clock restarted), or None."""
        if not session_id:
            return None
        async with self._sessions.begin() as session:
            stored = await touch_session(session, session_id)
        return None if stored is None else ConsoleSession(principal=stored.principal, csrf=stored.csrf)

    async def close(self, session_id: str | None) -> None:
        """End a session."""
        if not session_id:
            return
        async with self._sessions.begin() as session:
            await close_session(session, session_id)
