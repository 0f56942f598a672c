"""Postal letters waiting in (or printed from) the daily print batches."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from models.tables import Letter, Message, table_of

# A printed letter moves its message on from these statuses only; anything later (or a send still being
# finished, which learns of the printing from its provider) keeps its own status.
PRINTABLE_MESSAGE_STATUSES = ("queued", "sent")

_LETTERS = table_of(Letter)
_QUEUE_LETTER = (
    insert(_LETTERS).on_conflict_do_nothing(index_elements=["message_id"]).returning(_LETTERS.c.message_id)
)


@dataclass(frozen=True)
class BatchSummary:
    """A day's print batch: how many letters, how many still to print and how many printed."""

    batch_date: date
    letters: int
    queued: int
    printed: int


async def queue_letter(session: AsyncSession, message_id: str, batch_date: date, pdf: bytes) -> bool:
    """Put a message's rendered letter in a day's batch; False when the message already has a letter
    (the first one stands, in its own batch)."""
    queued = await session.scalar(
        _QUEUE_LETTER, {"message_id": message_id, "batch_date": batch_date, "pdf": pdf, "status": "queued"}
    )
    return queued is not None


async def find_letter(session: AsyncSession, message_id: str) -> Letter | None:
    """A message's letter, if one was queued."""
    return await session.get(Letter, message_id)


async def letter_status(session: AsyncSession, message_id: str) -> str | None:
    """A message's letter status (`queued` or `printed`) without loading the PDF; None without a letter."""
    status: str | None = await session.scalar(select(Letter.status).where(Letter.message_id == message_id))
    return status


async def list_batches(session: AsyncSession) -> list[BatchSummary]:
    """Every batch with its counts, newest first."""
    queued = func.count().filter(Letter.status == "queued")
    printed = func.count().filter(Letter.status == "printed")
    rows = await session.execute(
        select(Letter.batch_date, func.count(), queued, printed)
        .group_by(Letter.batch_date)
        .order_by(Letter.batch_date.desc())
    )
    return [
        BatchSummary(batch_date=day, letters=total, queued=waiting, printed=done)
        for day, total, waiting, done in rows.tuples()
    ]


async def letters_in_batch(session: AsyncSession, batch_date: date) -> Sequence[Letter]:
    """A batch's letters in print order: the order their messages were recorded, then by message id."""
    rows = await session.scalars(
        select(Letter)
        .join(Message, Message.id == Letter.message_id)
        .where(Letter.batch_date == batch_date)
        .order_by(Message.created_at, Message.id)
    )
    return rows.all()


async def count_letters(session: AsyncSession, batch_date: date) -> int:
    """How many letters a batch has."""
    total = await session.scalar(
        select(func.count()).select_from(Letter).where(Letter.batch_date == batch_date)
    )
    return int(total or 0)


async def mark_batch_printed(session: AsyncSession, batch_date: date) -> int:
    """Mark a batch's queued letters printed, and their messages `printed`; returns how many letters
    were newly printed (0 when the batch was already marked)."""
    printed = await session.scalars(
        update(Letter)
        .where(Letter.batch_date == batch_date, Letter.status == "queued")
        .values(status="printed", printed_at=func.now())
        .returning(Letter.message_id)
    )
    newly_printed = len(printed.all())
    printed_letters = select(Letter.message_id).where(
        Letter.batch_date == batch_date, Letter.status == "printed"
    )
    await session.execute(
        update(Message)
        .where(Message.id.in_(printed_letters), Message.status.in_(PRINTABLE_MESSAGE_STATUSES))
        .values(status="printed", updated_at=func.now())
    )
    return newly_printed
