"""The hospital's guardrail configuration, taken from the settings once per worker."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time

from pydantic import BaseModel, ConfigDict, Field, model_validator


class FrequencyCap(BaseModel):
    """At most `per_day` / `per_week` messages (rolling 24 hours / 7 days) per patient, over every
    journey, on a channel (`*`: all together) for a purpose (`*`: all together)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    channel: str = "*"
    purpose: str = "*"
    per_day: int | None = Field(default=None, ge=0)
    per_week: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _some_limit(self) -> FrequencyCap:
        if self.per_day is None and self.per_week is None:
            raise ValueError("a frequency cap needs `per_day` or `per_week`")
        return self

    def applies(self, channel: str, purpose: str) -> bool:
        """True when a send on this channel for this purpose counts against this cap."""
        return self.channel in ("*", channel) and self.purpose in ("*", purpose)


def parse_quiet_hours(text: str | None) -> tuple[time, time] | None:
    """`21:00-08:00` as (start, end); None for none (`none`, `off`, empty, or start equal to end)."""
    if text is None or text.strip().lower() in ("", "none", "off"):
        return None
    start, end = (time.fromisoformat(part.strip()) for part in text.split("-", 1))
    return None if start == end else (start, end)


@dataclass(frozen=True)
class GuardrailPolicy:
    """Quiet hours (None: none), urgent purposes, frequency caps, the age under which a patient needs a
    guardian contact (0: no age rule), and the purposes that need an explicit opt-in."""

    hospital_timezone: str = "America/New_York"
    quiet_hours: tuple[time, time] | None = None
    urgent_purposes: frozenset[str] = frozenset()
    caps: tuple[FrequencyCap, ...] = ()
    minor_age: int = 0
    opt_in_purposes: frozenset[str] = field(default_factory=lambda: frozenset({"marketing"}))
