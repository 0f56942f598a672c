"""Event attendance per event and session: registered, offered a freed seat, waitlisted, cancelled,
attended and no-show, and the no-show rate. Counted straight from the registrations (an event's rows
are few; row-level security limits them to the caller's facilities like every patient row).

Invitations per event come from the rollups: a journey's `invite` step records its send's status
(`analytics_steps`), and a campaign that invites sends one message per patient of a run
(`analytics_messages`). Which steps and campaigns invite to which event is read from their published
definitions (every version)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import and_, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.analytics.live import MESSAGES, STEPS
from models.campaign import CampaignDefinition
from models.campaign_tables import Campaign, CampaignRun
from models.event_tables import EventRegistration
from models.journey import InviteStep, JourneyDefinition
from models.tables import Journey

STATUSES = ("registered", "offered", "waitlisted", "cancelled", "attended", "no_show")
# An invite step's results that mean its message went out (not skipped, deferred or failed).
WENT_OUT = ("queued", "sent", "delivered", "printed")


@dataclass
class SessionAttendance:
    """One session's registrations by status, and the offers of freed seats made."""

    event_key: str
    session_id: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    offers: int = 0

    @property
    def no_show_rate(self) -> float | None:
        """No-shows of those whose attendance is known (attended or no-show)."""
        known = self.counts["attended"] + self.counts["no_show"]
        return self.counts["no_show"] / known if known else None


async def attendance(session: AsyncSession, event_key: str | None = None) -> list[SessionAttendance]:
    """Per event and session, in key order."""
    table = EventRegistration
    query = select(table.event_key, table.session_id, table.status, func.count(), func.sum(table.offers))
    if event_key is not None:
        query = query.where(table.event_key == event_key)
    rows: dict[tuple[str, str], SessionAttendance] = {}
    for event, sitting, status, count, offers in await session.execute(
        query.group_by(table.event_key, table.session_id, table.status)
    ):
        row = rows.setdefault((event, sitting), SessionAttendance(event, sitting))
        row.counts[status] = row.counts.get(status, 0) + int(count)
        row.offers += int(offers or 0)
    return [rows[key] for key in sorted(rows)]


async def invitations(session: AsyncSession, event_key: str | None = None) -> dict[str, int]:
    """Invitations sent per event (one event, or every event invited to): journeys' `invite` steps
    whose message went out, and the messages sent by runs of campaigns that invite to it."""
    steps: dict[tuple[str, int, str], str] = {}  # (journey, version, step) -> event
    for document in await session.scalars(select(Journey.definition)):
        journey = JourneyDefinition.model_validate(document)
        for step in journey.steps:
            if isinstance(step, InviteStep) and event_key in (None, step.invite.event):
                steps[(journey.key, journey.version, step.id)] = step.invite.event
    campaigns: dict[tuple[str, int], str] = {}  # (campaign, version) -> event
    for document in await session.scalars(select(Campaign.definition)):
        campaign = CampaignDefinition.model_validate(document)
        if campaign.invite is not None and event_key in (None, campaign.invite.event):
            campaigns[(campaign.key, campaign.version)] = campaign.invite.event
    invited: dict[str, int] = dict.fromkeys((event_key,) if event_key else (), 0)
    if steps:
        chosen = or_(
            false(),
            *(
                and_(STEPS.journey_key == key, STEPS.journey_version == version, STEPS.step == step)
                for key, version, step in steps
            ),
        )
        query = select(STEPS.journey_key, STEPS.journey_version, STEPS.step, func.sum(STEPS.n)).where(
            chosen, STEPS.result.in_(WENT_OUT)
        )
        for key, version, step, count in await session.execute(
            query.group_by(STEPS.journey_key, STEPS.journey_version, STEPS.step)
        ):
            event = steps[(key, version, step)]
            invited[event] = invited.get(event, 0) + int(count or 0)
    if campaigns:
        run = CampaignRun
        sent = (
            select(run.campaign_key, run.campaign_version, func.sum(MESSAGES.sent))
            .join(run, run.id == MESSAGES.campaign_run_id)
            .where(
                or_(false(), *(and_(run.campaign_key == k, run.campaign_version == v) for k, v in campaigns))
            )
            .group_by(run.campaign_key, run.campaign_version)
        )
        for key, version, count in await session.execute(sent):
            event = campaigns[(key, version)]
            invited[event] = invited.get(event, 0) + int(count or 0)
    return {event: invited[event] for event in sorted(invited)}
