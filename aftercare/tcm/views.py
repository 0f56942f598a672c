"""Episodes as the API and the console show them: the stored deadlines with their progress."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.risk.bands import Bands
from aftercare.store.readmissions import episodes_of, index_discharges
from aftercare.store.tcm_episodes import journeys_of, open_worklist, progress_of
from aftercare.tcm.progress import Event, Progress
from aftercare.tcm.report import Outcome, summarise
from models.risk_tables import TcmEpisode
from models.tcm_api import TcmAttemptView, TcmEpisodeView, TcmEventView, TcmReportRowView


def _event(event: Event | None) -> TcmEventView | None:
    return TcmEventView(at=event.at, source=event.source) if event is not None else None


def episode_view(episode: TcmEpisode, done: Progress, now: datetime) -> TcmEpisodeView:
    """One episode with its progress."""
    fields: dict[str, Any] = {
        "id": episode.id,
        "patient_id": episode.patient_id,
        "encounter_id": episode.encounter_id,
        "facility": episode.facility,
        "timezone": episode.timezone,
        "discharged_at": episode.discharged_at,
        "contact_due_at": episode.contact_due_at,
        "visit_due_at": episode.visit_due_at,
        "seconds_to_contact_due": int((episode.contact_due_at - now).total_seconds()),
        "complexity": episode.complexity,
        "complexity_source": episode.complexity_source,
        "risk_band": episode.risk_band,
        "status": done.status,
        "attempts": [
            TcmAttemptView(
                at=a.at, kind=a.kind, outcome=a.outcome, interactive=a.interactive, source=a.source
            )
            for a in done.attempts
        ],
        "contacted_at": done.contacted_at,
        "contact_met": done.contact_met,
        "contact_met_by": done.contact_met_by,
        "visit": _event(done.visit),
        "visit_within_days": done.visit_within_days,
        "medication_reconciled": _event(done.medication_reconciled),
        "readmission": _event(done.readmission),
        "billing_candidate": done.billing_candidate,
    }
    return TcmEpisodeView.model_validate(fields)


async def episode_views(
    session: AsyncSession, episodes: Sequence[TcmEpisode], now: datetime, channels: Sequence[str]
) -> list[TcmEpisodeView]:
    """Episodes with their progress, in the given order."""
    progress = await progress_of(session, episodes, now, channels)
    return [episode_view(episode, progress[episode.id], now) for episode in episodes]


async def worklist(
    session: AsyncSession, now: datetime, channels: Sequence[str], limit: int
) -> list[TcmEpisodeView]:
    """Open episodes: those still to be contacted first, by the time left to the contact deadline; then
    those contacted, by the visit deadline."""
    views = await episode_views(session, await open_worklist(session, now, limit), now, channels)
    running = [view for view in views if view.status == "open"]
    return sorted(
        running,
        key=lambda v: (v.contact_met, v.contact_due_at if not v.contact_met else v.visit_due_at, v.id),
    )


def day_range(start: date, end: date) -> tuple[datetime, datetime]:
    """`[start, end]` dates as UTC instants `[start 00:00, end + 1 day 00:00)`."""
    return (
        datetime.combine(start, time(), tzinfo=UTC),
        datetime.combine(end + timedelta(days=1), time(), tzinfo=UTC),
    )


async def report(
    session: AsyncSession,
    start: datetime,
    end: datetime,
    now: datetime,
    channels: Sequence[str],
    bands: Bands,
) -> tuple[TcmReportRowView, list[TcmReportRowView]]:
    """The total and the groups of the inpatient discharges in `[start, end)`, read from the encounters:
    30-day readmissions for every one, TCM contact and visits where an episode exists, the risk band
    from the episode or else the stored LACE score (`bands`)."""
    discharges = await index_discharges(session, start, end)
    encounter_ids = [discharge.encounter_id for discharge in discharges]
    episodes = await episodes_of(session, encounter_ids)
    progress = await progress_of(session, list(episodes.values()), now, channels)
    journeys = await journeys_of(session, encounter_ids)
    outcomes = []
    for discharge in discharges:
        episode = episodes.get(discharge.encounter_id)
        done = progress[episode.id] if episode is not None else None
        taken = journeys.get(discharge.encounter_id)
        lace_band = bands.band(discharge.lace) if discharge.lace is not None else None
        outcomes.append(
            Outcome(
                journey=taken.journey if taken else None,
                version=taken.version if taken else None,
                variant=taken.variant if taken else None,
                band=episode.risk_band if episode is not None else lace_band,
                contacted_in_time=done is not None and done.contact_met,
                seen_within=done.visit_within_days if done is not None else None,
                candidate=done.billing_candidate if done is not None else None,
                readmitted=discharge.readmission is not None,
                tcm=None if done is None else "contacted" if done.contact_met else "not_contacted",
            )
        )
    return summarise(outcomes, by_group=False)[0], summarise(outcomes)
