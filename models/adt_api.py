"""API schemas of the HL7 v2 feed: parked messages and an operator's retry."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class ParkedAdtMessage(BaseModel):
    """An ADT message answered `AE` or `AR`: who sent it, what was wrong and where (never its text)."""

    id: int
    received_at: datetime
    sending_facility: str
    control_id: str
    message_type: str
    ack_code: str = Field(description="AE: could not be mapped; AR: a type, event or version not taken")
    error_location: str | None = Field(description="the field: PID-3")
    error_code: str | None = Field(description="HL7 table 0357")
    reason: str | None
    retried_at: datetime | None
    retryable: bool = Field(description="its raw text was kept (sealed), so it can be processed again")


class ParkedAdtMessages(BaseModel):
    """Parked messages, newest first."""

    items: list[ParkedAdtMessage]


class AdtRetryResult(BaseModel):
    """What processing a parked message again gave: `AA` when it went through this time."""

    id: int
    ack_code: str
    reason: str | None = None
