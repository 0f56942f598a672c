"""Catches the pattern that deadlocks a connection pool under a burst: a task that already holds a
connection takes a second one from the same pool. With N such tasks and N connections, every task
waits for a connection that another waiting task holds, and nothing moves until the pool times out.

`watch_checkouts(engine)` counts each task's held connections through the pool's checkout and checkin
events. A nested checkout is counted in `aftercare_db_nested_checkouts_total` and logged with the code
location that took the second connection. `note_outside_call(what)` does the same for a call to
Temporal made while the task holds a connection (a transaction left open while another service
answers). The test suite fails any test that causes either (`tests/conftest.py`).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import traceback
import weakref
from dataclasses import dataclass, field
from typing import Any

import greenlet  # type: ignore[import-untyped]
from prometheus_client import Counter
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

NESTED_CHECKOUTS = Counter(
    "aftercare_db_nested_checkouts_total",
    "database connections taken by a task that already held one (a pool deadlock in waiting)",
)

_OWNER = "aftercare_owner_task"


@dataclass
class NestedCheckouts:
    """Where nested checkouts happened in this process (the last 50)."""

    locations: list[str] = field(default_factory=list)

    def record(self, location: str) -> None:
        """Remember one nested checkout."""
        self.locations.append(location)
        del self.locations[:-50]

    def take(self) -> list[str]:
        """The recorded locations, forgetting them."""
        taken, self.locations = self.locations, []
        return taken


NESTED = NestedCheckouts()


_HELD_BY_TASK: weakref.WeakKeyDictionary[asyncio.Task[Any], int] = weakref.WeakKeyDictionary()


def _current_task() -> asyncio.Task[Any] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:
        return None


def _caller() -> str:
    """Aftercare's frames that asked: SQLAlchemy runs the pool inside a greenlet, so the async callers
    of a checkout are the frames of the greenlet that switched into it."""
    parent = getattr(greenlet.getcurrent(), "parent", None)
    frame = getattr(parent, "gr_frame", None) or sys._getframe(1)
    stack = traceback.extract_stack(frame)
    ours = [f for f in stack if "site-packages" not in f.filename and not f.filename.startswith("<")]
    return " <- ".join(
        f"{'/'.join(f.filename.rsplit('/', 2)[-2:])}:{f.lineno} {f.name}" for f in reversed(ours[-5:])
    )


def watch_checkouts(engine: AsyncEngine) -> None:
    """Count connections per task on `engine`'s pool and record every nested checkout."""
    held: weakref.WeakKeyDictionary[asyncio.Task[Any], int] = weakref.WeakKeyDictionary()
    pool = engine.sync_engine.pool

    @event.listens_for(pool, "checkout")
    def _checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        task = _current_task()
        if task is None:
            return
        count = held.get(task, 0)
        if count:
            NESTED_CHECKOUTS.inc()
            location = _caller()
            NESTED.record(location)
            log.warning("a task took a second database connection", extra={"location": location})
        held[task] = count + 1
        _HELD_BY_TASK[task] = _HELD_BY_TASK.get(task, 0) + 1
        record.info[_OWNER] = weakref.ref(task)

    @event.listens_for(pool, "checkin")
    def _checkin(dbapi_connection: Any, record: Any) -> None:
        owner_ref = record.info.pop(_OWNER, None)
        owner = owner_ref() if owner_ref is not None else None
        if owner is not None and held.get(owner, 0) > 0:
            held[owner] -= 1
            _HELD_BY_TASK[owner] -= 1


def note_outside_call(what: str) -> None:
    """Record `what` (a call to another service) when the current task holds a pooled connection."""
    task = _current_task()
    if task is None or not _HELD_BY_TASK.get(task, 0):
        return
    NESTED_CHECKOUTS.inc()
    location = f"{what} while holding a database connection: " + _caller()
    NESTED.record(location)
    log.warning("a call to another service while holding a database connection", extra={"call": what})
