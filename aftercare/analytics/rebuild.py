"""Every rollup table recomputed from the raw facts with plain GROUP BYs, to compare with the kept one
(`aftercare analytics check`, `make analytics-check`) or to replace it (`aftercare analytics rebuild`).

The queries here are written independently of the triggers that keep the rollups (migrations `0013`,
`0015`, `0017`; the kept rows are the folded ones plus the pending deltas); they share only the helper
functions that say which segment and hour a fact is counted in (a fact's facility and its histogram
bucket are computed here by a join and a CASE of their own). A fact is counted in its patient's facility
as of the moment it was counted; after a patient moves to another facility, a check reports the
difference and a rebuild counts everything again in the facility of now.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from aftercare.analytics.window import BUCKET_BOUNDS, LONGER

_JOURNEY = ("facility", "journey_key", "journey_version", "segment")
_EXIT_STEPS = "('<exited>', '<cancelled>', '<failed>')"
_ENDED = "coalesce(e.ended_at, e.updated_at)"
# Each patient's facility `pf.facility` (the first by key, `analytics_facility()`'s rule), joined once per
# query rather than looked up per fact (which, at millions of facts, was most of a rebuild's time).
_PATIENT_FACILITY = (
    " LEFT JOIN (SELECT patient_id, min(facility) AS facility FROM patient_facilities "
    "GROUP BY patient_id) pf ON pf.patient_id = {}.patient_id"
)
_ENROLLMENT_FACILITY = _PATIENT_FACILITY.format("e")
# An enrollment `e`'s leading key values: its facility, journey, version and the segment it entered by.
_ENROLLMENT = "coalesce(pf.facility, ''), e.journey_key, e.journey_version, analytics_segment(e.trigger)"
_ENROLLMENT_NAMED = (
    "coalesce(pf.facility, '') AS facility, e.journey_key, e.journey_version, "
    "analytics_segment(e.trigger) AS segment"
)
# Which histogram bucket an elapsed time falls in (`analytics_le()`'s ladder, written as one CASE).
_BUCKET = (
    "CASE "
    + " ".join(f"WHEN extract(epoch FROM {{0}}) <= {bound} THEN {bound}" for bound in BUCKET_BOUNDS)
    + f" ELSE {LONGER} END"
)
# Step records `s` with their enrollment `e` and the message `m` that visit of the step sent (its
# idempotency key is `<enrollment>/<step>/<visit>`; a record's visit is its rank among the enrollment's
# records of that step).
_VISITS = (
    "FROM (SELECT r.*, row_number() OVER (PARTITION BY r.enrollment_id, r.step ORDER BY r.seq) AS visit "  # noqa: S608
    f"FROM enrollment_steps r) s JOIN enrollments e ON e.id = s.enrollment_id{_ENROLLMENT_FACILITY} "
    "LEFT JOIN messages m ON s.step NOT LIKE '<%' "
    "AND m.idempotency_key = s.enrollment_id || '/' || s.step || '/' || s.visit"
)
# Every name put into these statements is one of this module's constants, never input (hence the
# `noqa: S608` below).


@dataclass(frozen=True)
class Rollup:
    """A rollup table: its key columns, its counters and the query that recomputes it."""

    table: str
    keys: tuple[str, ...]
    counts: tuple[str, ...]
    query: str

    @property
    def columns(self) -> str:
        return ", ".join((*self.keys, *self.counts))

    @property
    def kept(self) -> str:
        """The kept rows: the rollup's with its pending deltas added, as every reader sees them (a row
        whose counters all add up to zero counts as absent)."""
        keys = ", ".join(self.keys)
        sums = ", ".join(f"sum({count})::bigint" for count in self.counts)
        nonzero = " OR ".join(f"sum({count}) <> 0" for count in self.counts)
        return (
            f"SELECT {keys}, {sums} FROM (SELECT {self.columns} FROM {self.table} "  # noqa: S608
            f"UNION ALL SELECT {self.columns} FROM {self.table}_delta) AS kept "
            f"GROUP BY {keys} HAVING {nonzero}"
        )


ROLLUPS: tuple[Rollup, ...] = (
    Rollup(
        "analytics_entries",
        (*_JOURNEY, "hour"),
        ("entered",),
        f"SELECT {_ENROLLMENT}, analytics_hour(e.started_at), count(*) "  # noqa: S608
        f"FROM enrollments e{_ENROLLMENT_FACILITY} GROUP BY 1, 2, 3, 4, 5",
    ),
    Rollup(
        "analytics_waiting",
        (*_JOURNEY, "step"),
        ("waiting",),
        f"SELECT {_ENROLLMENT}, e.current_step, count(*) FROM enrollments e{_ENROLLMENT_FACILITY} "  # noqa: S608
        "WHERE e.status = 'running' AND e.current_step IS NOT NULL GROUP BY 1, 2, 3, 4, 5",
    ),
    Rollup(
        "analytics_outcomes",
        (*_JOURNEY, "hour", "status", "outcome"),
        ("n",),
        f"SELECT {_ENROLLMENT}, analytics_hour({_ENDED}), e.status, coalesce(e.outcome, ''), "  # noqa: S608
        f"count(*) FROM enrollments e{_ENROLLMENT_FACILITY} WHERE e.status <> 'running' "
        "GROUP BY 1, 2, 3, 4, 5, 6, 7",
    ),
    Rollup(
        "analytics_steps",
        (*_JOURNEY, "hour", "step", "result", "branch", "channel"),
        ("n",),
        f"SELECT {_ENROLLMENT}, analytics_hour(s.at), s.step, s.result, "
        "CASE WHEN s.result = 'matched' THEN coalesce(s.detail, '') ELSE '' END, "
        f"coalesce(m.channel, ''), count(*) {_VISITS} GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9",
    ),
    Rollup(
        "analytics_step_exits",
        (*_JOURNEY, "hour", "after_step", "status"),
        ("n",),
        f"SELECT {_ENROLLMENT}, "  # noqa: S608
        "analytics_hour(s.at), coalesce((SELECT p.step FROM enrollment_steps p "
        "WHERE p.enrollment_id = s.enrollment_id "
        "AND p.seq < s.seq AND p.step NOT LIKE '<%' ORDER BY p.seq DESC LIMIT 1), ''), "
        "trim(both '<>' FROM s.step), count(*) "
        f"FROM enrollment_steps s JOIN enrollments e ON e.id = s.enrollment_id{_ENROLLMENT_FACILITY} "
        f"WHERE s.step IN {_EXIT_STEPS} GROUP BY 1, 2, 3, 4, 5, 6, 7",
    ),
    Rollup(
        "analytics_durations",
        (*_JOURNEY, "hour", "point", "le", "channel"),
        ("n",),
        "SELECT facility, journey_key, journey_version, segment, hour, point, le, channel, count(*) "  # noqa: S608
        f"FROM (SELECT {_ENROLLMENT_NAMED}, "
        f"analytics_hour(s.at) AS hour, s.step AS point, {_BUCKET.format('s.at - e.started_at')} AS le, "
        f"coalesce(m.channel, '') AS channel {_VISITS} "
        f"UNION ALL SELECT {_ENROLLMENT}, "
        f"analytics_hour({_ENDED}), 'goal:' || coalesce(e.outcome, ''), "
        f"{_BUCKET.format(_ENDED + ' - e.started_at')}, '' "
        f"FROM enrollments e{_ENROLLMENT_FACILITY} WHERE e.status <> 'running') AS points "
        "GROUP BY 1, 2, 3, 4, 5, 6, 7, 8",
    ),
    Rollup(
        "analytics_paths",
        (*_JOURNEY, "step", "path", "status", "outcome"),
        ("n",),
        f"SELECT {_ENROLLMENT}, s.step, "  # noqa: S608
        "substr(s.result, 6), e.status, coalesce(e.outcome, ''), count(*) "
        f"FROM enrollment_steps s JOIN enrollments e ON e.id = s.enrollment_id{_ENROLLMENT_FACILITY} "
        "WHERE e.status <> 'running' AND s.result LIKE 'path %' GROUP BY 1, 2, 3, 4, 5, 6, 7, 8",
    ),
    Rollup(
        "analytics_messages",
        ("facility", "hour", "channel", "journey_key", "template_key", "campaign_run_id", "shard"),
        (
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
        ),
        "SELECT coalesce(m.facility, pf.facility, ''), analytics_hour(m.created_at), "  # noqa: S608
        "m.channel, coalesce(m.journey_key, ''), coalesce(m.template_key, ''), "
        "coalesce(m.campaign_run_id, ''), 0, count(*), "
        "count(*) FILTER (WHERE m.sent_at IS NOT NULL), "
        "count(*) FILTER (WHERE m.delivered_at IS NOT NULL OR m.status IN ('delivered', 'printed')), "
        "count(*) FILTER (WHERE m.status IN ('failed', 'undelivered')), "
        "count(*) FILTER (WHERE m.status = 'skipped'), count(*) FILTER (WHERE m.opened_at IS NOT NULL), "
        "count(*) FILTER (WHERE m.clicked_at IS NOT NULL), count(*) FILTER (WHERE EXISTS ("
        "SELECT 1 FROM message_events me WHERE me.message_id = m.id AND me.event = 'bounce')), "
        "count(*) FILTER (WHERE m.sent_at IS NOT NULL AND EXISTS (SELECT 1 FROM inbound_messages i "
        "WHERE i.patient_id = m.patient_id AND i.keyword IS NULL AND i.received_at >= m.created_at "
        "AND i.received_at < m.created_at + interval '7 days')), "
        "count(*) FILTER (WHERE m.sent_at IS NOT NULL AND EXISTS (SELECT 1 FROM consent_events c "
        "WHERE c.patient_id = m.patient_id AND c.status = 'revoked' AND c.recorded_at >= m.created_at "
        "AND c.recorded_at < m.created_at + interval '7 days')) "
        f"FROM messages m{_PATIENT_FACILITY.format('m')} GROUP BY 1, 2, 3, 4, 5, 6, 7",
    ),
    Rollup(
        "analytics_failures",
        ("facility", "hour", "channel", "journey_key", "template_key", "campaign_run_id", "reason"),
        ("n",),
        "SELECT coalesce(m.facility, pf.facility, ''), analytics_hour(m.created_at), "  # noqa: S608
        "m.channel, coalesce(m.journey_key, ''), coalesce(m.template_key, ''), "
        "coalesce(m.campaign_run_id, ''), analytics_failure_reason(m.provider, m.reason), count(*) "
        f"FROM messages m{_PATIENT_FACILITY.format('m')} WHERE m.status IN ('failed', 'undelivered') "
        "GROUP BY 1, 2, 3, 4, 5, 6, 7",
    ),
    Rollup(
        "analytics_decisions",
        ("facility", "hour", "channel", "journey_key", "decision", "rule", "shard"),
        ("n",),
        "SELECT coalesce(pf.facility, ''), analytics_hour(d.created_at), coalesce(d.channel, ''), "  # noqa: S608
        "coalesce(d.journey_key, ''), d.decision, d.rule, 0, count(*) "
        f"FROM send_decisions d{_PATIENT_FACILITY.format('d')} GROUP BY 1, 2, 3, 4, 5, 6, 7",
    ),
)


@dataclass(frozen=True)
class Difference:
    """A rollup table whose kept rows differ from the recomputed ones: rows only kept, only recomputed."""

    table: str
    only_kept: list[tuple[object, ...]]
    only_recomputed: list[tuple[object, ...]]


async def compare(engine: AsyncEngine, sample: int = 20) -> list[Difference]:
    """Each rollup table against its recomputation, in one snapshot (no locks: writers go on)."""
    differences = []
    async with engine.connect() as connection:
        connection = await connection.execution_options(isolation_level="REPEATABLE READ")
        async with connection.begin():
            await connection.execute(text(_GROUPING_MEMORY))
            for rollup in ROLLUPS:
                kept = f"({rollup.kept} EXCEPT {rollup.query}) LIMIT {sample}"
                recomputed = f"({rollup.query} EXCEPT {rollup.kept}) LIMIT {sample}"
                only_kept = [tuple(row) for row in await connection.execute(text(kept))]
                only_recomputed = [tuple(row) for row in await connection.execute(text(recomputed))]
                if only_kept or only_recomputed:
                    differences.append(Difference(rollup.table, only_kept, only_recomputed))
    return differences


async def rebuild(engine: AsyncEngine) -> None:
    """Replace every rollup table by its recomputation. The tables are locked first, so a fact whose
    transaction is under way is either counted by the recomputation or added by its trigger after."""
    async with engine.begin() as connection:
        await _rebuild(connection)


# Memory for a recomputation's grouping (a hash per rollup rather than sorts spilled to disk: at
# millions of facts, most of the time), for its transaction only.
_GROUPING_MEMORY = "SET LOCAL work_mem = '256MB'"


async def _rebuild(connection: AsyncConnection) -> None:
    tables = ", ".join(f"{rollup.table}, {rollup.table}_delta" for rollup in ROLLUPS)
    await connection.execute(text(f"LOCK TABLE {tables} IN EXCLUSIVE MODE"))
    await connection.execute(text(_GROUPING_MEMORY))
    for rollup in ROLLUPS:
        await connection.execute(text(f"DELETE FROM {rollup.table}"))  # noqa: S608
        await connection.execute(text(f"DELETE FROM {rollup.table}_delta"))  # noqa: S608
        await connection.execute(text(f"INSERT INTO {rollup.table} ({rollup.columns}) {rollup.query}"))
