"""Postal letters: the message is rendered to a print-ready PDF and queued in the day's print batch.

The batch is today's in the hospital's time zone; the print room downloads it from
`GET /v1/letters/batches/{date}` and marks it printed, which moves the messages from `queued` to
`printed`.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.messaging.providers import OutgoingMessage, ProviderOutcome, ProviderRejectedError
from aftercare.letters.logo import LogoCache
from aftercare.letters.pdf import DateStyle, Letterhead, render_letter
from aftercare.settings import Settings
from aftercare.store.letters import letter_status, queue_letter
from models.facility_tables import Facility
from models.temporal import MessageStatus
from models.zones import zone_info


class LetterProvider:
    """Renders each letter and queues it once; its letter row is the record `find_sent` looks for.

    The letter is dated the day of its batch, written out US style (`November 26, 2026`) when the
    hospital's region is the US and `26 November 2026` elsewhere.
    """

    name = "letters"
    external = True

    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self._sessions = sessions
        self._letterhead = Letterhead.from_settings(settings)
        self._logos = LogoCache()
        self._timezone = zone_info(settings.hospital_timezone)
        self._date_style: DateStyle = (
            "us" if settings.phone_default_region.upper() == "US" else "international"
        )

    def batch_date(self, now: datetime | None = None) -> date:
        """Today in the hospital's time zone: the batch a letter queued now goes to."""
        return (now or datetime.now(UTC)).astimezone(self._timezone).date()

    async def send(self, message: OutgoingMessage) -> ProviderOutcome:
        """Render the letter and queue it in today's batch (a letter already queued stays as it is)."""
        recipient = [line.strip() for line in message.to.splitlines() if line.strip()]
        if not recipient:
            raise ProviderRejectedError("the letter has no recipient address")
        batch = self.batch_date()
        letterhead = await self.letterhead(message.facility)
        pdf = await asyncio.to_thread(
            render_letter,
            letterhead=letterhead,
            recipient=recipient,
            letter_date=batch,
            body=message.body,
            subject=message.subject,
            date_style=self._date_style,
            reference=message.id,
        )
        async with self._sessions.begin() as session:
            queued = await queue_letter(session, message.id, batch, pdf)
            status = "queued" if queued else await letter_status(session, message.id)
        return _outcome(message.id, status)

    async def letterhead(self, facility_key: str | None) -> Letterhead:
        """The letterhead of the facility the letter is sent on behalf of, when it has a letter identity
        (`senders.letter`): its name, `letter.return_address`, HELP phone and `letter.logo_url`. The
        install's otherwise (an existing install's one `default` facility has none: nothing changes)."""
        if facility_key is None:
            return self._letterhead
        async with self._sessions() as session:
            facility = await session.get(Facility, facility_key)
        if facility is None:
            return self._letterhead
        letter = (facility.senders or {}).get("letter") or {}
        if not letter.get("return_address") and not letter.get("logo_url"):
            return self._letterhead
        return self._letterhead.for_facility(
            facility.name,
            letter.get("return_address") or [],
            facility.help_phone,
            await self._logos.logo(letter.get("logo_url")),
        )

    async def find_sent(self, message: OutgoingMessage) -> ProviderOutcome | None:
        """The letter queued for this message, if an interrupted attempt got that far."""
        async with self._sessions() as session:
            status = await letter_status(session, message.id)
        return _outcome(message.id, status) if status is not None else None


def provider_message_id(message_id: str) -> str:
    """The id a letter is known by: `letter-<message id>`."""
    return f"letter-{message_id}"


def _outcome(message_id: str, letter_status: str | None) -> ProviderOutcome:
    status: MessageStatus = "printed" if letter_status == "printed" else "queued"
    return ProviderOutcome(status=status, provider_message_id=provider_message_id(message_id))
