"""Tables of the console: its signed-in sessions, shared by every process of the app.

On `models/table_base.py`'s `Base`; `models/tables.py` imports them, so migrations see them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ARRAY, DateTime, Integer, String, func
from sqlalchemy.orm import Mapped, mapped_column

from models.table_base import Base


class ConsoleSessionRow(Base):
    """A signed-in browser. Only the SHA-256 of the cookie's session id is kept; the user is kept as the
    API would see them (subject, roles, scopes, facilities), never the key or token they signed in with.
    `key_id` ties a session opened with an API key to that key, so revoking or expiring it ends the
    session; `credential_expires_at` is the identity provider's token expiry."""

    __tablename__ = "console_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    subject: Mapped[str] = mapped_column(String(200), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    key_id: Mapped[str | None] = mapped_column(String(32))
    roles: Mapped[list[str]] = mapped_column(ARRAY(String(32)), nullable=False)
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(64)), nullable=False, server_default="{}")
    facilities: Mapped[list[str]] = mapped_column(ARRAY(String(64)), nullable=False, server_default="{}")
    csrf: Mapped[str] = mapped_column(String(64), nullable=False)
    idle_seconds: Mapped[int] = mapped_column(Integer, nullable=False)
    credential_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    last_seen_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False, index=True
    )
