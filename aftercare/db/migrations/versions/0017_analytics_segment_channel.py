"""analytics: the journey rollups keyed by segment, step records and their times by channel

Revision ID: 0017
Revises: 0018

A funnel is filtered by the segment its enrollments entered through and by the channel its steps sent
on, from the rollups alone. Every journey rollup (entries, outcomes, steps, step exits, waiting,
durations, paths) gets the key `segment`: the dynamic segment whose refresh enrolled the patient (the
trigger's event `segment.entered` names it), `""` for an enrollment started otherwise (a FHIR resource,
an event, the API, another journey's `enroll` step). It is fixed for the enrollment's life, so every
row an enrollment contributes carries it. The step records (`analytics_steps`) and the times to a step
(`analytics_durations`) get the key `channel`: the channel of the message that visit of the step sent
(the message whose idempotency key is `<enrollment>/<step>/<visit>`, the visit being the record's rank
among the enrollment's records of that step), `""` for a step that sent nothing and for the time to a
goal.

The triggers stay `0015`'s (append a signed delta, fold every second); only the enrollment's and the
step's contributions gain the keys. The rows kept so far are recounted from the facts through the same
functions (the deltas they append are folded at once), so the new keys hold for the past too.
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from alembic import op

revision: str = "0017"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JOURNEY = ("facility", "journey_key", "journey_version", "segment")
# The journey rollups' keys and counters after this migration (the others are `0015`'s).
KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "analytics_entries": ((*_JOURNEY, "hour"), ("entered",)),
    "analytics_outcomes": ((*_JOURNEY, "hour", "status", "outcome"), ("n",)),
    "analytics_steps": ((*_JOURNEY, "hour", "step", "result", "branch", "channel"), ("n",)),
    "analytics_step_exits": ((*_JOURNEY, "hour", "after_step", "status"), ("n",)),
    "analytics_waiting": ((*_JOURNEY, "step"), ("waiting",)),
    "analytics_durations": ((*_JOURNEY, "hour", "point", "le", "channel"), ("n",)),
    "analytics_paths": ((*_JOURNEY, "step", "path", "status", "outcome"), ("n",)),
}
_CHANNELLED = ("analytics_steps", "analytics_durations")
_TYPES = {"segment": "varchar(64)", "channel": "varchar(16)"}


def _migration_0015() -> ModuleType:
    """A private copy of migration `0015`, whose statement builders render this one's statements (its
    `KEYS` updated with the keys above) and whose functions the downgrade puts back."""
    path = Path(__file__).with_name("0015_analytics_deltas.py")
    spec = importlib.util.spec_from_file_location("aftercare_migration_0015_for_0017", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _journey(e: str, hour: str) -> str:
    """A journey rollup's leading key values for enrollment `e` (and the hour, when the rollup has one)."""
    return f"fac, {e}.journey_key, {e}.journey_version, seg" + (f", analytics_hour({hour})" if hour else "")


def _functions(m: ModuleType) -> str:
    """The enrollment's and the step's contributions with the new keys, and the folder of all rollups."""
    m.KEYS.update(KEYS)
    add = {
        "entry": m._add("analytics_entries", _journey("e", "e.started_at") + ", delta"),
        "waiting": m._add("analytics_waiting", _journey("e", "") + ", e.current_step, delta"),
        "outcome": m._add(
            "analytics_outcomes", _journey("e", "ended") + ", e.status, coalesce(e.outcome, ''), delta"
        ),
        "enrollment_paths": m._add(
            "analytics_paths",
            _journey("e", "") + ", s.step, substr(s.result, 6), e.status, coalesce(e.outcome, ''), "
            "delta * count(*)",
            select="FROM enrollment_steps s WHERE s.enrollment_id = e.id AND s.result LIKE 'path %' "
            "GROUP BY s.step, s.result",
        ),
        "goal_duration": m._add(
            "analytics_durations",
            _journey("e", "ended") + ", 'goal:' || coalesce(e.outcome, ''), "
            f"{m._le('ended - e.started_at')}, '', delta",
        ),
        "step": m._add(
            "analytics_steps",
            _journey("e", "s.at") + ", s.step, s.result, "
            "CASE WHEN s.result = 'matched' THEN coalesce(s.detail, '') ELSE '' END, chan, 1",
        ),
        "step_duration": m._add(
            "analytics_durations",
            _journey("e", "s.at") + f", s.step, {m._le('s.at - e.started_at')}, chan, 1",
        ),
        "step_path": m._add(
            "analytics_paths",
            _journey("e", "") + ", s.step, substr(s.result, 6), e.status, coalesce(e.outcome, ''), 1",
        ),
        "step_exit": m._add(
            "analytics_step_exits",
            _journey("e", "s.at") + ", coalesce(last_step, ''), trim(both '<>' FROM s.step), 1",
        ),
    }
    fold = "\n".join("    " + m._fold(rollup) for rollup in m.KEYS).strip()
    return rf"""
-- The segment an enrollment entered through, from its trigger (inlined by the planner: no query inside).
CREATE FUNCTION analytics_segment(trigger jsonb) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN trigger -> 'event' ->> 'type' = 'segment.entered'
                THEN left(coalesce(trigger -> 'event' -> 'data' ->> 'segment', ''), 64) ELSE '' END
$$;

CREATE OR REPLACE FUNCTION analytics_count_enrollment(e enrollments, delta integer, with_entry boolean,
                                                      with_waiting boolean, with_outcome boolean)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    fac text := {m._facility("e.patient_id")};
    seg text := analytics_segment(e.trigger);
    ended timestamptz := coalesce(e.ended_at, e.updated_at);
BEGIN
    IF with_entry THEN
        {add["entry"]}
    END IF;
    IF with_waiting AND e.status = 'running' AND e.current_step IS NOT NULL THEN
        {add["waiting"]}
    END IF;
    IF with_outcome AND e.status <> 'running' THEN
        {add["outcome"]}
        -- The A/B paths this enrollment took, with how it ended.
        {add["enrollment_paths"]}
        {add["goal_duration"]}
    END IF;
END
$$;

-- One step record's contribution; `with_path`: also its A/B path when its enrollment has ended already
-- (a path recorded with the end in one projection, which the enrollment's end did not see).
CREATE FUNCTION analytics_count_step(s enrollment_steps, with_path boolean) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    e enrollments;
    fac text;
    seg text;
    chan text;
    last_step text;
BEGIN
    SELECT * INTO e FROM enrollments WHERE id = s.enrollment_id;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    fac := {m._facility("e.patient_id")};
    seg := analytics_segment(e.trigger);
    IF s.step NOT LIKE '<%' THEN
        SELECT m.channel INTO chan FROM messages m
        WHERE m.idempotency_key = s.enrollment_id || '/' || s.step || '/' || (
            SELECT count(*) FROM enrollment_steps v
            WHERE v.enrollment_id = s.enrollment_id AND v.step = s.step AND v.seq <= s.seq);
    END IF;
    chan := coalesce(chan, '');
    {add["step"]}
    {add["step_duration"]}
    IF with_path AND s.result LIKE 'path %' AND e.status <> 'running' THEN
        {add["step_path"]}
    END IF;
    IF s.step IN ('<exited>', '<cancelled>', '<failed>') THEN
        SELECT p.step INTO last_step FROM enrollment_steps p
        WHERE p.enrollment_id = s.enrollment_id AND p.seq < s.seq AND p.step NOT LIKE '<%'
        ORDER BY p.seq DESC LIMIT 1;
        {add["step_exit"]}
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION analytics_step_recorded() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public AS $$
BEGIN
    PERFORM analytics_count_step(NEW, true);
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION analytics_fold() RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public AS $$
DECLARE
    folded bigint := 0;
    written bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('analytics_fold')) THEN
        RETURN -1;
    END IF;
    {fold}
    RETURN folded;
END
$$;
"""  # noqa: S608 (constants only)


def _set_key(table: str, keys: Sequence[str]) -> None:
    """Give the table this primary key (dropping a key column dropped the old one already)."""
    op.execute(
        f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS pk_{table}, "
        f"ADD CONSTRAINT pk_{table} PRIMARY KEY ({', '.join(keys)})"
    )


def _added_columns(rollup: str) -> list[str]:
    return ["segment", *(["channel"] if rollup in _CHANNELLED else [])]


def upgrade() -> None:
    m = _migration_0015()
    # Pending deltas into the rollups first; their tables are locked by the changes below until commit.
    op.execute("SELECT analytics_fold()")
    for rollup, (keys, _) in KEYS.items():
        for table in (rollup, f"{rollup}_delta"):
            added = (
                f"ADD COLUMN {column} {_TYPES[column]} NOT NULL DEFAULT ''"
                for column in _added_columns(rollup)
            )
            op.execute(f"ALTER TABLE {table} {', '.join(added)}")
        _set_key(rollup, keys)
    op.execute(_functions(m))
    # The rows kept so far, recounted with their segment and channel through the functions above.
    op.execute("LOCK TABLE enrollments, enrollment_steps IN SHARE MODE")
    for rollup in KEYS:
        op.execute(f"TRUNCATE {rollup}, {rollup}_delta")
    op.execute("SELECT analytics_count_enrollment(e, 1, true, true, true) FROM enrollments e")
    op.execute("SELECT analytics_count_step(s, false) FROM enrollment_steps s")
    op.execute("SELECT analytics_fold()")


def downgrade() -> None:
    m = _migration_0015()
    op.execute("SELECT analytics_fold()")
    m._drop_triggers()
    op.execute("DROP FUNCTION IF EXISTS analytics_count_step(enrollment_steps, boolean)")
    op.execute("DROP FUNCTION IF EXISTS analytics_segment(jsonb)")
    for rollup, (keys, counts) in KEYS.items():
        added = _added_columns(rollup)
        kept = [key for key in keys if key not in added]
        sums = ", ".join(f"sum({count})" for count in counts)
        columns = ", ".join((*kept, *counts))
        # Rows that differ only by segment or channel summed into one (the key of `0015`).
        op.execute(
            f"WITH moved AS (DELETE FROM {rollup} RETURNING {columns}) "  # noqa: S608 (constants only)
            f"INSERT INTO {rollup} ({columns}) SELECT {', '.join(kept)}, {sums} FROM moved "
            f"GROUP BY {', '.join(kept)}"
        )
        for table in (rollup, f"{rollup}_delta"):
            op.execute(f"ALTER TABLE {table} {', '.join(f'DROP COLUMN {column}' for column in added)}")
        _set_key(rollup, kept)
    op.execute(m._FUNCTIONS)
    op.execute(m.FOLD)
