"""Console sessions, kept in the process's memory: a random id in an HttpOnly cookie names the session;
the session holds the credential the user signed in with (an API key or the identity provider's access
token, never sent back to the browser), so every request re-checks it (a revoked or expired key or
token ends the session), and a CSRF token for its forms.

Sessions end after `console_idle_minutes` without a request, at sign-out, and when the process restarts.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

COOKIE = "aftercare_console"
SIGN_IN_COOKIE = "aftercare_console_sign_in"  # the sign-in form's CSRF token (double submit)


@dataclass(frozen=True)
class Credential:
    """What the user signed in with, as the API would receive it: an API key, or an `Authorization`
    header (a bearer access token from the identity provider)."""

    api_key: str | None = None
    authorization: str | None = None


@dataclass
class ConsoleSession:
    """One signed-in browser."""

    credential: Credential
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    last_seen: float = field(default_factory=time.monotonic)


class SessionStore:
    """The sessions of this process, each ending after `idle_seconds` without a request."""

    def __init__(self, idle_seconds: float) -> None:
        self.idle_seconds = idle_seconds
        self._sessions: dict[str, ConsoleSession] = {}

    def open(self, credential: Credential) -> tuple[str, ConsoleSession]:
        """A new session for this credential; its id for the cookie."""
        self._forget_idle()
        session_id = secrets.token_urlsafe(32)
        session = ConsoleSession(credential)
        self._sessions[session_id] = session
        return session_id, session

    def find(self, session_id: str | None) -> ConsoleSession | None:
        """The live session with this id (its idle clock restarted), or None."""
        session = self._sessions.get(session_id) if session_id else None
        if session is None:
            return None
        now = time.monotonic()
        if now - session.last_seen > self.idle_seconds:
            self._sessions.pop(session_id or "", None)
            return None
        session.last_seen = now
        return session

    def close(self, session_id: str | None) -> None:
        """End a session."""
        self._sessions.pop(session_id or "", None)

    def _forget_idle(self) -> None:
        now = time.monotonic()
        for session_id, session in list(self._sessions.items()):
            if now - session.last_seen > self.idle_seconds:
                del self._sessions[session_id]
