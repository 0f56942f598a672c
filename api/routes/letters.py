"""Postal letters: the daily print batches, downloaded by the print room and marked printed."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Header, HTTPException, Query, Response, status

from aftercare.letters.batches import BatchLetter, batch_pdf, batch_zip
from aftercare.store.letters import count_letters, letters_in_batch, list_batches, mark_batch_printed
from api.deps import SessionDep
from models.letters import BatchPrinted, LetterBatchList, LetterBatchView

router = APIRouter(prefix="/v1/letters", tags=["letters"])

BatchFormat = Literal["zip", "pdf"]
MEDIA_TYPES: dict[BatchFormat, str] = {"zip": "application/zip", "pdf": "application/pdf"}
_NO_BATCH = {"description": "The batch has no letters"}


@router.get("/batches", response_model=LetterBatchList)
async def read_batches(session: SessionDep) -> LetterBatchList:
    """Every print batch with its letter counts, newest first."""
    batches = await list_batches(session)
    return LetterBatchList(
        items=[
            LetterBatchView(
                date=batch.batch_date, letters=batch.letters, queued=batch.queued, printed=batch.printed
            )
            for batch in batches
        ]
    )


@router.get(
    "/batches/{date}",
    response_class=Response,
    responses={
        200: {
            "description": "The batch: a zip of one PDF per letter plus `manifest.csv`, or one merged PDF",
            "content": {media_type: {} for media_type in MEDIA_TYPES.values()},
        },
        404: _NO_BATCH,
    },
)
async def download_batch(
    date: dt.date,
    session: SessionDep,
    file_format: Annotated[
        BatchFormat | None,
        Query(
            alias="format", description="`zip` (the default) or `pdf`; without it, the Accept header decides"
        ),
    ] = None,
    duplex: Annotated[
        bool, Query(description="merged PDF only: a blank page after each letter with an odd page count")
    ] = False,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    """A day's letters in print order, as a zip (default) or as one merged PDF."""
    chosen = file_format or _format_from_accept(accept)
    letters = [BatchLetter(letter.message_id, letter.pdf) for letter in await letters_in_batch(session, date)]
    if not letters:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"the batch of {date.isoformat()} has no letters")
    if chosen == "pdf":
        content = await asyncio.to_thread(batch_pdf, letters, duplex=duplex)
    else:
        content = await asyncio.to_thread(batch_zip, letters)
    return Response(
        content,
        media_type=MEDIA_TYPES[chosen],
        headers={
            "Content-Disposition": f'attachment; filename="letters-{date.isoformat()}.{chosen}"',
            "Cache-Control": "no-store",
        },
    )


@router.post("/batches/{date}/printed", response_model=BatchPrinted, responses={404: _NO_BATCH})
async def batch_printed(date: dt.date, session: SessionDep) -> BatchPrinted:
    """Mark a batch printed: its queued letters, and their messages, become `printed`. Repeating it prints
    nothing more."""
    async with session.begin():
        total = await count_letters(session, date)
        if total == 0:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"the batch of {date.isoformat()} has no letters")
        printed = await mark_batch_printed(session, date)
    return BatchPrinted(date=date, printed=printed, letters=total)


def _format_from_accept(accept: str | None) -> BatchFormat:
    """The format the Accept header prefers (by quality, then order); zip when it names neither."""
    chosen: BatchFormat = "zip"
    best = 0.0
    by_media_type = {media_type: name for name, media_type in MEDIA_TYPES.items()}
    for part in (accept or "").split(","):
        media_type, *parameters = (piece.strip() for piece in part.split(";"))
        name = by_media_type.get(media_type.lower())
        if name is None:
            continue
        quality = 1.0
        for parameter in parameters:
            key, _, value = parameter.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > best:
            chosen, best = name, quality
    return chosen
