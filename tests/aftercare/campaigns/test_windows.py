"""Send windows on the patient's clock: open until their end, closed until their next start, across
midnight, on chosen weekdays, and through DST changes."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from aftercare.campaigns.windows import window_state, zone_named
from models.campaign import SendWindow

NEW_YORK = ZoneInfo("America/New_York")


def at(text: str, zone: ZoneInfo = NEW_YORK) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=zone)


def test_inside_the_window_it_is_open_until_its_end_on_the_patients_clock() -> None:
    state = window_state(SendWindow(start="09:00", end="18:00"), NEW_YORK, at("2026-12-01T10:30"))
    assert state.open
    assert state.closes_at == at("2026-12-01T18:00").astimezone(UTC)


def test_after_the_window_it_opens_the_next_morning() -> None:
    state = window_state(SendWindow(start="09:00", end="18:00"), NEW_YORK, at("2026-12-01T19:00"))
    assert not state.open
    assert state.opens_at == at("2026-12-02T09:00").astimezone(UTC)


def test_a_window_across_midnight_is_open_after_midnight() -> None:
    window = SendWindow(start="22:00", end="02:00")
    assert window_state(window, NEW_YORK, at("2026-12-02T01:00")).closes_at == at("2026-12-02T02:00")
    assert window_state(window, NEW_YORK, at("2026-12-02T12:00")).opens_at == at("2026-12-02T22:00")


def test_weekdays_only_skips_the_weekend() -> None:
    window = SendWindow(start="09:00", end="17:00", days=["mon", "tue", "wed", "thu", "fri"])
    saturday_noon = at("2026-12-05T12:00")
    state = window_state(window, NEW_YORK, saturday_noon)
    assert not state.open
    assert state.opens_at == at("2026-12-07T09:00")  # Monday


def test_the_same_instant_is_inside_the_window_in_one_zone_and_outside_in_another() -> None:
    window = SendWindow(start="09:00", end="17:00")
    instant = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)  # 10:00 in New York, 00:00 in Tokyo
    assert window_state(window, NEW_YORK, instant).open
    tokyo = window_state(window, ZoneInfo("Asia/Tokyo"), instant)
    assert not tokyo.open
    assert tokyo.opens_at == datetime(2026, 12, 2, 9, 0, tzinfo=ZoneInfo("Asia/Tokyo"))


def test_wall_clock_times_hold_across_a_dst_change() -> None:
    window = SendWindow(start="09:00", end="17:00")
    # 2027-03-14: clocks spring forward in New York; 09:00 is 13:00 UTC that day, 14:00 UTC the day before.
    before = window_state(window, NEW_YORK, datetime(2027, 3, 13, 23, 0, tzinfo=UTC))
    assert before.opens_at == datetime(2027, 3, 14, 13, 0, tzinfo=UTC)
    assert window_state(window, NEW_YORK, datetime(2027, 3, 13, 14, 30, tzinfo=UTC)).open


def test_without_a_window_it_is_always_open() -> None:
    assert window_state(None, NEW_YORK, at("2026-12-01T03:00")).open


def test_an_unknown_zone_name_falls_back_to_the_hospitals() -> None:
    assert zone_named("Mars/Olympus_Mons", "America/New_York") == NEW_YORK
    assert zone_named("Europe/Paris", "America/New_York") == ZoneInfo("Europe/Paris")
