"""Reading the console's forms: `application/x-www-form-urlencoded` only (no form uploads a file), parsed
once per request and kept for the route after the CSRF check has read it."""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import Request

MAX_FORM_BYTES = 512 * 1024


class FormRefused(Exception):
    """A form body the console does not read."""


async def read_form(request: Request) -> dict[str, str]:
    """The posted form's fields (the first value of each name)."""
    cached: dict[str, str] | None = getattr(request.state, "console_form", None)
    if cached is not None:
        return cached
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if body and kind != "application/x-www-form-urlencoded":
        raise FormRefused("forms are read as application/x-www-form-urlencoded")
    if len(body) > MAX_FORM_BYTES:
        raise FormRefused("the form is too large")
    fields: dict[str, str] = {}
    for name, value in parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True):
        fields.setdefault(name, value)
    request.state.console_form = fields
    return fields


async def read_form_values(request: Request, name: str) -> list[str]:
    """Every value posted for `name` (checkboxes sharing a name), after `read_form` has accepted the body."""
    await read_form(request)
    body = await request.body()
    return [value for field, value in parse_qsl(body.decode("utf-8", errors="replace")) if field == name]
