"""Dates, times and numbers written to be spoken (`<Say>` reads text aloud): an ISO dateTime or a phone
number read as written sounds like noise, so call scripts render them as a person would say them, in
the patient's language (`en`, `es`, `fr`, `de`; anything else as English).

Template filters: `{{ trigger.start | spoken_datetime }}`, `{{ trigger.start | spoken_date }}`,
`{{ context.callback | spoken_digits }}`, `{{ 7.5 | spoken_number }}`; the language and time zone are
the patient's (`patient.language`, `timezone`) unless given (`spoken_datetime("es", "Europe/Madrid")`).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from jinja2 import pass_context
from jinja2.runtime import Context

from models.zones import zone_info

_DAYS = {
    "en": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
    "es": ["lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"],
    "fr": ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"],
    "de": ["Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"],
}
_MONTHS = {
    "en": "January February March April May June July August September October November December",
    "es": "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre",
    "fr": "janvier février mars avril mai juin juillet août septembre octobre novembre décembre",
    "de": "Januar Februar März April Mai Juni Juli August September Oktober November Dezember",
}


def speech_language(language: str | None) -> str:
    """The language a text is spoken in: the patient's primary language tag when known, else English."""
    primary = (language or "en").split("-")[0].lower()
    return primary if primary in _DAYS else "en"


def _moment(value: Any, tz: str | None) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    else:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if tz and moment.tzinfo is not None:
        moment = moment.astimezone(zone_info(tz))
    return moment


def say_date(value: Any, language: str | None = None, tz: str | None = None) -> str:
    """The day, as said: `Monday, December 7`, `lunes 7 de diciembre`, `lundi 7 décembre`."""
    moment = _moment(value, tz)
    lang = speech_language(language)
    day, month = _DAYS[lang][moment.weekday()], _MONTHS[lang].split()[moment.month - 1]
    if lang == "es":
        return f"{day} {moment.day} de {month}"
    if lang == "fr":
        return f"{day} {'1er' if moment.day == 1 else moment.day} {month}"
    if lang == "de":
        return f"{day}, {moment.day}. {month}"
    return f"{day}, {month} {moment.day}"


def say_time(value: Any, language: str | None = None, tz: str | None = None) -> str:
    """The time of day, as said: `2:30 PM`, `3 PM`, `las 14:30`, `14 h 30`, `14:30 Uhr`."""
    moment = _moment(value, tz)
    lang = speech_language(language)
    if lang == "es":
        return f"{'la' if moment.hour in (1, 13) else 'las'} {moment.hour}:{moment.minute:02d}"
    if lang == "fr":
        return f"{moment.hour} h {moment.minute:02d}" if moment.minute else f"{moment.hour} heures"
    if lang == "de":
        return f"{moment.hour}:{moment.minute:02d} Uhr"
    hour = moment.hour % 12 or 12
    half = "AM" if moment.hour < 12 else "PM"
    return f"{hour}:{moment.minute:02d} {half}" if moment.minute else f"{hour} {half}"


def say_datetime(value: Any, language: str | None = None, tz: str | None = None) -> str:
    """Day and time, as said: `Monday, December 7 at 2:30 PM`, `lunes 7 de diciembre a las 14:30`."""
    joiner = {"en": "at", "es": "a", "fr": "à", "de": "um"}[speech_language(language)]
    return f"{say_date(value, language, tz)} {joiner} {say_time(value, language, tz)}"


def say_digits(value: Any) -> str:
    """A number read digit by digit, its groups apart (phone numbers, codes): `555-0100` is said
    `5 5 5, 0 1 0 0`."""
    groups = [group for group in "".join(c if c.isdigit() else " " for c in str(value)).split() if group]
    return ", ".join(" ".join(group) for group in groups)


def say_number(value: Any, language: str | None = None) -> str:
    """A quantity as said in the language: `7.5` → `7.5` in English, `7,5` in Spanish, French, German."""
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return text.replace(".", ",") if speech_language(language) != "en" else text


def _patient(context: Context) -> tuple[str | None, str | None]:
    patient = context.get("patient") or {}
    language = patient.get("language") if isinstance(patient, dict) else None
    return language, context.get("timezone")


@pass_context
def spoken_date(context: Context, value: Any, language: str | None = None, tz: str | None = None) -> str:
    """Filter: `say_date` in the patient's language and time zone unless given."""
    own_language, own_zone = _patient(context)
    return say_date(value, language or own_language, tz or own_zone)


@pass_context
def spoken_datetime(context: Context, value: Any, language: str | None = None, tz: str | None = None) -> str:
    """Filter: `say_datetime` in the patient's language and time zone unless given."""
    own_language, own_zone = _patient(context)
    return say_datetime(value, language or own_language, tz or own_zone)


@pass_context
def spoken_number(context: Context, value: Any, language: str | None = None) -> str:
    """Filter: `say_number` in the patient's language unless given."""
    return say_number(value, language or _patient(context)[0])


SPEECH_FILTERS = {
    "spoken_date": spoken_date,
    "spoken_datetime": spoken_datetime,
    "spoken_number": spoken_number,
    "spoken_digits": say_digits,
}
