"""analytics: rollup tables kept by triggers in the transaction of each fact

Revision ID: 0013
Revises: 0012

Each fact table (enrollments, enrollment steps, messages, message events, send decisions) gets an AFTER
trigger that adds the row's contribution to small rollup tables keyed by facility, journey, channel and
hour, so an analytics query reads thousands of rollup rows, never millions of facts. A change to a fact
subtracts its old contribution and adds its new one, so the rollups equal a GROUP BY over the facts
(`aftercare analytics check` compares them). The trigger functions are SECURITY DEFINER: a caller limited
to some facilities writes the rollup of a fact it may write, whichever facility the fact is counted in.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from aftercare.facilities.policies import SCOPED_ROLE

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KEY = sa.String(length=64)


def _counter(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger(), server_default="0", nullable=False)


def _hour() -> sa.Column[Any]:
    return sa.Column("hour", sa.DateTime(timezone=True), nullable=False)


def _facility() -> sa.Column[str]:
    return sa.Column("facility", _KEY, nullable=False)


def _journey() -> list[sa.Column[Any]]:
    return [
        sa.Column("journey_key", _KEY, nullable=False),
        sa.Column("journey_version", sa.Integer(), nullable=False),
    ]


ROLLUPS = (
    "analytics_entries",
    "analytics_outcomes",
    "analytics_steps",
    "analytics_step_exits",
    "analytics_waiting",
    "analytics_durations",
    "analytics_paths",
    "analytics_messages",
    "analytics_decisions",
)

_FUNCTIONS = r"""
CREATE FUNCTION analytics_facility(patient text) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT min(facility) FROM patient_facilities WHERE patient_id = patient), '')
$$;

CREATE FUNCTION analytics_hour(moment timestamptz) RETURNS timestamptz LANGUAGE sql IMMUTABLE AS $$
    SELECT date_trunc('hour', moment, 'UTC')
$$;

-- Upper bounds (seconds) of the elapsed-time histogram; the last one stands for "longer".
-- Rows of the busiest rollups are split in SHARDS by the fact's id, so concurrent sends in the same hour
-- and channel seldom wait for each other's row lock; queries sum the shards.
CREATE FUNCTION analytics_shard(fact text) RETURNS smallint LANGUAGE sql IMMUTABLE AS $$
    SELECT (abs(hashtext(fact)) % 16)::smallint
$$;

CREATE FUNCTION analytics_le(elapsed interval) RETURNS integer LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(min(bound), 2147483647) FROM unnest(ARRAY[
        60, 300, 900, 1800, 3600, 7200, 14400, 28800, 43200, 86400, 172800, 259200, 432000, 604800,
        864000, 1209600, 1814400, 2592000, 5184000, 7776000]) AS bound
    WHERE extract(epoch FROM elapsed) <= bound
$$;

-- One enrollment row's contribution (sign +1 or -1) to the entries, the waiting and the outcomes.
CREATE FUNCTION analytics_count_enrollment(e enrollments, delta integer, with_entry boolean,
                                           with_waiting boolean, with_outcome boolean)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    fac text := analytics_facility(e.patient_id);
    ended timestamptz := coalesce(e.ended_at, e.updated_at);
BEGIN
    IF with_entry THEN
        INSERT INTO analytics_entries AS t (facility, journey_key, journey_version, hour, entered)
        VALUES (fac, e.journey_key, e.journey_version, analytics_hour(e.started_at), delta)
        ON CONFLICT (facility, journey_key, journey_version, hour) DO UPDATE SET entered = t.entered + delta;
    END IF;
    IF with_waiting AND e.status = 'running' AND e.current_step IS NOT NULL THEN
        INSERT INTO analytics_waiting AS t (facility, journey_key, journey_version, step, waiting)
        VALUES (fac, e.journey_key, e.journey_version, e.current_step, delta)
        ON CONFLICT (facility, journey_key, journey_version, step) DO UPDATE SET waiting = t.waiting + delta;
    END IF;
    IF with_outcome AND e.status <> 'running' THEN
        INSERT INTO analytics_outcomes AS t (facility, journey_key, journey_version, hour, status, outcome, n)
        VALUES (fac, e.journey_key, e.journey_version, analytics_hour(ended), e.status,
                coalesce(e.outcome, ''), delta)
        ON CONFLICT (facility, journey_key, journey_version, hour, status, outcome)
        DO UPDATE SET n = t.n + delta;
        -- The A/B paths this enrollment took, with how it ended.
        INSERT INTO analytics_paths AS t (facility, journey_key, journey_version, step, path, status, outcome, n)
        SELECT fac, e.journey_key, e.journey_version, s.step, substr(s.result, 6), e.status,
               coalesce(e.outcome, ''), delta * count(*)
        FROM enrollment_steps s WHERE s.enrollment_id = e.id AND s.result LIKE 'path %'
        GROUP BY s.step, s.result
        ON CONFLICT (facility, journey_key, journey_version, step, path, status, outcome)
        DO UPDATE SET n = t.n + excluded.n;
        INSERT INTO analytics_durations AS t (facility, journey_key, journey_version, hour, point, le, n)
        VALUES (fac, e.journey_key, e.journey_version, analytics_hour(ended),
                'goal:' || coalesce(e.outcome, ''), analytics_le(ended - e.started_at), delta)
        ON CONFLICT (facility, journey_key, journey_version, hour, point, le) DO UPDATE SET n = t.n + delta;
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
    fac := analytics_facility(e.patient_id);
    INSERT INTO analytics_steps AS t (facility, journey_key, journey_version, hour, step, result, branch, n)
    VALUES (fac, e.journey_key, e.journey_version, analytics_hour(NEW.at), NEW.step, NEW.result,
            CASE WHEN NEW.result = 'matched' THEN coalesce(NEW.detail, '') ELSE '' END, 1)
    ON CONFLICT (facility, journey_key, journey_version, hour, step, result, branch)
    DO UPDATE SET n = t.n + 1;
    INSERT INTO analytics_durations AS t (facility, journey_key, journey_version, hour, point, le, n)
    VALUES (fac, e.journey_key, e.journey_version, analytics_hour(NEW.at), NEW.step,
            analytics_le(NEW.at - e.started_at), 1)
    ON CONFLICT (facility, journey_key, journey_version, hour, point, le)
    DO UPDATE SET n = t.n + 1;
    IF NEW.result LIKE 'path %' AND e.status <> 'running' THEN
        -- A path recorded with the end in one projection: the enrollment's end did not see it.
        INSERT INTO analytics_paths AS t (facility, journey_key, journey_version, step, path, status, outcome, n)
        VALUES (fac, e.journey_key, e.journey_version, NEW.step, substr(NEW.result, 6), e.status,
                coalesce(e.outcome, ''), 1)
        ON CONFLICT (facility, journey_key, journey_version, step, path, status, outcome)
        DO UPDATE SET n = t.n + 1;
    END IF;
    IF NEW.step IN ('<exited>', '<cancelled>', '<failed>') THEN
        SELECT s.step INTO last_step FROM enrollment_steps s
        WHERE s.enrollment_id = NEW.enrollment_id AND s.seq < NEW.seq AND s.step NOT LIKE '<%'
        ORDER BY s.seq DESC LIMIT 1;
        INSERT INTO analytics_step_exits AS t
            (facility, journey_key, journey_version, hour, after_step, status, n)
        VALUES (fac, e.journey_key, e.journey_version, analytics_hour(NEW.at), coalesce(last_step, ''),
                trim(both '<>' FROM NEW.step), 1)
        ON CONFLICT (facility, journey_key, journey_version, hour, after_step, status)
        DO UPDATE SET n = t.n + 1;
    END IF;
    RETURN NULL;
END
$$;

-- A sent message was replied to (a text that is not a keyword) or followed by an opt-out (a consent
-- revoked) within 7 days of its creation: the attribution of the campaigns' results.
CREATE FUNCTION analytics_replied(m messages) RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT m.sent_at IS NOT NULL AND EXISTS (
        SELECT 1 FROM inbound_messages i WHERE i.patient_id = m.patient_id AND i.keyword IS NULL
        AND i.received_at >= m.created_at AND i.received_at < m.created_at + interval '7 days')
$$;

CREATE FUNCTION analytics_opted_out(m messages) RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT m.sent_at IS NOT NULL AND EXISTS (
        SELECT 1 FROM consent_events c WHERE c.patient_id = m.patient_id AND c.status = 'revoked'
        AND c.recorded_at >= m.created_at AND c.recorded_at < m.created_at + interval '7 days')
$$;

-- One message row's contribution (sign +1 or -1) to its hour's counts.
CREATE FUNCTION analytics_count_message(m messages, delta integer, with_bounce boolean) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO analytics_messages AS t (
        facility, hour, channel, journey_key, template_key, campaign_run_id, shard,
        messages, sent, delivered, failed, blocked, opened, clicked, bounced, replied, opted_out)
    VALUES (
        coalesce(m.facility, analytics_facility(m.patient_id)), analytics_hour(m.created_at), m.channel,
        coalesce(m.journey_key, ''), coalesce(m.template_key, ''), coalesce(m.campaign_run_id, ''),
        analytics_shard(m.id),
        delta,
        delta * (m.sent_at IS NOT NULL)::int,
        delta * (m.delivered_at IS NOT NULL OR m.status IN ('delivered', 'printed'))::int,
        delta * (m.status IN ('failed', 'undelivered'))::int,
        delta * (m.status = 'skipped')::int,
        delta * (m.opened_at IS NOT NULL)::int,
        delta * (m.clicked_at IS NOT NULL)::int,
        CASE WHEN with_bounce THEN delta * (EXISTS (
            SELECT 1 FROM message_events me WHERE me.message_id = m.id AND me.event = 'bounce'))::int
        ELSE 0 END,
        delta * analytics_replied(m)::int,
        delta * analytics_opted_out(m)::int)
    ON CONFLICT (facility, hour, channel, journey_key, template_key, campaign_run_id, shard) DO UPDATE SET
        messages = t.messages + excluded.messages, sent = t.sent + excluded.sent,
        delivered = t.delivered + excluded.delivered, failed = t.failed + excluded.failed,
        blocked = t.blocked + excluded.blocked, opened = t.opened + excluded.opened,
        clicked = t.clicked + excluded.clicked, bounced = t.bounced + excluded.bounced,
        replied = t.replied + excluded.replied, opted_out = t.opted_out + excluded.opted_out;
END
$$;

CREATE FUNCTION analytics_message_change() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM analytics_count_message(NEW, 1, false);
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM analytics_count_message(OLD, -1, true);
    ELSIF (OLD.status, OLD.sent_at IS NULL, OLD.delivered_at IS NULL, OLD.opened_at IS NULL,
           OLD.clicked_at IS NULL, OLD.created_at, OLD.channel, OLD.facility, OLD.journey_key,
           OLD.template_key, OLD.campaign_run_id)
        IS DISTINCT FROM (NEW.status, NEW.sent_at IS NULL, NEW.delivered_at IS NULL, NEW.opened_at IS NULL,
           NEW.clicked_at IS NULL, NEW.created_at, NEW.channel, NEW.facility, NEW.journey_key,
           NEW.template_key, NEW.campaign_run_id) THEN
        -- Only a change to something counted moves the rollup (not attempts or provider ids); the
        -- bounce moves with the row.
        PERFORM analytics_count_message(OLD, -1, true);
        PERFORM analytics_count_message(NEW, 1, true);
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION analytics_message_event() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public AS $$
DECLARE
    m messages;
BEGIN
    IF NEW.event <> 'bounce' OR EXISTS (
        SELECT 1 FROM message_events WHERE message_id = NEW.message_id AND event = 'bounce' AND id <> NEW.id
    ) THEN
        RETURN NULL;  -- a message counts as bounced once
    END IF;
    SELECT * INTO m FROM messages WHERE id = NEW.message_id;
    UPDATE analytics_messages SET bounced = bounced + 1
    WHERE facility = coalesce(m.facility, analytics_facility(m.patient_id))
      AND hour = analytics_hour(m.created_at)
      AND channel = m.channel AND journey_key = coalesce(m.journey_key, '')
      AND template_key = coalesce(m.template_key, '') AND campaign_run_id = coalesce(m.campaign_run_id, '')
      AND shard = analytics_shard(m.id);
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
    UPDATE analytics_messages t SET
        replied = t.replied + CASE WHEN reply THEN c.n ELSE 0 END,
        opted_out = t.opted_out + CASE WHEN reply THEN 0 ELSE c.n END
    FROM (
        SELECT coalesce(m.facility, analytics_facility(m.patient_id)) AS facility,
               analytics_hour(m.created_at) AS hour, m.channel, coalesce(m.journey_key, '') AS journey_key,
               coalesce(m.template_key, '') AS template_key, coalesce(m.campaign_run_id, '') AS campaign_run_id,
               analytics_shard(m.id) AS shard, count(*) AS n
        FROM messages m
        WHERE m.patient_id = patient AND m.sent_at IS NOT NULL
          AND m.created_at <= moment AND moment < m.created_at + interval '7 days'
          AND NOT EXISTS (
              SELECT 1 FROM inbound_messages i WHERE reply AND i.patient_id = m.patient_id
              AND i.keyword IS NULL AND i.provider_message_id <> own_reply
              AND i.received_at >= m.created_at AND i.received_at < m.created_at + interval '7 days')
          AND NOT EXISTS (
              SELECT 1 FROM consent_events ce WHERE NOT reply AND ce.patient_id = m.patient_id
              AND ce.status = 'revoked' AND ce.id <> own_consent
              AND ce.recorded_at >= m.created_at AND ce.recorded_at < m.created_at + interval '7 days')
        GROUP BY 1, 2, 3, 4, 5, 6, 7
    ) c
    WHERE t.facility = c.facility AND t.hour = c.hour AND t.channel = c.channel
      AND t.journey_key = c.journey_key AND t.template_key = c.template_key
      AND t.campaign_run_id = c.campaign_run_id AND t.shard = c.shard;
    RETURN NULL;
END
$$;

CREATE FUNCTION analytics_decision_recorded() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public AS $$
BEGIN
    INSERT INTO analytics_decisions AS t (facility, hour, channel, journey_key, decision, rule, shard, n)
    VALUES (analytics_facility(NEW.patient_id), analytics_hour(NEW.created_at), coalesce(NEW.channel, ''),
            coalesce(NEW.journey_key, ''), NEW.decision, NEW.rule, analytics_shard(NEW.idempotency_key), 1)
    ON CONFLICT (facility, hour, channel, journey_key, decision, rule, shard) DO UPDATE SET n = t.n + 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER analytics_rollup AFTER INSERT OR UPDATE OR DELETE ON enrollments
    FOR EACH ROW EXECUTE FUNCTION analytics_enrollment_change();
CREATE TRIGGER analytics_rollup AFTER INSERT ON enrollment_steps
    FOR EACH ROW EXECUTE FUNCTION analytics_step_recorded();
CREATE TRIGGER analytics_rollup AFTER INSERT OR UPDATE OR DELETE ON messages
    FOR EACH ROW EXECUTE FUNCTION analytics_message_change();
CREATE TRIGGER analytics_rollup AFTER INSERT ON message_events
    FOR EACH ROW EXECUTE FUNCTION analytics_message_event();
CREATE TRIGGER analytics_rollup AFTER INSERT ON inbound_messages
    FOR EACH ROW EXECUTE FUNCTION analytics_patient_answered();
CREATE TRIGGER analytics_rollup AFTER INSERT ON consent_events
    FOR EACH ROW EXECUTE FUNCTION analytics_patient_answered();
CREATE TRIGGER analytics_rollup AFTER INSERT ON send_decisions
    FOR EACH ROW EXECUTE FUNCTION analytics_decision_recorded();
"""

_DROP = """
DROP TRIGGER IF EXISTS analytics_rollup ON enrollments;
DROP TRIGGER IF EXISTS analytics_rollup ON enrollment_steps;
DROP TRIGGER IF EXISTS analytics_rollup ON messages;
DROP TRIGGER IF EXISTS analytics_rollup ON message_events;
DROP TRIGGER IF EXISTS analytics_rollup ON send_decisions;
DROP TRIGGER IF EXISTS analytics_rollup ON inbound_messages;
DROP TRIGGER IF EXISTS analytics_rollup ON consent_events;
DROP FUNCTION IF EXISTS analytics_patient_answered();
DROP FUNCTION IF EXISTS analytics_enrollment_change();
DROP FUNCTION IF EXISTS analytics_step_recorded();
DROP FUNCTION IF EXISTS analytics_message_change();
DROP FUNCTION IF EXISTS analytics_message_event();
DROP FUNCTION IF EXISTS analytics_decision_recorded();
DROP FUNCTION IF EXISTS analytics_count_enrollment(enrollments, integer, boolean, boolean, boolean);
DROP FUNCTION IF EXISTS analytics_count_message(messages, integer, boolean);
DROP FUNCTION IF EXISTS analytics_replied(messages);
DROP FUNCTION IF EXISTS analytics_opted_out(messages);
DROP FUNCTION IF EXISTS analytics_le(interval);
DROP FUNCTION IF EXISTS analytics_shard(text);
DROP FUNCTION IF EXISTS analytics_hour(timestamptz);
DROP FUNCTION IF EXISTS analytics_facility(text);
"""


def upgrade() -> None:
    journey_key = ("facility", "journey_key", "journey_version")
    op.create_table(
        "analytics_entries",
        _facility(),
        *_journey(),
        _hour(),
        _counter("entered"),
        sa.PrimaryKeyConstraint(*journey_key, "hour", name=op.f("pk_analytics_entries")),
    )
    op.create_table(
        "analytics_outcomes",
        _facility(),
        *_journey(),
        _hour(),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("outcome", _KEY, nullable=False),
        _counter("n"),
        sa.PrimaryKeyConstraint(
            *journey_key, "hour", "status", "outcome", name=op.f("pk_analytics_outcomes")
        ),
    )
    op.create_table(
        "analytics_steps",
        _facility(),
        *_journey(),
        _hour(),
        sa.Column("step", _KEY, nullable=False),
        sa.Column("result", _KEY, nullable=False),
        sa.Column("branch", sa.Text(), nullable=False),
        _counter("n"),
        sa.PrimaryKeyConstraint(
            *journey_key, "hour", "step", "result", "branch", name=op.f("pk_analytics_steps")
        ),
    )
    op.create_table(
        "analytics_step_exits",
        _facility(),
        *_journey(),
        _hour(),
        sa.Column("after_step", _KEY, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        _counter("n"),
        sa.PrimaryKeyConstraint(
            *journey_key, "hour", "after_step", "status", name=op.f("pk_analytics_step_exits")
        ),
    )
    op.create_table(
        "analytics_waiting",
        _facility(),
        *_journey(),
        sa.Column("step", _KEY, nullable=False),
        _counter("waiting"),
        sa.PrimaryKeyConstraint(*journey_key, "step", name=op.f("pk_analytics_waiting")),
    )
    op.create_table(
        "analytics_durations",
        _facility(),
        *_journey(),
        _hour(),
        sa.Column("point", sa.String(length=80), nullable=False),
        sa.Column("le", sa.Integer(), nullable=False),
        _counter("n"),
        sa.PrimaryKeyConstraint(*journey_key, "hour", "point", "le", name=op.f("pk_analytics_durations")),
    )
    op.create_table(
        "analytics_paths",
        _facility(),
        *_journey(),
        sa.Column("step", _KEY, nullable=False),
        sa.Column("path", _KEY, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("outcome", _KEY, nullable=False),
        _counter("n"),
        sa.PrimaryKeyConstraint(
            *journey_key, "step", "path", "status", "outcome", name=op.f("pk_analytics_paths")
        ),
    )
    op.create_table(
        "analytics_messages",
        _facility(),
        _hour(),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("journey_key", _KEY, nullable=False),
        sa.Column("template_key", _KEY, nullable=False),
        sa.Column("campaign_run_id", sa.String(length=200), nullable=False),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
        *[
            _counter(name)
            for name in (
                "messages",
                "sent",
                "delivered",
                "failed",
                "blocked",
                "opened",
                "clicked",
                "bounced",
                "replied",
                "opted_out",
            )
        ],
        sa.PrimaryKeyConstraint(
            "facility",
            "hour",
            "channel",
            "journey_key",
            "template_key",
            "campaign_run_id",
            "shard",
            name=op.f("pk_analytics_messages"),
        ),
    )
    op.create_table(
        "analytics_decisions",
        _facility(),
        _hour(),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("journey_key", _KEY, nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("rule", sa.String(length=32), nullable=False),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
        _counter("n"),
        sa.PrimaryKeyConstraint(
            "facility",
            "hour",
            "channel",
            "journey_key",
            "decision",
            "rule",
            "shard",
            name=op.f("pk_analytics_decisions"),
        ),
    )
    op.create_index("ix_analytics_messages_hour", "analytics_messages", ["hour"])
    op.execute(_FUNCTIONS)
    # Aggregates carry no patient, only the facility they are counted in: a caller limited to some
    # facilities reads their rows only.
    for table in ROLLUPS:
        op.execute(
            f"CREATE POLICY facility_scope ON {table} TO {SCOPED_ROLE} "
            "USING (facility = ANY ((SELECT aftercare_facilities())::text[]))"
        )
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")


def downgrade() -> None:
    op.execute(_DROP)
    for table in reversed(ROLLUPS):
        op.execute(f"DROP POLICY IF EXISTS facility_scope ON {table}")
        op.drop_table(table)
