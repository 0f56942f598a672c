"""The one place facility scoping is enforced: every database transaction begun while a caller limited
to some facilities is being served takes the `aftercare_scoped` role and names the facilities it reaches
(`aftercare.facilities`, the subtrees of the caller's grants). PostgreSQL's row-level security
(`aftercare/facilities/policies.py`) then hides every row of another facility's patients, from every
statement, ORM or Core, of every route: a route cannot forget it.

The API's authorisation sets the caller's grants for the request (`enter_scope`); workers and commands
never do, so they see the whole group. A grant of a root facility is the whole group too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from contextvars import ContextVar
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, PendingRollbackError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from aftercare.facilities.policies import SCOPED_ROLE

assert SCOPED_ROLE == "aftercare_scoped"  # named in `_BEGIN_SCOPED` below

_GRANTS: ContextVar[tuple[str, ...] | None] = ContextVar("aftercare_facility_grants", default=None)

# One round trip at the start of the transaction: the subtrees of the grants, the facilities above them
# (whose definitions are shared down the tree), and the role, all undone by the transaction's end. A
# grant of a root facility (or of nothing known) is handled here too.
_BEGIN_SCOPED = """
WITH RECURSIVE tree(key) AS (
    SELECT key FROM facilities WHERE key = ANY(%(grants)s::text[])
    UNION SELECT f.key FROM facilities f JOIN tree ON f.parent = tree.key
), above(key) AS (
    SELECT parent FROM facilities WHERE key = ANY(%(grants)s::text[]) AND parent IS NOT NULL
    UNION SELECT f.parent FROM facilities f JOIN above ON f.key = above.key WHERE f.parent IS NOT NULL
), roots AS (
    SELECT EXISTS (SELECT 1 FROM facilities WHERE key = ANY(%(grants)s::text[]) AND parent IS NULL) AS whole
)
SELECT set_config('aftercare.facilities', coalesce((SELECT string_agg(key, ',') FROM tree), ''), true),
       set_config('aftercare.shared_facilities', coalesce((SELECT string_agg(key, ',') FROM above), ''),
                  true),
       set_config('role', CASE WHEN (SELECT whole FROM roots) THEN 'none' ELSE 'aftercare_scoped' END, true)
"""


def enter_scope(facilities: frozenset[str]) -> None:
    """Limit this request's transactions to the subtrees of `facilities` (none: the whole group)."""
    _GRANTS.set(tuple(sorted(facilities)) if facilities else None)


def current_grants() -> tuple[str, ...] | None:
    """The facilities the current request is limited to; None when it sees the whole group."""
    return _GRANTS.get()


def leave_scope() -> None:
    """See the whole group again (the start of every request)."""
    _GRANTS.set(None)


@contextmanager
def request_boundary() -> Iterator[None]:
    """Undo, when the block ends, whatever scope was entered inside it."""
    token = _GRANTS.set(None)
    try:
        yield
    finally:
        _GRANTS.reset(token)


_LIFT = text("SELECT set_config('role', 'none', true)")
_RESTORE = text("SELECT set_config('role', 'aftercare_scoped', true)")
# Where the begin hook leaves the facilities a scoped transaction reaches (None: not scoped).
_REACH = "aftercare_reach"


@asynccontextmanager
async def explicit_scope(session: AsyncSession) -> AsyncIterator[list[str] | None]:
    """For one store-layer query that filters by facility itself, with an indexed predicate: yields the
    facilities the caller's transaction reaches (None: the whole group, nothing to filter), and lifts
    row-level security until the block ends, when the scoped role is taken again.

    Why (measured at a million patients, docs/performance.md "Facilities"): under the policies a
    segment statement costs 2 to 12 times the CPU of the same statement lifted and filtered. PostgreSQL
    does not let a non-leakproof operator (the array overlap `&&` behind code matches) be an index
    condition below a policy, so the fact tables are scanned; it evaluates each policy before the
    query's own conditions on every row; and a policy's sub-query is never turned into a join the
    planner can reorder. Even with the fact tables read around their policies, the policy on
    `patients` alone costs up to 5 times. The caller MUST pass each statement through
    `aftercare.segments.evaluate.limited_to`, which refuses any statement that reads more than
    `patients` and filters that by the facilities yielded; the rest of the transaction stays under the
    policies.
    """
    connection = await session.connection()  # begins the transaction, which takes the scope
    reach: list[str] | None = connection.info.get(_REACH)
    if reach is None:
        yield None
        return
    await session.execute(_LIFT)
    try:
        yield reach
    finally:
        # An aborted transaction runs nothing more, and its rollback undoes the lift as well.
        with suppress(DBAPIError, PendingRollbackError):
            await session.execute(_RESTORE)


def _on_begin(connection: Connection) -> None:
    grants = _GRANTS.get()
    connection.info.pop(_REACH, None)
    if grants is not None:
        facilities, _, role = connection.exec_driver_sql(_BEGIN_SCOPED, {"grants": list(grants)}).one()
        if role == SCOPED_ROLE:
            connection.info[_REACH] = [key for key in facilities.split(",") if key]


def scope_transactions(engine: AsyncEngine | Any) -> None:
    """Apply the current request's facility scope to every transaction of `engine`."""
    sync_engine = engine.sync_engine if isinstance(engine, AsyncEngine) else engine
    if not event.contains(sync_engine, "begin", _on_begin):
        event.listen(sync_engine, "begin", _on_begin)
