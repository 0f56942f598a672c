"""Campaign definitions: one message (or A/B variants) to every member of a segment, on a schedule,
inside a send window on each patient's own clock, at a bounded rate.

A definition is data, published and versioned like journeys and segments (`POST /v1/campaigns`). A
launch freezes the segment's members at that moment into the run's audience; the `CampaignRun`
workflow then pages through it in batches.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, Field, StringConstraints, model_validator

from models.base import DefinitionModel, OwnerFacility
from models.durations import IsoDuration
from models.journey import Channel, ChannelChoice, Key, OverCap, Purpose, SendSpec

VariantKey = Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]+$", min_length=1, max_length=32)]
ClockTime = Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# The variant a campaign with a single `template` sends.
SINGLE_VARIANT = "main"
DEFAULT_CAMPAIGN_PURPOSE: Purpose = "health_education"


class CampaignVariant(DefinitionModel):
    """An A/B variant: a template, sent to a share of the audience in proportion to its weight."""

    key: VariantKey
    template: Key
    weight: float = Field(default=1.0, gt=0, le=1_000_000)


class SendWindow(DefinitionModel):
    """When messages may go, on the patient's clock (their time zone, else the hospital's): from
    `start` to `end` (which may span midnight), on `days` (every day when unset)."""

    start: ClockTime
    end: ClockTime
    days: list[Weekday] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _not_empty(self) -> SendWindow:
        if self.start == self.end:
            raise ValueError("a send window's `start` and `end` must differ")
        return self


class Throttle(DefinitionModel):
    """At most this many messages per second, minute or hour for the whole campaign (exactly one)."""

    per_second: float | None = Field(default=None, gt=0, le=100_000)
    per_minute: float | None = Field(default=None, gt=0)
    per_hour: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _exactly_one(self) -> Throttle:
        if sum(rate is not None for rate in (self.per_second, self.per_minute, self.per_hour)) != 1:
            raise ValueError("a throttle needs exactly one of `per_second`, `per_minute` or `per_hour`")
        return self

    @property
    def rate(self) -> float:
        """Messages per second."""
        if self.per_second is not None:
            return self.per_second
        if self.per_minute is not None:
            return self.per_minute / 60
        assert self.per_hour is not None
        return self.per_hour / 3600


class CampaignSchedule(DefinitionModel):
    """When a launched campaign runs: at once (nothing set), once at `at`, or again and again (`every`
    an interval, or `cron` a calendar in Temporal's cron syntax, from `at` if given, until `until`)."""

    at: AwareDatetime | None = None
    every: IsoDuration | None = None
    cron: Annotated[str, StringConstraints(min_length=9, max_length=200)] | None = None
    until: AwareDatetime | None = None

    @model_validator(mode="after")
    def _consistent(self) -> CampaignSchedule:
        if self.every is not None and self.cron is not None:
            raise ValueError("a schedule is `every` an interval or a `cron` calendar, not both")
        if self.every is not None and self.every < timedelta(hours=1):
            raise ValueError("a recurring campaign runs at most hourly (`every` of PT1H or more)")
        if self.until is not None and not self.recurring:
            raise ValueError("`until` goes with `every` or `cron`")
        if self.until is not None and self.at is not None and self.until <= self.at:
            raise ValueError("`until` must come after `at`")
        return self

    @property
    def recurring(self) -> bool:
        """True when the campaign runs more than once."""
        return self.every is not None or self.cron is not None


class CampaignInvite(DefinitionModel):
    """The campaign invites its audience to a published event: each message carries the recipient's
    own self-service link, as `invite.url` (with `invite.title`, `invite.event_key`,
    `invite.expires_at`), valid `valid_days`."""

    event: Key
    valid_days: int = Field(default=14, ge=1, le=90)


class CampaignDefinition(DefinitionModel):
    """A campaign: who (a segment), what (a template, or A/B `variants`), when (`schedule`, inside the
    `send_window`), how fast (`throttle`), and for what purpose (consent is per purpose)."""

    key: Key
    version: int = Field(default=1, ge=1)
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    description: str | None = None
    segment: Key
    facility: OwnerFacility = None
    template: Key | None = None
    variants: list[CampaignVariant] | None = Field(default=None, min_length=1, max_length=26)
    channel: ChannelChoice | None = None
    fallback: list[Channel] | None = Field(default=None, min_length=1)
    # The purpose of its messages (else the templates', else health education): consent is per purpose.
    purpose: Purpose | None = None
    over_cap: OverCap = "defer"
    schedule: CampaignSchedule = CampaignSchedule()
    send_window: SendWindow | None = None
    throttle: Throttle | None = None
    # An invitation to an event: every message carries the recipient's self-service link.
    invite: CampaignInvite | None = None
    # How long a run may take: sends still waiting for their window or a cap then expire.
    expires_after: IsoDuration = timedelta(days=7)
    batch_size: int = Field(default=500, ge=1, le=2000)

    @model_validator(mode="after")
    def _content(self) -> CampaignDefinition:
        if (self.template is None) == (self.variants is None):
            raise ValueError("a campaign sends either a `template` or A/B `variants`, not both")
        if self.variants is not None and len({v.key for v in self.variants}) != len(self.variants):
            raise ValueError("two variants share a key")
        if self.fallback is not None and self.channel not in (None, "best"):
            raise ValueError("`fallback` goes with `channel: best`")
        return self

    def variant_list(self) -> list[CampaignVariant]:
        """The variants sent: the A/B variants, or the single template as variant `main`."""
        if self.variants is not None:
            return list(self.variants)
        assert self.template is not None
        return [CampaignVariant(key=SINGLE_VARIANT, template=self.template, weight=1.0)]

    def send_spec(self, variant: CampaignVariant) -> SendSpec:
        """What one variant sends, as a journey's `send` step would."""
        return SendSpec(template=variant.template, channel=self.channel, fallback=self.fallback)

    def templates(self) -> list[str]:
        """Every template the campaign sends."""
        return sorted({variant.template for variant in self.variant_list()})

    def document(self) -> dict[str, Any]:
        """The definition as stored and served."""
        return self.model_dump(mode="json", exclude_none=True)

    def first_run_at(self, launched_at: datetime) -> datetime:
        """When a one-off campaign launched at `launched_at` sends."""
        return max(self.schedule.at or launched_at, launched_at)
