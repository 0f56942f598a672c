"""Message rendering: Jinja2 in a sandbox, with strict undefined variables.

A template that refers to something missing fails to render instead of sending a message with a hole
in it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from aftercare.voice.speech import SPEECH_FILTERS
from models.zones import zone_info


def format_datetime(value: Any, format: str = "%A %d %B %Y at %H:%M", tz: str | None = None) -> str:
    """`{{ trigger.start | datetime(tz=patient.timezone) }}`: an ISO dateTime in words, in a time zone."""
    moment = (
        value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    )
    if tz:
        zone = zone_info(tz)
        moment = moment.replace(tzinfo=zone) if moment.tzinfo is None else moment.astimezone(zone)
    return moment.strftime(format)


def format_date(value: Any, format: str = "%A %d %B %Y", tz: str | None = None) -> str:
    """`{{ trigger.start | date }}`: the day of an ISO date or dateTime."""
    return format_datetime(value, format, tz)


def _environment(autoescape: bool) -> ImmutableSandboxedEnvironment:
    environment = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=autoescape)
    environment.filters["datetime"] = format_datetime
    environment.filters["date"] = format_date
    environment.filters.update(SPEECH_FILTERS)  # dates, times and numbers as said in calls
    return environment


_text = _environment(autoescape=False)
_html = _environment(autoescape=True)


class TemplateRenderError(ValueError):
    """A template that does not parse or cannot be rendered with the data at hand."""


def check_template_syntax(source: str) -> None:
    """Raise `TemplateRenderError` naming the line when the source is not valid Jinja2."""
    try:
        _text.parse(source)
    except TemplateSyntaxError as error:
        raise TemplateRenderError(f"line {error.lineno}: {error.message}") from error


@lru_cache(maxsize=512)
def _compile(source: str, html: bool) -> Any:
    return (_html if html else _text).from_string(source)


def render(source: str, variables: Mapping[str, Any], *, html: bool = False) -> str:
    """Render `source`; HTML output escapes the variables it inserts."""
    try:
        return str(_compile(source, html).render(**variables)).strip()
    except TemplateError as error:
        raise TemplateRenderError(error.message or type(error).__name__) from error
    except (TypeError, ValueError, ArithmeticError, LookupError) as error:
        raise TemplateRenderError(f"{type(error).__name__}: {error}") from error
