"""Composing a message for a send step: which channel, which template variant, rendered with what, sent
to whom."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.journey_variables import JourneyVariables, with_attributes, with_fetched
from aftercare.reachability import Reachability, choose_channels, reachability
from aftercare.store.attributes import attribute_of
from aftercare.store.templates import find_template, template_channels
from aftercare.templating import render
from models.journey import CHANNELS, SendSpec
from models.template import locale_candidates

PREFERRED_CHANNEL_ATTRIBUTE = "preferred_channel"


class TemplateNotFoundError(LookupError):
    """No variant of the template for the channel, or for the patient's language or the default."""


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
    purpose: str | None = None
    phi: bool = False
    non_phi_subject: str | None = None
    non_phi_body: str | None = None


@dataclass(frozen=True)
class _Sources:
    subject: str | None
    body: str
    html: str | None
    template_key: str | None = None
    template_version: int | None = None
    locale: str | None = None
    purpose: str | None = None
    phi: bool = False
    non_phi_subject: str | None = None
    non_phi_body: str | None = None


async def compose_message(
    session: AsyncSession, spec: SendSpec, variables: JourneyVariables
) -> ComposedMessage:
    """Choose the channel and render the step's template (or inline body) for this patient.

    A patient who cannot be reached on any candidate channel gets a message with no recipient and the
    reason, channel by channel. Raises `TemplateNotFoundError` or `TemplateRenderError`.
    """
    profile = variables.profile
    available = await _content_channels(session, spec)
    preference = None
    if spec.chooses_channel or len(available) > 1:
        preference = await attribute_of(session, profile.id, PREFERRED_CHANNEL_ATTRIBUTE)
        preference = preference if isinstance(preference, str) else profile.preferred_channel
    candidates = choose_channels(spec, available, preference)
    if not candidates:
        wanted = spec.channel if spec.channel not in (None, "best") else ", ".join(spec.fallback or CHANNELS)
        raise TemplateNotFoundError(f"template {spec.template!r} has no variant for {wanted}")
    reach = await reachability(session, profile, candidates)
    channel = next((candidate for candidate in candidates if candidate in reach.addresses), candidates[0])
    sources = await _sources(session, spec, channel, profile.language)
    texts = (
        sources.subject or "",
        sources.body,
        sources.html or "",
        sources.non_phi_subject or "",
        sources.non_phi_body or "",
    )
    if any("attributes" in text for text in texts):
        variables = await with_attributes(session, variables)
    if any("fetched" in text for text in texts):
        variables = await with_fetched(session, variables)
    names = variables.template_variables()
    to = reach.addresses.get(channel)
    return ComposedMessage(
        channel=channel,
        to=to,
        unreachable_reason=None if to else _unreachable(reach, candidates),
        subject=render(sources.subject, names) if sources.subject else None,
        body=render(sources.body, names),
        html=render(sources.html, names, html=True) if sources.html else None,
        template_key=sources.template_key,
        template_version=sources.template_version,
        locale=sources.locale,
        purpose=sources.purpose,
        phi=sources.phi,
        non_phi_subject=render(sources.non_phi_subject, names) if sources.non_phi_subject else None,
        non_phi_body=render(sources.non_phi_body, names) if sources.non_phi_body else None,
    )


async def _content_channels(session: AsyncSession, spec: SendSpec) -> set[str]:
    """The channels the send has content for: the template's variants, or any for an inline body."""
    if spec.template is not None:
        channels = (await template_channels(session, [spec.template])).get(spec.template)
        if not channels:
            raise TemplateNotFoundError(f"template {spec.template!r} does not exist")
        return channels
    if spec.channel is not None and spec.channel != "best":
        return {spec.channel}
    return {channel for channel in CHANNELS if channel != "email" or spec.subject}


async def _sources(session: AsyncSession, spec: SendSpec, channel: str, language: str | None) -> _Sources:
    if spec.template is None:
        assert spec.body is not None
        return _Sources(subject=spec.subject if channel != "sms" else None, body=spec.body, html=None)
    locales = locale_candidates(language)
    stored = await find_template(session, spec.template, channel, locales)
    if stored is None:
        raise TemplateNotFoundError(
            f"template {spec.template!r} has no {channel} variant for locales {', '.join(locales)}"
        )
    template = stored.definition
    return _Sources(
        subject=template.subject,
        body=template.body,
        html=template.html,
        template_key=template.key,
        template_version=stored.version,
        locale=template.locale,
        purpose=template.purpose,
        phi=template.phi,
        non_phi_subject=template.non_phi_subject,
        non_phi_body=template.non_phi_body,
    )


def _unreachable(reach: Reachability, candidates: list[str]) -> str:
    if len(candidates) == 1:
        return reach.blocked[candidates[0]]
    return f"no reachable channel: {reach.explain(candidates)}"
