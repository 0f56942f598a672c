"""Request and response schemas of event management (`/v1/events`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from models.journey import Key
from models.zones import known_zone

SessionId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)]
EventKind = Literal["in_person", "online", "hybrid"]
EventStatus = Literal["draft", "published", "cancelled", "completed"]
RegistrationStatus = Literal["registered", "waitlisted", "offered", "cancelled", "attended", "no_show"]
RegistrationSource = Literal["journey", "campaign", "staff", "self_service"]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Venue(_Request):
    """Where an in-person event takes place."""

    name: str = Field(max_length=300)
    address: str | None = Field(default=None, max_length=500)
    accessibility: str | None = Field(default=None, max_length=2000)


class SessionIn(_Request):
    """One sitting: when, where and how many seats."""

    id: SessionId
    start: AwareDatetime
    end: AwareDatetime
    capacity: int = Field(ge=1, le=100_000)
    room: str | None = Field(default=None, max_length=200)
    online_url: str | None = Field(default=None, max_length=500, pattern=r"^https?://")

    @model_validator(mode="after")
    def _ends_after_start(self) -> SessionIn:
        if self.end <= self.start:
            raise ValueError("a session must end after it starts")
        return self


class EventIn(_Request):
    """An event as created or replaced (`POST /v1/events`)."""

    key: Key
    title: str = Field(min_length=1, max_length=300)
    timezone: str
    sessions: list[SessionIn] = Field(min_length=1, max_length=500)
    description: str | None = Field(default=None, max_length=10_000)
    kind: EventKind = "in_person"
    venue: Venue | None = None
    languages: list[Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]+)*$")]] = []
    eligibility: Key | None = Field(default=None, description="a segment key: only its members may register")
    organiser_team: str | None = Field(default=None, max_length=200)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if not known_zone(value):
            raise ValueError(f"{value[:64]!r} is not an IANA time zone")
        return value

    @model_validator(mode="after")
    def _distinct_sessions(self) -> EventIn:
        ids = [session.id for session in self.sessions]
        if len(ids) != len(set(ids)):
            raise ValueError("session ids must be distinct")
        return self


class SessionView(BaseModel):
    """A session with its seats: `registered` counts seats taken (companions included), `waitlisted`
    the waiting registrations."""

    id: str
    start: datetime
    end: datetime
    room: str | None
    online_url: str | None
    capacity: int
    registered: int
    waitlisted: int
    offered: int
    closed_at: datetime | None


class EventView(BaseModel):
    """An event and its sessions."""

    key: str
    title: str
    description: str | None
    kind: str
    timezone: str
    venue: Venue | None
    languages: list[str]
    eligibility: str | None
    organiser_team: str | None
    status: EventStatus
    sequence: int
    sessions: list[SessionView]


class EventList(BaseModel):
    """Events, the soonest first."""

    items: list[EventView]


class RegistrationIn(_Request):
    """A patient (and companions) for a session."""

    patient_id: str = Field(min_length=1, max_length=64)
    session_id: SessionId
    companions: int = Field(default=0, ge=0, le=20)
    source: RegistrationSource = "staff"
    # The channel the event's messages reach the patient on (the invite's; email carries the calendar).
    channel: Literal["sms", "email"] = "email"


class RegistrationCreated(BaseModel):
    """The new registration and whether it got a seat."""

    registration_id: str
    status: RegistrationStatus


class RegistrationView(BaseModel):
    """A registration."""

    registration_id: str
    event_key: str
    session_id: str
    patient_id: str
    companions: int
    source: str
    status: RegistrationStatus
    offer_expires_at: datetime | None
    checked_in_at: datetime | None
    cancel_reason: str | None
    created_at: datetime
    check_in_code: str


class RegistrationList(BaseModel):
    """Registrations, in the order they were made."""

    items: list[RegistrationView]


class SessionClosed(BaseModel):
    """A session closed with attendance: who attended and who was marked no_show."""

    session_id: str
    attended: int
    no_show: list[str]


class CheckInRequest(_Request):
    """A scanned check-in code, or nothing when staff check in from the list."""

    code: str | None = Field(default=None, max_length=200)


class LinkRequest(_Request):
    """A self-service link for a patient."""

    patient_id: str = Field(min_length=1, max_length=64)
    valid_days: int = Field(default=30, ge=1, le=180)


class LinkCreated(BaseModel):
    """The link (on `PUBLIC_BASE_URL` when set, else a path), its opaque token and its expiry."""

    url: str
    token: str
    expires_at: datetime


class SessionChange(_Request):
    """What changes in a session; registered patients are told of a new time or place."""

    start: AwareDatetime | None = None
    end: AwareDatetime | None = None
    capacity: int | None = Field(default=None, ge=1, le=100_000)
    room: str | None = Field(default=None, max_length=200)
    online_url: str | None = Field(default=None, max_length=500, pattern=r"^https?://")


class EventChange(_Request):
    """What changes in an event's own details (`PATCH /v1/events/{key}`); an omitted field is kept, a
    `null` description, venue or team clears it. A new title or venue is news for the registered."""

    title: str | None = Field(default=None, min_length=1, max_length=300)
    description: str | None = Field(default=None, max_length=10_000)
    venue: Venue | None = None
    organiser_team: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _title_not_cleared(self) -> EventChange:
        if "title" in self.model_fields_set and self.title is None:
            raise ValueError("an event keeps a title: give a new one or leave `title` out")
        return self
