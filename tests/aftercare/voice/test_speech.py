"""Dates, times and numbers in call scripts are rendered as a person says them, in the patient's
language and time zone, never as ISO text or one long number."""

from __future__ import annotations

import pytest

from aftercare.templating import render
from aftercare.voice.speech import say_date, say_datetime, say_digits, say_number, say_time

APPOINTMENT = "2026-12-07T19:30:00Z"  # 14:30 in New York


@pytest.mark.parametrize(
    ("language", "spoken"),
    [
        ("en", "Monday, December 7 at 2:30 PM"),
        ("en-GB", "Monday, December 7 at 2:30 PM"),
        ("es", "lunes 7 de diciembre a las 14:30"),
        ("fr", "lundi 7 décembre à 14 h 30"),
        ("de", "Montag, 7. Dezember um 14:30 Uhr"),
        ("vi", "Monday, December 7 at 2:30 PM"),
    ],
)
def test_an_appointment_time_is_said_in_the_patient_s_language(language: str, spoken: str) -> None:
    assert say_datetime(APPOINTMENT, language, "America/New_York") == spoken


def test_whole_hours_and_the_first_of_the_month_are_said_naturally() -> None:
    assert say_time("2026-03-01T15:00:00", "en") == "3 PM"
    assert say_time("2026-03-01T00:05:00", "en") == "12:05 AM"
    assert say_time("2026-03-01T13:00:00", "es") == "la 13:00"
    assert say_time("2026-03-01T15:00:00", "fr") == "15 heures"
    assert say_date("2026-03-01", "fr") == "dimanche 1er mars"


def test_phone_numbers_are_read_digit_by_digit_in_their_groups() -> None:
    assert say_digits("+1 555-010-0100") == "1, 5 5 5, 0 1 0, 0 1 0 0"


def test_decimals_take_the_language_s_separator() -> None:
    assert (say_number(7.5, "en"), say_number(7.5, "es"), say_number(12, "de")) == ("7.5", "7,5", "12")


def test_templates_speak_in_the_patient_s_language_and_time_zone_by_default() -> None:
    variables = {
        "patient": {"given": "Ana", "language": "es"},
        "timezone": "America/New_York",
        "trigger": {"start": APPOINTMENT},
    }
    source = "Hola {{ patient.given }}, su cita es el {{ trigger.start | spoken_datetime }}."
    assert render(source, variables) == "Hola Ana, su cita es el lunes 7 de diciembre a las 14:30."
    assert render("{{ trigger.start | spoken_date('en') }}", variables) == "Monday, December 7"
