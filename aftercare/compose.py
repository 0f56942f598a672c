"""Composing a message for a send step: which template variant, rendered with what, sent to whom."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.journey_variables import JourneyVariables, with_attributes
from aftercare.store.templates import find_template
from aftercare.templating import render
from models.journey import SendSpec
from models.template import locale_candidates


class TemplateNotFoundError(LookupError):
    """No variant of the template for the patient's language or the default."""


@dataclass(frozen=True)
class ComposedMessage:
    """A rendered message and its recipient (None when the patient cannot be reached on the channel)."""

    channel: str
    to: str | None
    unreachable_reason: str | None
    subject: str | None
    body: str
    html: str | None
    template_key: str | None
    template_version: int | None
    locale: str | None


async def compose_message(
    session: AsyncSession, spec: SendSpec, variables: JourneyVariables
) -> ComposedMessage:
    """Render the step's template (or inline body) for this patient; raises `TemplateRenderError`."""
    if spec.template is not None:
        locales = locale_candidates(variables.profile.language)
        stored = await find_template(session, spec.template, locales)
        if stored is None:
            raise TemplateNotFoundError(
                f"template {spec.template!r} has no variant for locales {', '.join(locales)}"
            )
        template = stored.definition
        channel, subject_source, body_source = template.channel, template.subject, template.body
        html_source, key, version, locale = template.html, template.key, stored.version, template.locale
    else:
        assert spec.channel is not None
        assert spec.body is not None
        channel, subject_source, body_source = spec.channel, spec.subject, spec.body
        html_source, key, version, locale = None, None, None, None
    if any("attributes" in (source or "") for source in (subject_source, body_source, html_source)):
        variables = await with_attributes(session, variables)
    names = variables.template_variables()
    to, unreachable = recipient(channel, variables)
    return ComposedMessage(
        channel=channel,
        to=to,
        unreachable_reason=unreachable,
        subject=render(subject_source, names) if subject_source else None,
        body=render(body_source, names),
        html=render(html_source, names, html=True) if html_source else None,
        template_key=key,
        template_version=version,
        locale=locale,
    )


def recipient(channel: str, variables: JourneyVariables) -> tuple[str | None, str | None]:
    """The patient's address on a channel, or why there is none."""
    profile = variables.profile
    if channel == "sms":
        if profile.phone:
            return profile.phone, None
        if profile.phone_status == "invalid":
            return None, "the patient's phone number could not be normalised"
        return None, "the patient has no phone number"
    if channel == "email":
        return (profile.email, None) if profile.email else (None, "the patient has no email address")
    if channel == "letter":
        return (profile.id, None) if profile.address else (None, "the patient has no postal address")
    return None, f"the {channel} channel is not available for this patient yet"
