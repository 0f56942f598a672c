"""A message's update is counted as what changed (one delta row, `0019`), and every shape of update
leaves the rollups equal to the facts: sent with a reply and an opt-out already in its 7 days, a
failure whose reason changes, a bounce, a message moved to another channel, an update that changes
nothing counted, and a deletion."""

from __future__ import annotations

import psycopg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from aftercare.analytics.fold import fold
from aftercare.analytics.rebuild import compare
from aftercare.db.migrate import libpq_dsn

SETUP = [
    "INSERT INTO facilities (key, name, timezone) VALUES ('north', 'North', 'UTC')",
    "INSERT INTO patients (id, version_id) VALUES ('p1', '1')",
    "INSERT INTO patient_facilities (patient_id, facility, source) VALUES ('p1', 'north', 't')",
    "INSERT INTO messages (id, idempotency_key, patient_id, journey_key, channel, template_key, status) "
    "VALUES ('m1', 'm1', 'p1', 'journey-1', 'sms', 'template-1', 'pending'), "
    "('m2', 'm2', 'p1', 'journey-1', 'sms', 'template-1', 'pending'), "
    "('m3', 'm3', 'p1', 'journey-1', 'email', 'template-2', 'pending')",
    # a reply and an opt-out arrive before m1 is marked sent: they count once it is
    "INSERT INTO inbound_messages (provider_message_id, provider, channel, from_address, patient_id, body, "
    "received_at) VALUES ('SM-in-1', 'twilio', 'sms', '+15550100', 'p1', 'thanks', now() + interval '1 minute')",
    "INSERT INTO consent_events (patient_id, channel, purpose, status, source, recorded_at) "
    "VALUES ('p1', 'sms', 'care_coordination', 'revoked', 'sms', now() + interval '2 minutes')",
]
UPDATES = [
    "UPDATE messages SET status = 'sent', sent_at = now(), updated_at = now() WHERE id = 'm1'",
    "UPDATE messages SET status = 'delivered', delivered_at = now() WHERE id = 'm1'",
    "UPDATE messages SET opened_at = now(), clicked_at = now() WHERE id = 'm1'",
    "UPDATE messages SET status = 'failed', provider = 'twilio', reason = 'code 30003' WHERE id = 'm2'",
    "UPDATE messages SET reason = 'code 30005' WHERE id = 'm2'",  # a failure's reason corrected
    "UPDATE messages SET status = 'sent', sent_at = now() WHERE id = 'm3'",
    "INSERT INTO message_events (message_id, provider, provider_event_id, event, occurred_at, received_at) "
    "VALUES ('m3', 'sendgrid', 'ev-1', 'bounce', now(), now())",
    "UPDATE messages SET status = 'failed', reason = 'bounce' WHERE id = 'm3'",
    "UPDATE messages SET channel = 'letter' WHERE id = 'm3'",  # the key moves: counted as before
    "UPDATE messages SET attempts = 3 WHERE id = 'm1'",  # nothing counted changes
    "DELETE FROM messages WHERE id = 'm2'",
]
TOTALS = (
    "SELECT channel, sum(messages)::int, sum(sent)::int, sum(delivered)::int, sum(failed)::int, "
    "sum(opened)::int, sum(clicked)::int, sum(bounced)::int, sum(replied)::int, sum(opted_out)::int "
    "FROM (SELECT * FROM analytics_messages UNION ALL SELECT * FROM analytics_messages_delta) AS m "
    "GROUP BY channel HAVING sum(messages) <> 0 ORDER BY channel"
)


async def test_every_shape_of_update_keeps_the_rollups_equal_to_the_facts(
    empty_database: AsyncEngine, database_url: str
) -> None:
    with psycopg.connect(libpq_dsn(database_url), autocommit=True) as connection:
        for statement in SETUP:
            connection.execute(statement)
        deltas_before = connection.execute("SELECT count(*) FROM analytics_messages_delta").fetchone()
        connection.execute(UPDATES[0])
        deltas_after = connection.execute("SELECT count(*) FROM analytics_messages_delta").fetchone()
        for statement in UPDATES[1:]:
            connection.execute(statement)

    async with empty_database.connect() as connection:
        totals = (await connection.execute(text(TOTALS))).all()
    await fold(empty_database)

    assert deltas_before is not None
    assert deltas_after is not None
    assert deltas_after[0] - deltas_before[0] == 1  # a send is one delta row, not two
    assert totals == [
        ("letter", 1, 1, 0, 1, 0, 0, 1, 1, 1),
        ("sms", 1, 1, 1, 0, 1, 1, 0, 1, 1),
    ]
    assert await compare(empty_database) == []
