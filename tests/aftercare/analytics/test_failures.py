"""Failed messages counted by reason: the provider and the error code its text gives, never the text
(a provider's words may quote the patient's number or address)."""

from __future__ import annotations

import psycopg
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from aftercare.analytics.fold import fold
from aftercare.analytics.messages import message_rows
from aftercare.analytics.rebuild import compare
from aftercare.db.migrate import libpq_dsn

SETUP = [
    "INSERT INTO facilities (key, name, timezone) VALUES ('north', 'North', 'UTC')",
    "INSERT INTO patients (id, version_id) VALUES ('p1', '1')",
    "INSERT INTO patient_facilities (patient_id, facility, source) VALUES ('p1', 'north', 't')",
]
INSERT = (
    "INSERT INTO messages (id, idempotency_key, patient_id, journey_key, channel, status, provider, reason) "
    "VALUES (%s, %s, 'p1', %s, %s, %s, %s, %s)"
)
MESSAGES = [
    (
        "m1",
        "care",
        "sms",
        "failed",
        "twilio",
        "Twilio refused the text: HTTP 400, code 21211: '+15551234567'",
    ),
    ("m2", "care", "sms", "undelivered", "twilio", "Twilio error 30003"),
    ("m3", "care", "sms", "failed", "twilio", "Twilio error 30003"),
    ("m4", "care", "email", "failed", "sendgrid", "SendGrid refused the email: HTTP 400: pat1@example.org"),
    ("m5", "care", "email", "failed", "smtp", "550 5.1.1 <pat1@example.org>: user unknown"),
    (
        "m6",
        "recall",
        "push",
        "failed",
        "web_push",
        "the patient has no device subscribed to push notifications",
    ),
    ("m7", "recall", "sms", "failed", "twilio", None),
    ("m8", "recall", "sms", "delivered", "twilio", None),  # not a failure
]


async def test_failures_are_counted_by_provider_and_code_exactly_as_recomputed(
    empty_database: AsyncEngine, database_url: str, sessions: async_sessionmaker
) -> None:
    with psycopg.connect(libpq_dsn(database_url), autocommit=True) as connection:
        for statement in SETUP:
            connection.execute(statement)
        for key, journey, channel, status, provider, reason in MESSAGES:
            connection.execute(INSERT, (key, key, journey, channel, status, provider, reason))
        # A message that fails later (an update) and one that fails, then is retried and delivered.
        connection.execute(INSERT, ("m9", "m9", "care", "sms", "pending", "twilio", None))
        connection.execute(
            "UPDATE messages SET status = 'failed', reason = 'Twilio error 30007' WHERE id = 'm9'"
        )
        connection.execute("UPDATE messages SET status = 'delivered', reason = NULL WHERE id = 'm3'")

    async with sessions() as session:
        by_channel = {row.key: row for row in await message_rows(session, "channel")}
        by_journey = {row.key: row for row in await message_rows(session, "journey")}
    assert by_channel["sms"].failed_by == {
        "twilio code 21211": 1,
        "twilio code 30003": 1,
        "twilio code 30007": 1,
        "twilio no reason": 1,
    }
    assert by_channel["email"].failed_by == {"sendgrid HTTP 400": 1, "smtp SMTP 550": 1}
    assert by_channel["push"].failed_by == {"web_push other": 1}
    assert sum(by_channel["sms"].failed_by.values()) == by_channel["sms"].counts["failed"] == 4
    assert by_journey["recall"].failed_by == {"web_push other": 1, "twilio no reason": 1}
    assert by_journey["care"].counts["failed"] == sum(by_journey["care"].failed_by.values()) == 5
    assert await compare(empty_database) == []
    await fold(empty_database)
    assert await compare(empty_database) == []
    async with sessions() as session:
        folded = {row.key: row.failed_by for row in await message_rows(session, "channel")}
    assert folded == {key: row.failed_by for key, row in by_channel.items()}
