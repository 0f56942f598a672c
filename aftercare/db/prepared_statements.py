"""Prepared statements that outlive a rollback.

psycopg prepares a statement on a connection once it has run it five times, and forgets every prepared
statement of the connection whenever a transaction is rolled back. Every read-only unit of work ends in
a rollback (a session closed without a commit: each GET, each background poll), so a pooled connection
lost its prepared statements every few transactions and most statements were parsed and planned
anew on each run: under row-level security, where planning expands every policy, that was most of a
scoped request's database time (docs/performance.md, "Facilities").

PostgreSQL itself keeps prepared statements through a rollback (they belong to the session, not to the
transaction), so nothing the server holds goes stale. The statements that can make one stale, DROP,
ALTER, DISCARD ALL and DEALLOCATE ALL, still clear the cache, as psycopg does; the application runs no
schema changes on its pooled connections (migrations use their own).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from psycopg import pq
from psycopg._preparing import Prepare, PrepareManager
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

# psycopg's own list of what discards the cache, without ROLLBACK.
_DISCARDS = re.compile(rb"^(?:DROP|ALTER|DISCARD ALL|DEALLOCATE ALL)\b").match


class KeptThroughRollback(PrepareManager):
    """psycopg's prepared-statement cache, except that a rollback does not empty it."""

    def clear(self) -> bool:
        """Called by psycopg on every rollback: the server's prepared statements survive it."""
        return False

    def _should_discard(
        self, prep: Prepare, results: Sequence[pq.abc.PGresult], _unused: Any = None, /
    ) -> bool:
        if self._names or prep == Prepare.SHOULD:
            for result in results:
                status = result.command_status
                if result.status == pq.ExecStatus.COMMAND_OK and status and _DISCARDS(status):
                    return PrepareManager.clear(self)
        return False


def keep_prepared_statements(engine: AsyncEngine) -> None:
    """Give every new connection of `engine` a prepared-statement cache that survives rollbacks."""

    @event.listens_for(engine.sync_engine.pool, "connect")
    def _connected(dbapi_connection: Any, record: Any) -> None:
        driver = record.driver_connection
        previous: PrepareManager = driver._prepared
        kept = KeptThroughRollback()
        kept.prepare_threshold, kept.prepared_max = previous.prepare_threshold, previous.prepared_max
        driver._prepared = kept
