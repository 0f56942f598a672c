"""Event management: events and sessions, registrations with a waitlist, check-in, invites.

Each change commits first; its patient events (`event.registered`, ...) and offer workflows go out after."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, HTTPException, Query, Response, status
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.events import registrations as regs
from aftercare.events.consent import check_registration_consent
from aftercare.events.errors import EventConflict, EventError, EventInvalid, EventNotFound, NotEligible
from aftercare.events.invites import check_in_code, check_in_qr_png, invite_ics, read_check_in_code
from aftercare.events.links import self_service_link
from aftercare.events.outbox import Effect, EffectRunner, record_effects, run_effects
from aftercare.events.store import create_event, event_view, get_event, publish_event, sessions_of
from aftercare.settings import event_link_secret
from api.deps import ServicesDep, SessionDep
from api.services import Services
from models.event_api import (
    CheckInRequest,
    EventChange,
    EventIn,
    EventList,
    EventView,
    LinkCreated,
    LinkRequest,
    RegistrationCreated,
    RegistrationIn,
    RegistrationList,
    RegistrationStatus,
    RegistrationView,
    SessionChange,
    SessionClosed,
)
from models.event_tables import Event, EventRegistration, EventSession
from models.tables import Patient

router = APIRouter(prefix="/v1/events", tags=["events"])

_STATUS = {EventNotFound: 404, EventConflict: 409, NotEligible: 422}


@asynccontextmanager
async def refusals() -> AsyncIterator[None]:
    """Event refusals as HTTP errors: 404, 409, 422 at the field."""
    try:
        yield
    except EventInvalid as error:
        raise HTTPException(
            422,
            [{"loc": list(error.loc), "msg": error.message, "type": error.kind}],
        ) from None
    except EventError as error:
        raise HTTPException(_STATUS.get(type(error), 409), str(error)) from None


def registration_view(registration: EventRegistration, secret: bytes) -> RegistrationView:
    """A registration as the API shows it, with its check-in code."""
    return RegistrationView(
        registration_id=registration.id,
        event_key=registration.event_key,
        session_id=registration.session_id,
        patient_id=registration.patient_id,
        companions=registration.companions,
        source=registration.source,
        status=registration.status,
        offer_expires_at=registration.offer_expires_at,
        checked_in_at=registration.checked_in_at,
        cancel_reason=registration.cancel_reason,
        created_at=registration.created_at,
        check_in_code=check_in_code(registration.id, secret),
    )


def effects_runner(services: Services) -> EffectRunner:
    """What doing a change's effects needs, from the app's services."""
    return EffectRunner(
        services.sessions, services.temporal, services.starter, services.settings.temporal_task_queue
    )


async def after_commit(services: Services, effects: list[Effect]) -> None:
    """Do the committed change's effects (its offers' workflows, its patient events); what Temporal
    cannot take now stays in the outbox and is retried (`aftercare.events.outbox`)."""
    await run_effects(effects_runner(services), effects)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=EventView)
async def post_event(body: EventIn, session: SessionDep) -> EventView:
    """Create a draft event with its sessions."""
    async with refusals():
        async with session.begin():
            await create_event(session, body)
        return await event_view(session, body.key)


@router.get("", response_model=EventList)
async def read_events(
    session: SessionDep, event_status: Annotated[str | None, Query(alias="status", max_length=16)] = None
) -> EventList:
    """Events, optionally of one status."""
    statement = select(Event.key).order_by(Event.created_at, Event.key)
    if event_status is not None:
        statement = statement.where(Event.status == event_status)
    keys = list(await session.scalars(statement))
    return EventList(items=[await event_view(session, key) for key in keys])


@router.get("/{key}", response_model=EventView)
async def read_event(key: str, session: SessionDep) -> EventView:
    """The event with each session's `registered` (seats taken), `waitlisted` and `capacity`."""
    async with refusals():
        return await event_view(session, key)


@router.patch("/{key}", response_model=EventView)
async def patch_event(key: str, body: EventChange, session: SessionDep, services: ServicesDep) -> EventView:
    """Change the event's title, description, venue or organising team. Registered patients of a
    published event are told of a new title or venue (`event.changed`, a higher invite SEQUENCE)."""
    async with refusals():
        async with session.begin():
            notices = await regs.change_event(session, key, body)
            effects = await record_effects(session, key, [], notices)
        view = await event_view(session, key)
    await session.close()
    await after_commit(services, effects)
    return view


@router.post("/{key}/publish", response_model=EventView)
async def publish(key: str, session: SessionDep) -> EventView:
    """Open the event for registration."""
    async with refusals():
        async with session.begin():
            await publish_event(session, key)
        return await event_view(session, key)


@router.post("/{key}/cancel", response_model=EventView)
async def cancel(key: str, session: SessionDep, services: ServicesDep) -> EventView:
    """Cancel the event: every registration is cancelled and each patient gets `event.cancelled`."""
    async with refusals():
        async with session.begin():
            notices = await regs.cancel_event(session, key)
            effects = await record_effects(session, key, [], notices)
        view = await event_view(session, key)
    await session.close()
    await after_commit(services, effects)
    return view


@router.post("/{key}/sessions/{session_id}/close", response_model=SessionClosed)
async def close(key: str, session_id: str, session: SessionDep, services: ServicesDep) -> SessionClosed:
    """Close a session with attendance: who did not check in is a no_show."""
    async with refusals(), session.begin():
        _sitting, attended, notices = await regs.close_session(session, key, session_id)
        effects = await record_effects(session, key, [], notices)
    await session.close()
    await after_commit(services, effects)
    return SessionClosed(
        session_id=session_id,
        attended=attended,
        no_show=[n.registration_id for n in notices if n.type == "event.no_show"],
    )


@router.patch("/{key}/sessions/{session_id}", response_model=EventView)
async def patch_session(
    key: str, session_id: str, body: SessionChange, session: SessionDep, services: ServicesDep
) -> EventView:
    """Move, resize or re-room a session: registered patients get `event.changed` (and their invites a
    higher SEQUENCE); added seats go to the waitlist."""
    async with refusals():
        async with session.begin():
            notices, offers = await regs.change_session(
                session, key, session_id, body, ttl=timedelta(hours=services.settings.event_offer_hours)
            )
            effects = await record_effects(session, key, offers, notices)
        view = await event_view(session, key)
    await session.close()
    await after_commit(services, effects)
    return view


@router.post("/{key}/registrations", status_code=status.HTTP_201_CREATED, response_model=RegistrationCreated)
async def post_registration(
    key: str, body: RegistrationIn, session: SessionDep, services: ServicesDep
) -> RegistrationCreated:
    """Register a patient: `registered` while seats are free, else `waitlisted`; the same patient and
    session again is a 409. A patient without consent for event messages on `channel` is registered
    and not messaged: the decision log has a `suppressed` entry saying so."""
    async with refusals():
        try:
            async with session.begin():
                change = await regs.register(session, key, body)
                await check_registration_consent(
                    session, change.registration, body.channel, services.settings.guardrails
                )
                effects = await record_effects(session, key, change.offers, change.notices)
        except IntegrityError:
            raise HTTPException(
                status.HTTP_409_CONFLICT, f"the patient is already registered for session {body.session_id!r}"
            ) from None
    created = RegistrationCreated(registration_id=change.registration.id, status=change.registration.status)
    await session.close()
    await after_commit(services, effects)
    return created


@router.get("/{key}/registrations", response_model=RegistrationList)
async def read_registrations(
    key: str,
    session: SessionDep,
    services: ServicesDep,
    session_id: Annotated[str | None, Query(max_length=64)] = None,
    registration_status: Annotated[RegistrationStatus | None, Query(alias="status")] = None,
) -> RegistrationList:
    """The event's registrations, filtered by session and status."""
    async with refusals():
        await get_event(session, key)
    rows = await regs.list_registrations(session, key, session_id=session_id, status=registration_status)
    secret = event_link_secret(services.settings)
    return RegistrationList(items=[registration_view(row, secret) for row in rows])


@router.get("/{key}/registrations/{registration_id}", response_model=RegistrationView)
async def read_registration(
    key: str, registration_id: str, session: SessionDep, services: ServicesDep
) -> RegistrationView:
    """One registration and its status."""
    async with refusals():
        registration = await regs.get_registration(session, key, registration_id)
    return registration_view(registration, event_link_secret(services.settings))


async def _change(
    services: Services,
    session: AsyncSession,
    key: str,
    registration_id: str,
    operation: str,
    background: BackgroundTasks | None = None,
) -> RegistrationView:
    """Cancel, accept or check in, and do the change's effects after the commit: before answering, or
    with `background` right after the answer is sent (check-in: staff wait for the answer, not for the
    journeys; the effects' outbox rows keep them until done either way)."""
    async with refusals(), session.begin():
        before = await regs.get_registration(session, key, registration_id)
        was_offered = before.status == "offered"
        if operation == "cancel":
            change = await regs.cancel_registration(
                session, key, registration_id, ttl=timedelta(hours=services.settings.event_offer_hours)
            )
        elif operation == "accept":
            change = await regs.accept_offer(session, key, registration_id)
        else:
            change = await regs.check_in(session, key, registration_id)
        view = registration_view(change.registration, event_link_secret(services.settings))
        settled = change.registration if was_offered and change.registration.status != "offered" else None
        effects = await record_effects(session, key, change.offers, change.notices, settled=settled)
    await session.close()
    if background is not None:
        background.add_task(after_commit, services, effects)
    else:
        await after_commit(services, effects)
    return view


@router.post("/{key}/registrations/{registration_id}/cancel", response_model=RegistrationView)
async def cancel_registration(
    key: str, registration_id: str, session: SessionDep, services: ServicesDep
) -> RegistrationView:
    """Cancel a registration; a freed seat is offered to the next on the waitlist."""
    return await _change(services, session, key, registration_id, "cancel")


@router.post("/{key}/registrations/{registration_id}/accept", response_model=RegistrationView)
async def accept_offer(
    key: str, registration_id: str, session: SessionDep, services: ServicesDep
) -> RegistrationView:
    """Take an offered seat."""
    return await _change(services, session, key, registration_id, "accept")


@router.post("/{key}/registrations/{registration_id}/check-in", response_model=RegistrationView)
async def check_in(
    key: str, registration_id: str, session: SessionDep, services: ServicesDep, background: BackgroundTasks
) -> RegistrationView:
    """Check a registered patient in (staff, from the list); `event.checked_in` reaches the patient's
    journeys right after the answer."""
    return await _change(services, session, key, registration_id, "check_in", background)


@router.post("/{key}/check-in", response_model=RegistrationView)
async def check_in_by_code(
    key: str, body: CheckInRequest, session: SessionDep, services: ServicesDep, background: BackgroundTasks
) -> RegistrationView:
    """Check in with the code of a scanned QR; a forged or altered code is refused. `event.checked_in`
    reaches the patient's journeys right after the answer."""
    registration_id = read_check_in_code(body.code or "", event_link_secret(services.settings))
    if registration_id is None:
        raise HTTPException(422, "this is not a check-in code of Aftercare")
    return await _change(services, session, key, registration_id, "check_in", background)


async def _registration_parts(
    session: AsyncSession, key: str, registration_id: str
) -> tuple[Event, EventSession, EventRegistration]:
    registration = await regs.get_registration(session, key, registration_id)
    event = await get_event(session, key)
    sitting = next(s for s in await sessions_of(session, key) if s.id == registration.session_id)
    return event, sitting, registration


@router.get(
    "/{key}/registrations/{registration_id}/invite.ics",
    response_class=Response,
    responses={200: {"description": "The iCalendar invite (RFC 5545)", "content": {"text/calendar": {}}}},
)
async def invite(key: str, registration_id: str, session: SessionDep, services: ServicesDep) -> Response:
    """The registration's calendar invite: METHOD:REQUEST, or METHOD:CANCEL once cancelled."""
    async with refusals():
        event, sitting, registration = await _registration_parts(session, key, registration_id)
    body = invite_ics(event, sitting, registration, organiser_email=services.settings.sendgrid_from_email)
    return Response(
        body,
        media_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{key}.ics"'},
    )


@router.get(
    "/{key}/registrations/{registration_id}/qr.png",
    response_class=Response,
    responses={200: {"description": "The check-in QR code", "content": {"image/png": {}}}},
)
async def qr(key: str, registration_id: str, session: SessionDep, services: ServicesDep) -> Response:
    """The registration's check-in QR code (PNG)."""
    async with refusals():
        registration = await regs.get_registration(session, key, registration_id)
    code = check_in_code(registration.id, event_link_secret(services.settings))
    return Response(check_in_qr_png(code), media_type="image/png")


@router.post("/{key}/links", status_code=status.HTTP_201_CREATED, response_model=LinkCreated)
async def post_link(key: str, body: LinkRequest, session: SessionDep, services: ServicesDep) -> LinkCreated:
    """A signed, expiring self-service link for one patient and this event (register, choose a
    session, cancel, add to calendar); the URL carries only an opaque token."""
    async with refusals():
        await get_event(session, key)
        if await session.get(Patient, body.patient_id) is None:
            raise EventNotFound(f"no patient {body.patient_id!r}")
    link = self_service_link(
        event_link_secret(services.settings),
        services.settings.public_base_url,
        key,
        body.patient_id,
        ttl=timedelta(days=body.valid_days),
    )
    return LinkCreated(url=link.url, token=link.token, expires_at=link.expires_at)
