"""analytics: the send path's triggers plan once, the hour bucket inlined, and a message's update that
moves no count calls no trigger

Revision ID: 0020
Revises: 0019

A PL/pgSQL statement's plan is cached, but for each execution the plan cache weighs a plan made for the
statement's parameter values against the generic one. A message's contribution names its facility,
which the send path sets: a plan for that value folds the facility probe and the reply and opt-out
probes away and looks cheaper than the generic plan holding them, so the cache planned the message's
delta statements anew at every execution, the most of their cost. The message and the decision
trigger functions now run with `plan_cache_mode = force_generic_plan` (the functions they call inherit
it): each statement is planned once per connection and its probes run only when reached, as the
generic plan evaluates a `coalesce` and an `AND` lazily. (A later `CREATE OR REPLACE` of these two
functions must repeat the setting.)

`analytics_hour()` was declared IMMUTABLE around `date_trunc('hour', moment, 'UTC')`, which is only
STABLE, so the planner never inlined it: a generic plan called it through the SQL function executor
at every execution (which sets up its body anew at each call), and `aftercare analytics rebuild` and
`check` once per fact. Its body is now `timezone('UTC', date_trunc('hour', timezone('UTC', moment)))`,
the same hour for every moment, made of IMMUTABLE functions only, so it is inlined.

The message update trigger's WHEN was "a counted field changed"; the claim of every send (`pending`
to `sending`, its provider set) entered PL/pgSQL to append nothing. A change of the status, reason or
provider now fires it only when the old or the new status is one a counter names (`delivered`,
`printed`, `failed`, `undelivered`, `skipped`); a change among the others moves no counter and a
failure row only exists for a failed status. Every update it now skips appended nothing before, so the
rollups' numbers are unchanged. The WHEN is kept short (its stored form 1.5 times `0015`'s; one
condition per counter made it 2.2 times): PostgreSQL reads it back from that form for every UPDATE
statement of `messages`, fired or not, at a cost that grows with its length. The patient is part of
the key here as in `0019`'s function (`0015`'s WHEN did not name it).
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _migration(name: str) -> ModuleType:
    """A private copy of an earlier migration, whose conditions render this one's."""
    path = Path(__file__).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"aftercare_migration_{name}_for_0020", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_HOUR = """
CREATE OR REPLACE FUNCTION analytics_hour(moment timestamptz) RETURNS timestamptz LANGUAGE sql IMMUTABLE AS $$
    SELECT {body}
$$;
"""
_INLINED_HOUR = "timezone('UTC', date_trunc('hour', timezone('UTC', moment)))"
_PREVIOUS_HOUR = "date_trunc('hour', moment, 'UTC')"
# The statuses a counter names; a change among the others (pending, sending, queued, sent, ...) counts nothing.
_COUNTED_STATUSES = "('delivered', 'printed', 'failed', 'undelivered', 'skipped')"
# A failed message's failure row counts its reason and provider.
_STATUS_FIELDS = ("status", "reason", "provider")


def _counted_change() -> str:
    """The update trigger's WHEN: a superset of what `0019`'s `analytics_count_message_update()` counts,
    kept short (PostgreSQL reads a WHEN back from its stored form for every UPDATE statement)."""
    m = _migration("0015_analytics_deltas")
    others = (*(f for f in m._MESSAGE_COUNTED if f not in _STATUS_FIELDS), "patient_id")
    status = f"(OLD.status IN {_COUNTED_STATUSES} OR NEW.status IN {_COUNTED_STATUSES})"
    return f"(({m._changed(_STATUS_FIELDS)} AND {status}) OR {m._changed(others)})"


def _update_trigger(when: str) -> str:
    return (
        "DROP TRIGGER analytics_rollup_update ON messages;\n"
        "CREATE TRIGGER analytics_rollup_update AFTER UPDATE ON messages FOR EACH ROW\n"
        f"    WHEN {when} EXECUTE FUNCTION analytics_message_change();"
    )


# The trigger functions of the send path's facts (the functions they call run with their settings).
_PLANNED_ONCE = ("analytics_message_change()", "analytics_decision_recorded()")


def upgrade() -> None:
    op.execute(_HOUR.format(body=_INLINED_HOUR))
    op.execute(_update_trigger(_counted_change()))
    for function in _PLANNED_ONCE:
        op.execute(f"ALTER FUNCTION {function} SET plan_cache_mode = force_generic_plan")


def downgrade() -> None:
    m = _migration("0015_analytics_deltas")
    for function in _PLANNED_ONCE:
        op.execute(f"ALTER FUNCTION {function} RESET plan_cache_mode")
    op.execute(_HOUR.format(body=_PREVIOUS_HOUR))
    op.execute(_update_trigger(m._changed(m._MESSAGE_COUNTED)))
