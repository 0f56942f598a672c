"""The durable record of each call: its rendered script (what Twilio is answered with, so a restarted
API still answers mid-call), the call's identity at Twilio as its callbacks report it, the answers, and
how it ended. Imported at the end of `models/tables.py`; scoped by facility through its patient."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Integer, LargeBinary, String, func
from sqlalchemy.orm import Mapped, mapped_column

from models.table_base import Base, Json


class VoiceCall(Base):
    """One call: a `voice` message's script, progress and outcome."""

    __tablename__ = "voice_calls"

    message_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
    )
    patient_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    enrollment_id: Mapped[str | None] = mapped_column(String(64))
    step_id: Mapped[str | None] = mapped_column(String(64))
    script: Mapped[dict[str, Any]] = mapped_column(Json, nullable=False)
    # Twilio's CallSid, as its status callback or TwiML request names it for this message.
    call_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    status: Mapped[str | None] = mapped_column(String(32))  # Twilio's CallStatus, latest
    answered_by: Mapped[str | None] = mapped_column(String(32))
    outcome: Mapped[str | None] = mapped_column(String(16))  # answered, no_answer, busy, failed, machine
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    answers: Mapped[dict[str, str]] = mapped_column(Json, nullable=False, server_default="{}")
    transferred: Mapped[bool] = mapped_column(nullable=False, server_default="false")
    # A voicemail the patient left: its Twilio recording URL, sealed (AES-GCM under the codec keys).
    recording_key_id: Mapped[str | None] = mapped_column(String(64))
    recording_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    recording_seconds: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
