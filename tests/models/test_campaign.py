"""Campaign definitions: one template or A/B variants, throttles, schedules and windows that make
sense, or a clear error."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from models.campaign import SINGLE_VARIANT, CampaignDefinition

BASE: dict[str, Any] = {"key": "flu", "name": "Flu", "segment": "adults", "template": "flu-sms"}


def errors(**fields: Any) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        CampaignDefinition.model_validate({**BASE, **fields})
    return [error["msg"].removeprefix("Value error, ") for error in caught.value.errors()]


def test_a_single_template_is_the_variant_main() -> None:
    campaign = CampaignDefinition.model_validate(BASE)
    [variant] = campaign.variant_list()
    assert (variant.key, variant.template) == (SINGLE_VARIANT, "flu-sms")
    assert campaign.schedule.recurring is False
    assert campaign.expires_after.days == 7


def test_a_template_and_variants_together_are_refused() -> None:
    assert errors(variants=[{"key": "a", "template": "x"}]) == [
        "a campaign sends either a `template` or A/B `variants`, not both"
    ]


def test_variant_keys_are_unique() -> None:
    assert errors(template=None, variants=[{"key": "a", "template": "x"}, {"key": "a", "template": "y"}]) == [
        "two variants share a key"
    ]


def test_a_throttle_names_one_rate() -> None:
    assert errors(throttle={"per_second": 5, "per_hour": 10}) == [
        "a throttle needs exactly one of `per_second`, `per_minute` or `per_hour`"
    ]
    assert CampaignDefinition.model_validate({**BASE, "throttle": {"per_hour": 36000}}).throttle.rate == 10  # type: ignore[union-attr]


def test_a_recurring_schedule_is_an_interval_or_a_calendar_at_most_hourly() -> None:
    assert errors(schedule={"every": "PT10M"}) == [
        "a recurring campaign runs at most hourly (`every` of PT1H or more)"
    ]
    assert errors(schedule={"every": "P7D", "cron": "0 9 * * MON"}) == [
        "a schedule is `every` an interval or a `cron` calendar, not both"
    ]
    assert errors(schedule={"at": "2026-12-02T09:00:00Z", "until": "2026-12-03T09:00:00Z"}) == [
        "`until` goes with `every` or `cron`"
    ]


def test_a_send_window_needs_a_length_and_real_weekdays() -> None:
    assert errors(send_window={"start": "09:00", "end": "09:00"}) == [
        "a send window's `start` and `end` must differ"
    ]
    assert errors(send_window={"start": "09:00", "end": "17:00", "days": ["funday"]})


def test_a_schedule_time_must_say_its_zone() -> None:
    assert errors(schedule={"at": "2026-12-02T09:00:00"}) == ["Input should have timezone info"]
