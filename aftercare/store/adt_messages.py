"""ADT messages received: looked up by sender and control id, recorded once, parked ones listed."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import ARRAY, Integer, bindparam, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import func

from aftercare.db.array_rows import array_insert
from models.adt_tables import AdtMessage
from models.table_base import table_of

Answer = tuple[str, str | None, str | None, str | None]
"""An acknowledgement already given: the code, the ERR location and code, and the reason."""


async def answers_given(
    session: AsyncSession, keys: Collection[tuple[str, str]]
) -> dict[tuple[str, str], Answer]:
    """The answers already given under these (sending facility, control id) pairs, one query for all;
    a message an operator retried counts as not answered (it is processed again)."""
    if not keys:
        return {}
    wanted = sorted(set(keys))
    rows = await session.execute(
        _ANSWERS,
        {
            "facilities": [facility for facility, _ in wanted],
            "control_ids": [control_id for _, control_id in wanted],
        },
    )
    return {(row[0], row[1]): (row[2], row[3], row[4], row[5]) for row in rows}


# The pairs travel as two arrays side by side, joined as rows: one statement text whatever the batch,
# and each pair one probe of the unique index on (sending_facility, control_id) whatever the planner
# knows of the table.
_ANSWERS = text(
    """
    SELECT a.sending_facility, a.control_id, a.ack_code, a.error_location, a.error_code, a.reason
    FROM adt_messages a
    JOIN unnest(CAST(:facilities AS VARCHAR[]), CAST(:control_ids AS VARCHAR[])) AS k(facility, control_id)
        ON a.sending_facility = k.facility AND a.control_id = k.control_id
    WHERE a.retried_at IS NULL
    """
)


_TABLE = table_of(AdtMessage)
_UPDATED = (
    "message_type",
    "ack_code",
    "error_location",
    "error_code",
    "reason",
    "patient_id",
    "encounter_id",
    "raw_sealed",
    "raw_key_id",
)
_RECORD_UPSERT = array_insert(
    _TABLE,
    ("sending_facility", "control_id", *_UPDATED),
    "ON CONFLICT ON CONSTRAINT uq_adt_messages_sender_control DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in _UPDATED)
    + " WHERE a.ack_code != 'AA'",
    alias="a",
)


async def record_adt_messages(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Record handled messages (every column but the id and times; each sender and control id once), one
    statement for all; a retried (parked) one takes its new outcome, an `AA` is never overwritten."""
    if rows:
        await session.execute(_RECORD_UPSERT.statement, _RECORD_UPSERT.parameters(rows))


async def parked_adt_messages(session: AsyncSession, limit: int = 100) -> Sequence[AdtMessage]:
    """Messages that got `AE` or `AR`, newest first."""
    rows = await session.scalars(
        select(AdtMessage).where(AdtMessage.ack_code != "AA").order_by(AdtMessage.id.desc()).limit(limit)
    )
    return rows.all()


async def get_adt_message(session: AsyncSession, message_id: int) -> AdtMessage | None:
    """One message by its row id."""
    return await session.get(AdtMessage, message_id)


async def mark_retried(session: AsyncSession, message_id: int) -> None:
    """Note that an operator retried it."""
    await session.execute(update(AdtMessage).where(AdtMessage.id == message_id).values(retried_at=func.now()))


# The first key of the two-key advisory locks the ADT intake takes (its own namespace), and the second
# key that stands for every patient (an A40 takes it exclusively, every other batch shared).
_LOCK_SPACE = 0x4C37  # "L7"
_EVERY_PATIENT = 0
_HOLD_EVERYONE = text("SELECT pg_advisory_xact_lock(:space, :every)")
_SHARE_EVERYONE_HOLD_PATIENTS = text(
    "SELECT pg_advisory_xact_lock_shared(:space, :every), "
    "(SELECT count(pg_advisory_xact_lock(:space, key)) FROM unnest(CAST(:keys AS integer[])) AS key)"
).bindparams(bindparam("keys", type_=ARRAY(Integer)))


def _lock_key(patient: str) -> int:
    """A patient key as a nonzero signed 32-bit lock key (the same in every process)."""
    value = int.from_bytes(hashlib.blake2b(patient.encode(), digest_size=4).digest(), "big", signed=True)
    return value or 1


async def hold_patients(session: AsyncSession, patients: Collection[str], *, everyone: bool) -> None:
    """Take, until the transaction ends, the advisory lock of each patient (in one order, so two
    transactions never wait for each other), or with `everyone` (an A40) the lock every batch shares:
    listener processes on one port keep each patient's messages one at a time, and a merge alone."""
    if everyone:
        await session.execute(_HOLD_EVERYONE, {"space": _LOCK_SPACE, "every": _EVERY_PATIENT})
        return
    keys = sorted({_lock_key(patient) for patient in patients})
    await session.execute(
        _SHARE_EVERYONE_HOLD_PATIENTS, {"space": _LOCK_SPACE, "every": _EVERY_PATIENT, "keys": keys}
    )
