"""analytics: the triggers append delta rows; a folder adds them into the rollups

Revision ID: 0015
Revises: 0016

Migration `0013`'s triggers upserted every fact's contribution into the rollup rows in the fact's own
transaction: an index probe, a row lock on a hot row (every send of an hour and channel updates one of
16 rows) and a new row version each time. Here each rollup gets an append-only `<rollup>_delta` table of
the same columns, without a key or an index, and the triggers only append the fact's contribution to it
(a signed row: +1 for the new state, -1 for the old). `analytics_fold()` moves the deltas into the
rollups (one `DELETE ... RETURNING` grouped into one upsert per rollup, in one transaction); the worker
calls it every second. Readers read the rollup and its pending deltas together, so what they count is
exactly the facts their snapshot sees, folded or not; the folder only keeps the deltas few.

Updates that change nothing counted no longer call a trigger function at all (a `WHEN` condition), and
each trigger statement is rendered by `_add()`, once per rollup, from the rollup's own column list.
The delta tables are logged: a crash loses no counted fact (an unlogged table would come back empty).
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op

from aftercare.facilities.policies import SCOPED_ROLE

revision: str = "0015"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JOURNEY = ("facility", "journey_key", "journey_version")
_MESSAGE_COUNTS = (
    *("messages", "sent", "delivered", "failed", "blocked", "opened", "clicked", "bounced", "replied"),
    "opted_out",
)
# Each rollup: its key columns and its counters (the delta table has the same columns).
KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "analytics_entries": ((*_JOURNEY, "hour"), ("entered",)),
    "analytics_outcomes": ((*_JOURNEY, "hour", "status", "outcome"), ("n",)),
    "analytics_steps": ((*_JOURNEY, "hour", "step", "result", "branch"), ("n",)),
    "analytics_step_exits": ((*_JOURNEY, "hour", "after_step", "status"), ("n",)),
    "analytics_waiting": ((*_JOURNEY, "step"), ("waiting",)),
    "analytics_durations": ((*_JOURNEY, "hour", "point", "le"), ("n",)),
    "analytics_paths": ((*_JOURNEY, "step", "path", "status", "outcome"), ("n",)),
    "analytics_messages": (
        ("facility", "hour", "channel", "journey_key", "template_key", "campaign_run_id", "shard"),
        _MESSAGE_COUNTS,
    ),
    "analytics_failures": (
        ("facility", "hour", "channel", "journey_key", "template_key", "campaign_run_id", "reason"),
        ("n",),
    ),
    "analytics_decisions": (
        ("facility", "hour", "channel", "journey_key", "decision", "rule", "shard"),
        ("n",),
    ),
}
# The message fields a rollup counts: an update that changes none of them calls no trigger.
_MESSAGE_COUNTED = (
    *("status", "sent_at IS NULL", "delivered_at IS NULL", "opened_at IS NULL", "clicked_at IS NULL"),
    *("created_at", "channel", "facility", "journey_key", "template_key", "campaign_run_id"),
    *("reason", "provider"),
)
_ENROLLMENT_COUNTED = ("status", "current_step", "outcome", "ended_at", "updated_at")


def _changed(fields: Sequence[str]) -> str:
    """A trigger's WHEN condition: one of the fields differs between the old row and the new."""
    old, new = (", ".join(f"{row}.{field}" for field in fields) for row in ("OLD", "NEW"))
    return f"(({old}) IS DISTINCT FROM ({new}))"


def _add(rollup: str, values: str, *, counters: Sequence[str] | None = None, select: str = "") -> str:
    """The statement appending a contribution to a rollup's delta table: `values` are the key columns'
    then the counters' expressions (a `SELECT` list when `select` names its FROM part)."""
    keys, counts = KEYS[rollup]
    columns = ", ".join((*keys, *(counts if counters is None else counters)))
    source = f"SELECT {values} {select}" if select else f"VALUES ({values})"
    return f"INSERT INTO {rollup}_delta ({columns}) {source};"


def _journey(e: str, hour: str) -> str:
    """A journey rollup's leading key values for enrollment `e` (and the hour, when the rollup has one)."""
    return f"fac, {e}.journey_key, {e}.journey_version" + (f", analytics_hour({hour})" if hour else "")


# The SQL helper functions of `0013` that hold a query (which facility, replied, opted out, which
# bucket) are not inlined by the planner, and a SQL function called from a trigger is planned anew on
# each call: most of `0013`'s cost per fact. The triggers here write the same expressions inline, so
# PL/pgSQL plans each statement once per session; `aftercare analytics check` still recomputes with
# the functions, so a difference between the two would show.
def _facility(patient: str) -> str:
    return (
        "coalesce((SELECT min(pf.facility) FROM patient_facilities pf "  # noqa: S608 (constants only)
        f"WHERE pf.patient_id = {patient}), '')"
    )


def _within_7_days(m: str, table: str, condition: str, moment: str) -> str:
    """Message `m` was sent and `table` has a row of its patient matching `condition` in its 7 days."""
    return (
        f"({m}.sent_at IS NOT NULL AND EXISTS (SELECT 1 FROM {table} x "  # noqa: S608 (constants only)
        f"WHERE x.patient_id = {m}.patient_id "
        f"AND {condition} AND x.{moment} >= {m}.created_at AND x.{moment} < {m}.created_at + interval '7 days'))"
    )


_REVOKED = "x.status = 'revoked'"


def _le(elapsed: str) -> str:
    return (
        "(SELECT coalesce(min(bound), 2147483647) FROM unnest(ARRAY[60, 300, 900, 1800, 3600, 7200, 14400, "
        "28800, 43200, 86400, 172800, 259200, 432000, 604800, 864000, 1209600, 1814400, 2592000, 5184000, "
        f"7776000]) AS bound WHERE extract(epoch FROM {elapsed}) <= bound)"
    )


# The shard of `0013` spread a busy hour's upserts over 16 rows so that senders seldom waited for one
# row's lock. Only the folder writes the rollups now, so every fact goes to shard 0 (16 times fewer
# rows to read); the column stays, part of the key.
_MESSAGE_KEY = (
    f"coalesce(m.facility, {_facility('m.patient_id')}), analytics_hour(m.created_at), m.channel, "
    "coalesce(m.journey_key, ''), coalesce(m.template_key, ''), coalesce(m.campaign_run_id, ''), 0"
)

# Each trigger's statements, by what they count (rendered into the functions below).
_ADD = {
    "enrollment_paths": _add(
        "analytics_paths",
        _journey("e", "") + ", s.step, substr(s.result, 6), e.status, coalesce(e.outcome, ''), "
        "delta * count(*)",
        select="FROM enrollment_steps s WHERE s.enrollment_id = e.id AND s.result LIKE 'path %' "
        "GROUP BY s.step, s.result",
    ),
    "goal_duration": _add(
        "analytics_durations",
        _journey("e", "ended") + ", 'goal:' || coalesce(e.outcome, ''), "
        f"{_le('ended - e.started_at')}, delta",
    ),
    "step": _add(
        "analytics_steps",
        _journey("e", "NEW.at") + ", NEW.step, NEW.result, "
        "CASE WHEN NEW.result = 'matched' THEN coalesce(NEW.detail, '') ELSE '' END, 1",
    ),
    "step_path": _add(
        "analytics_paths",
        _journey("e", "") + ", NEW.step, substr(NEW.result, 6), e.status, coalesce(e.outcome, ''), 1",
    ),
    "step_exit": _add(
        "analytics_step_exits",
        _journey("e", "NEW.at") + ", coalesce(last_step, ''), trim(both '<>' FROM NEW.step), 1",
    ),
    "message": _add(
        "analytics_messages",
        _MESSAGE_KEY + ", delta, delta * (m.sent_at IS NOT NULL)::int, "
        "delta * (m.delivered_at IS NOT NULL OR m.status IN ('delivered', 'printed'))::int, "
        "delta * (m.status IN ('failed', 'undelivered'))::int, delta * (m.status = 'skipped')::int, "
        "delta * (m.opened_at IS NOT NULL)::int, delta * (m.clicked_at IS NOT NULL)::int, "
        "CASE WHEN with_bounce THEN delta * (EXISTS (SELECT 1 FROM message_events me "
        "WHERE me.message_id = m.id AND me.event = 'bounce'))::int ELSE 0 END, "
        f"delta * {_within_7_days('m', 'inbound_messages', 'x.keyword IS NULL', 'received_at')}::int, "
        f"delta * {_within_7_days('m', 'consent_events', _REVOKED, 'recorded_at')}::int",
    ),
    "failure": _add(
        "analytics_failures",
        _MESSAGE_KEY.removesuffix(", 0")
        + ", analytics_failure_reason(m.provider, m.reason), delta",
    ),
    "bounce": _add(
        "analytics_messages",
        _MESSAGE_KEY + ", 1",
        counters=("bounced",),
        select="FROM messages m WHERE m.id = NEW.message_id",
    ),
    "answer": _add(
        "analytics_messages",
        _MESSAGE_KEY + ", CASE WHEN reply THEN 1 ELSE 0 END, CASE WHEN reply THEN 0 ELSE 1 END",
        counters=("replied", "opted_out"),
        select="""FROM messages m
    WHERE m.patient_id = patient AND m.sent_at IS NOT NULL
      AND m.created_at <= moment AND moment < m.created_at + interval '7 days'
      AND NOT EXISTS (
          SELECT 1 FROM inbound_messages i WHERE reply AND i.patient_id = m.patient_id
          AND i.keyword IS NULL AND i.provider_message_id <> own_reply
          AND i.received_at >= m.created_at AND i.received_at < m.created_at + interval '7 days')
      AND NOT EXISTS (
          SELECT 1 FROM consent_events ce WHERE NOT reply AND ce.patient_id = m.patient_id
          AND ce.status = 'revoked' AND ce.id <> own_consent
          AND ce.recorded_at >= m.created_at AND ce.recorded_at < m.created_at + interval '7 days')""",
    ),
    "decision": _add(
        "analytics_decisions",
        f"{_facility('NEW.patient_id')}, analytics_hour(NEW.created_at), coalesce(NEW.channel, ''), "
        "coalesce(NEW.journey_key, ''), NEW.decision, NEW.rule, 0, 1",
    ),
    "entry": _add("analytics_entries", _journey("e", "e.started_at") + ", delta"),
    "waiting": _add("analytics_waiting", _journey("e", "") + ", e.current_step, delta"),
    "outcome": _add(
        "analytics_outcomes", _journey("e", "ended") + ", e.status, coalesce(e.outcome, ''), delta"
    ),
    "step_duration": _add(
        "analytics_durations", _journey("e", "NEW.at") + f", NEW.step, {_le('NEW.at - e.started_at')}, 1"
    ),
}

_FUNCTIONS = rf"""
CREATE FUNCTION analytics_count_enrollment(e enrollments, delta integer, with_entry boolean,
                                           with_waiting boolean, with_outcome boolean)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    fac text := {_facility("e.patient_id")};
    ended timestamptz := coalesce(e.ended_at, e.updated_at);
BEGIN
    IF with_entry THEN
        {_ADD["entry"]}
    END IF;
    IF with_waiting AND e.status = 'running' AND e.current_step IS NOT NULL THEN
        {_ADD["waiting"]}
    END IF;
    IF with_outcome AND e.status <> 'running' THEN
        {_ADD["outcome"]}
        -- The A/B paths this enrollment took, with how it ended.
        {_ADD["enrollment_paths"]}
        {_ADD["goal_duration"]}
    END IF;
END
$$;

CREATE FUNCTION analytics_enrollment_change() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public AS $$
DECLARE
    moved_waiting boolean;
    moved_outcome boolean;
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM analytics_count_enrollment(NEW, 1, true, true, true);
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM analytics_count_enrollment(OLD, -1, true, true, true);
    ELSE
        moved_waiting := (OLD.status, OLD.current_step) IS DISTINCT FROM (NEW.status, NEW.current_step);
        moved_outcome := (OLD.status, OLD.outcome, OLD.ended_at, OLD.updated_at)
            IS DISTINCT FROM (NEW.status, NEW.outcome, NEW.ended_at, NEW.updated_at)
            AND (OLD.status <> 'running' OR NEW.status <> 'running');
        IF moved_waiting OR moved_outcome THEN
            PERFORM analytics_count_enrollment(OLD, -1, false, moved_waiting, moved_outcome);
            PERFORM analytics_count_enrollment(NEW, 1, false, moved_waiting, moved_outcome);
        END IF;
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION analytics_step_recorded() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public AS $$
DECLARE
    e enrollments;
    fac text;
    last_step text;
BEGIN
    SELECT * INTO e FROM enrollments WHERE id = NEW.enrollment_id;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    fac := {_facility("e.patient_id")};
    {_ADD["step"]}
    {_ADD["step_duration"]}
    IF NEW.result LIKE 'path %' AND e.status <> 'running' THEN
        -- A path recorded with the end in one projection: the enrollment's end did not see it.
        {_ADD["step_path"]}
    END IF;
    IF NEW.step IN ('<exited>', '<cancelled>', '<failed>') THEN
        SELECT s.step INTO last_step FROM enrollment_steps s
        WHERE s.enrollment_id = NEW.enrollment_id AND s.seq < NEW.seq AND s.step NOT LIKE '<%'
        ORDER BY s.seq DESC LIMIT 1;
        {_ADD["step_exit"]}
    END IF;
    RETURN NULL;
END
$$;

-- One message row's contribution (sign +1 or -1) to its hour's counts.
-- A failed message's reason as a label that carries no PHI (a provider's text may quote the address):
-- the provider and the error code its text gives (Twilio's `code 21211` or `error 30003`, an HTTP
-- status, an SMTP reply code), else `other`. Inlined by the planner (no query inside).
CREATE FUNCTION analytics_failure_reason(provider text, reason text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(provider, '') || ' ' || CASE
        WHEN reason IS NULL OR reason = '' THEN 'no reason'
        WHEN reason ~ '(code|error) [0-9]{{3,6}}' THEN 'code ' || substring(reason FROM '(?\:code|error) ([0-9]{{3,6}})')
        WHEN reason ~ 'HTTP [0-9]{{3}}' THEN 'HTTP ' || substring(reason FROM 'HTTP ([0-9]{{3}})')
        WHEN reason ~ '^[245][0-9][0-9][ -]' THEN 'SMTP ' || substring(reason FROM '^([0-9]{{3}})')
        ELSE 'other'
    END
$$;

CREATE FUNCTION analytics_count_message(m messages, delta integer, with_bounce boolean) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    {_ADD["message"]}
    IF m.status IN ('failed', 'undelivered') THEN
        {_ADD["failure"]}
    END IF;
END
$$;

CREATE FUNCTION analytics_message_change() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public AS $$
BEGIN
    -- An update reaches here only when something counted changed (the trigger's WHEN); the bounce
    -- moves with the row.
    IF TG_OP <> 'INSERT' THEN
        PERFORM analytics_count_message(OLD, -1, true);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM analytics_count_message(NEW, 1, TG_OP = 'UPDATE');
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION analytics_message_event() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public AS $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM message_events WHERE message_id = NEW.message_id AND event = 'bounce' AND id <> NEW.id
    ) THEN
        RETURN NULL;  -- a message counts as bounced once
    END IF;
    {_ADD["bounce"]}
    RETURN NULL;
END
$$;

-- A reply or an opt-out: each sent message of the patient in the 7 days before that had none yet now has one.
CREATE FUNCTION analytics_patient_answered() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public AS $$
DECLARE
    reply boolean := TG_TABLE_NAME = 'inbound_messages';
    moment timestamptz;
    patient text := NEW.patient_id;
    own_reply text;  -- this row's key, left out of "had one already" (fields through to_jsonb:
    -- the function serves two tables, and PL/pgSQL resolves NEW.field when it plans)
    own_consent bigint;
BEGIN
    IF reply THEN
        IF patient IS NULL OR to_jsonb(NEW) ->> 'keyword' IS NOT NULL THEN
            RETURN NULL;
        END IF;
        moment := (to_jsonb(NEW) ->> 'received_at')::timestamptz;
        own_reply := to_jsonb(NEW) ->> 'provider_message_id';
    ELSE
        IF to_jsonb(NEW) ->> 'status' <> 'revoked' THEN
            RETURN NULL;
        END IF;
        moment := (to_jsonb(NEW) ->> 'recorded_at')::timestamptz;
        own_consent := (to_jsonb(NEW) ->> 'id')::bigint;
    END IF;
    {_ADD["answer"]}
    RETURN NULL;
END
$$;

CREATE FUNCTION analytics_decision_recorded() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public AS $$
BEGIN
    {_ADD["decision"]}
    RETURN NULL;
END
$$;

CREATE TRIGGER analytics_rollup AFTER INSERT OR DELETE ON enrollments
    FOR EACH ROW EXECUTE FUNCTION analytics_enrollment_change();
CREATE TRIGGER analytics_rollup_update AFTER UPDATE ON enrollments FOR EACH ROW
    WHEN {_changed(_ENROLLMENT_COUNTED)} EXECUTE FUNCTION analytics_enrollment_change();
CREATE TRIGGER analytics_rollup AFTER INSERT ON enrollment_steps
    FOR EACH ROW EXECUTE FUNCTION analytics_step_recorded();
CREATE TRIGGER analytics_rollup AFTER INSERT OR DELETE ON messages
    FOR EACH ROW EXECUTE FUNCTION analytics_message_change();
CREATE TRIGGER analytics_rollup_update AFTER UPDATE ON messages FOR EACH ROW
    WHEN {_changed(_MESSAGE_COUNTED)} EXECUTE FUNCTION analytics_message_change();
CREATE TRIGGER analytics_rollup AFTER INSERT ON message_events
    FOR EACH ROW WHEN (NEW.event = 'bounce') EXECUTE FUNCTION analytics_message_event();
CREATE TRIGGER analytics_rollup AFTER INSERT ON inbound_messages
    FOR EACH ROW EXECUTE FUNCTION analytics_patient_answered();
CREATE TRIGGER analytics_rollup AFTER INSERT ON consent_events
    FOR EACH ROW EXECUTE FUNCTION analytics_patient_answered();
CREATE TRIGGER analytics_rollup AFTER INSERT ON send_decisions
    FOR EACH ROW EXECUTE FUNCTION analytics_decision_recorded();
"""


def _fold(rollup: str) -> str:
    """The statement moving a rollup's pending deltas into it: taken out and summed per key."""
    keys, counts = KEYS[rollup]
    columns = ", ".join((*keys, *counts))
    sums = ", ".join(f"sum({count})" for count in counts)
    added = ", ".join(f"{count} = t.{count} + excluded.{count}" for count in counts)
    return (
        f"WITH taken AS (DELETE FROM {rollup}_delta RETURNING {columns}) "
        f"INSERT INTO {rollup} AS t ({columns}) SELECT {', '.join(keys)}, {sums} FROM taken "
        f"GROUP BY {', '.join(keys)} ORDER BY {', '.join(keys)} "
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {added};\n"
        "    GET DIAGNOSTICS written = ROW_COUNT; folded := folded + written;"
    )


# One folder at a time (the advisory lock): another caller returns at once, -1, and leaves it the work.
FOLD = f"""
CREATE FUNCTION analytics_fold() RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public AS $$
DECLARE
    folded bigint := 0;
    written bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('analytics_fold')) THEN
        RETURN -1;
    END IF;
    {chr(10).join("    " + _fold(rollup) for rollup in KEYS).strip()}
    RETURN folded;
END
$$;
"""

_TRIGGERS = {
    "enrollments": ("analytics_rollup", "analytics_rollup_update"),
    "enrollment_steps": ("analytics_rollup",),
    "messages": ("analytics_rollup", "analytics_rollup_update"),
    "message_events": ("analytics_rollup",),
    "inbound_messages": ("analytics_rollup",),
    "consent_events": ("analytics_rollup",),
    "send_decisions": ("analytics_rollup",),
}
_DROP_FUNCTIONS = (
    "analytics_fold()",
    "analytics_failure_reason(text, text)",
    "analytics_patient_answered()",
    "analytics_enrollment_change()",
    "analytics_step_recorded()",
    "analytics_message_change()",
    "analytics_message_event()",
    "analytics_decision_recorded()",
    "analytics_count_enrollment(enrollments, integer, boolean, boolean, boolean)",
    "analytics_count_message(messages, integer, boolean)",
)


_SHARDED = ("analytics_messages", "analytics_decisions")


def _compact(rollup: str) -> str:
    """The statement moving a sharded rollup's rows into shard 0, summed."""
    keys, counts = KEYS[rollup]
    columns = ", ".join((*keys, *counts))
    grouped = ", ".join(key for key in keys if key != "shard")
    chosen = ", ".join("0" if key == "shard" else key for key in keys)
    sums = ", ".join(f"sum({count})" for count in counts)
    added = ", ".join(f"{count} = t.{count} + excluded.{count}" for count in counts)
    return (
        f"WITH moved AS (DELETE FROM {rollup} WHERE shard <> 0 RETURNING {columns}) "
        f"INSERT INTO {rollup} AS t ({columns}) SELECT {chosen}, {sums} FROM moved GROUP BY {grouped} "
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {added}"
    )


# The downgrade gives `0013`'s triggers back their shards: the two rollups recomputed from the facts
# with `0013`'s helpers (as `aftercare analytics rebuild` did then).
_RESHARD = {
    "analytics_messages": (
        "SELECT coalesce(m.facility, analytics_facility(m.patient_id)), analytics_hour(m.created_at), "
        "m.channel, coalesce(m.journey_key, ''), coalesce(m.template_key, ''), "
        "coalesce(m.campaign_run_id, ''), analytics_shard(m.id), count(*), "
        "count(*) FILTER (WHERE m.sent_at IS NOT NULL), "
        "count(*) FILTER (WHERE m.delivered_at IS NOT NULL OR m.status IN ('delivered', 'printed')), "
        "count(*) FILTER (WHERE m.status IN ('failed', 'undelivered')), "
        "count(*) FILTER (WHERE m.status = 'skipped'), count(*) FILTER (WHERE m.opened_at IS NOT NULL), "
        "count(*) FILTER (WHERE m.clicked_at IS NOT NULL), count(*) FILTER (WHERE EXISTS ("
        "SELECT 1 FROM message_events me WHERE me.message_id = m.id AND me.event = 'bounce')), "
        "count(*) FILTER (WHERE analytics_replied(m)), count(*) FILTER (WHERE analytics_opted_out(m)) "
        "FROM messages m GROUP BY 1, 2, 3, 4, 5, 6, 7"
    ),
    "analytics_decisions": (
        "SELECT analytics_facility(patient_id), analytics_hour(created_at), coalesce(channel, ''), "
        "coalesce(journey_key, ''), decision, rule, analytics_shard(idempotency_key), count(*) "
        "FROM send_decisions GROUP BY 1, 2, 3, 4, 5, 6, 7"
    ),
}


def _drop_triggers() -> None:
    for table, triggers in _TRIGGERS.items():
        for trigger in triggers:
            op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
    for function in _DROP_FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {function}")


def _previous() -> ModuleType:
    """Migration `0013`, whose trigger functions the downgrade puts back."""
    path = Path(__file__).with_name("0013_analytics.py")
    spec = importlib.util.spec_from_file_location("aftercare_migration_0013", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade() -> None:
    # 0013's triggers go first (a fact written meanwhile waits for the lock on its table).
    _drop_triggers()
    op.create_table(
        "analytics_failures",
        sa.Column("facility", sa.String(length=64), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("journey_key", sa.String(length=64), nullable=False),
        sa.Column("template_key", sa.String(length=64), nullable=False),
        sa.Column("campaign_run_id", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("n", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint(*KEYS["analytics_failures"][0], name=op.f("pk_analytics_failures")),
    )
    for rollup in KEYS:
        op.execute(f"CREATE TABLE {rollup}_delta (LIKE {rollup} INCLUDING DEFAULTS)")
        op.execute(
            f"CREATE POLICY facility_scope ON {rollup}_delta TO {SCOPED_ROLE} "
            "USING (facility = ANY ((SELECT aftercare_facilities())::text[]))"
        )
        op.execute(f"ALTER TABLE {rollup}_delta ENABLE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY facility_scope ON analytics_failures TO {SCOPED_ROLE} "
        "USING (facility = ANY ((SELECT aftercare_facilities())::text[]))"
    )
    op.execute("ALTER TABLE analytics_failures ENABLE ROW LEVEL SECURITY")
    for rollup in _SHARDED:
        op.execute(_compact(rollup))
    op.execute(_FUNCTIONS)
    op.execute(FOLD)


def downgrade() -> None:
    # Pending deltas are folded in first, so the rollups stay equal to the facts.
    op.execute("SELECT analytics_fold()")
    _drop_triggers()
    for rollup in KEYS:
        op.execute(f"DROP TABLE {rollup}_delta")
    op.drop_table("analytics_failures")
    previous = _previous()
    op.execute(previous._DROP)
    op.execute(previous._FUNCTIONS)
    for rollup, query in _RESHARD.items():
        keys, counts = KEYS[rollup]
        op.execute(f"LOCK TABLE {rollup} IN EXCLUSIVE MODE")
        op.execute(f"DELETE FROM {rollup}")
        op.execute(f"INSERT INTO {rollup} ({', '.join((*keys, *counts))}) {query}")
