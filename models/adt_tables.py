"""Tables of the HL7 v2 feed: every ADT message received, once per sending facility and control id.

A row is written after the message was handled (stored and handed to Temporal, or found unusable), so
a resend of the same MSH-10 is answered with the same acknowledgement without doing the work again.
The raw text is PHI: it is kept sealed (AES-256-GCM under the codec keys), for parked messages only.

Imported at the end of `models/tables.py`, so they share its `Base` and migrations see them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, LargeBinary, String, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from models.table_base import Base


class AdtMessage(Base):
    """An ADT message and the acknowledgement it got: `AA` processed, `AE`/`AR` parked with the reason
    (the ERR location and HL7 table 0357 code) and the sealed raw text an operator can retry."""

    __tablename__ = "adt_messages"
    __table_args__ = (
        UniqueConstraint("sending_facility", "control_id", name="uq_adt_messages_sender_control"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sending_facility: Mapped[str] = mapped_column(String(200), nullable=False)
    control_id: Mapped[str] = mapped_column(String(200), nullable=False)
    message_type: Mapped[str] = mapped_column(String(20), nullable=False)
    ack_code: Mapped[str] = mapped_column(String(2), nullable=False)
    error_location: Mapped[str | None] = mapped_column(String(40))
    error_code: Mapped[str | None] = mapped_column(String(8))
    reason: Mapped[str | None] = mapped_column(Text)
    patient_id: Mapped[str | None] = mapped_column(String(64), index=True)
    encounter_id: Mapped[str | None] = mapped_column(String(64))
    raw_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    raw_key_id: Mapped[str | None] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    retried_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
