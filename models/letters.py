"""Response schemas of the postal letter endpoints (`/v1/letters`)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field


class LetterBatchView(BaseModel):
    """A day's print batch and how far it got."""

    model_config = ConfigDict(frozen=True)

    date: dt.date
    letters: int = Field(description="letters in the batch")
    queued: int = Field(description="letters not yet printed")
    printed: int = Field(description="letters marked printed")


class LetterBatchList(BaseModel):
    """Every print batch, newest first."""

    model_config = ConfigDict(frozen=True)

    items: list[LetterBatchView]


class BatchPrinted(BaseModel):
    """A batch marked printed: how many letters this call printed, of how many in the batch."""

    model_config = ConfigDict(frozen=True)

    date: dt.date
    printed: int = Field(description="letters newly marked printed (0 when the batch already was)")
    letters: int = Field(description="letters in the batch")
