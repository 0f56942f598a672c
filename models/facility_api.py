"""API schemas of facilities: the hospital group's hospitals, clinics and practices."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from models.zones import known_zone

FacilityKey = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
_QUIET = re.compile(r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$")


class SmsSender(BaseModel):
    """Who an SMS comes from: a number or a Twilio messaging service."""

    from_: str | None = Field(default=None, alias="from", max_length=32)
    messaging_service_sid: str | None = Field(default=None, max_length=64)
    model_config = ConfigDict(populate_by_name=True, extra="forbid")


class EmailSender(BaseModel):
    """Who an email comes from, and where replies go."""

    from_: str | None = Field(default=None, alias="from", max_length=320)
    reply_to: str | None = Field(default=None, max_length=320)
    model_config = ConfigDict(populate_by_name=True, extra="forbid")


class LetterSender(BaseModel):
    """A letter's return address and letterhead."""

    return_address: list[str] = Field(default=[], max_length=8)
    logo_url: str | None = Field(default=None, max_length=2000)
    model_config = ConfigDict(extra="forbid")


class Senders(BaseModel):
    """The facility's sender identity per channel; what is unset falls back to the install's settings."""

    sms: SmsSender | None = None
    email: EmailSender | None = None
    letter: LetterSender | None = None
    push_app: str | None = Field(default=None, max_length=200)
    model_config = ConfigDict(extra="forbid")


class FacilityRequest(BaseModel):
    """A facility to make (contract §6: `key`, `name`, `timezone`, `parent`, `organization`)."""

    key: FacilityKey
    name: str = Field(min_length=1, max_length=200)
    timezone: str = Field(max_length=64)
    parent: FacilityKey | None = None
    organization: str | None = Field(
        default=None, pattern=r"^Organization/[A-Za-z0-9\-.]{1,64}$", description="`Organization/<id>`"
    )
    location: str | None = Field(default=None, pattern=r"^Location/[A-Za-z0-9\-.]{1,64}$")
    country: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    subdivision: str | None = Field(default=None, max_length=16)
    holidays: list[date] = Field(default=[], max_length=1000, description="days business-day waits skip")
    quiet_hours: str | None = Field(default=None, description="`21:00-08:00` in the facility's time zone")
    senders: Senders = Senders()
    help_phone: str | None = Field(default=None, max_length=32)
    default_language: str | None = Field(default=None, max_length=35)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if not known_zone(value):
            raise ValueError(f"unknown time zone {value!r}")
        return value

    @field_validator("quiet_hours")
    @classmethod
    def _window(cls, value: str | None) -> str | None:
        if value is not None and not _QUIET.match(value):
            raise ValueError("quiet hours are `HH:MM-HH:MM`")
        return value


class FacilityUpdate(BaseModel):
    """Changes to a facility: only the fields sent change (`null` clears an optional one); the key stays.
    The result is checked as a whole, as `POST /v1/facilities` checks a new one."""

    name: str | None = None
    timezone: str | None = None
    parent: str | None = None
    organization: str | None = None
    location: str | None = None
    country: str | None = None
    subdivision: str | None = None
    holidays: list[date] | None = None
    quiet_hours: str | None = None
    senders: Senders | None = None
    help_phone: str | None = None
    default_language: str | None = None
    model_config = ConfigDict(extra="forbid")


class FacilityView(FacilityRequest):
    """A facility as stored."""

    created_at: datetime


class FacilityList(BaseModel):
    """The group's facilities, the root first, then by key."""

    items: list[FacilityView]
