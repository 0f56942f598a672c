"""Composing a message for a send step: which channel, which template variant, rendered with what, sent
to whom."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.guardrails.facts import (
    PREFERRED_CHANNEL_ATTRIBUTE,
    PREFERRED_LANGUAGE_ATTRIBUTE,
    SEND_ATTRIBUTES,
    PatientFacts,
    load_facts,
)
from aftercare.journey_variables import JourneyVariables, with_fetched
from aftercare.reachability import Reachability, choose_channels, reach
from aftercare.store.templates import TemplateBook, load_template_book
from aftercare.templating import render
from models.journey import CHANNELS, SendSpec
from models.template import locale_candidates


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
    care_critical: bool = False


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
    care_critical: bool = False


@dataclass(frozen=True)
class SendPlan:
    """What a send's content needs before any patient is looked at: the template's variants, the
    channels it has content for, and whether its texts refer to attributes or fetched data."""

    spec: SendSpec
    book: TemplateBook
    available: frozenset[str]
    wants_attributes: bool
    wants_fetched: bool
    texts: tuple[str, ...] = ()

    def mentions(self, name: str) -> bool:
        """Whether any text of the send may refer to the variable `name` (a text that does not name it
        cannot reach it: templates include nothing)."""
        return any(name in text for text in self.texts)

    @property
    def attribute_names(self) -> tuple[str, ...] | None:
        """The patient attributes to load: all of them (None) when the texts use them."""
        return None if self.wants_attributes else SEND_ATTRIBUTES


async def plan_send(session: AsyncSession, spec: SendSpec) -> SendPlan:
    """Load the send's template variants; raises `TemplateNotFoundError` when it has none."""
    return plan_for(spec, await load_template_book(session, [spec.template] if spec.template else []))


def plan_for(spec: SendSpec, book: TemplateBook) -> SendPlan:
    """The send's plan from a book holding its template; raises `TemplateNotFoundError` when the book
    has no variant of it."""
    if spec.template is not None:
        available = book.channels(spec.template)
        if not available:
            raise TemplateNotFoundError(f"template {spec.template!r} does not exist")
        texts = book.texts(spec.template)
    else:
        if spec.channel is not None and spec.channel != "best":
            available = {spec.channel}
        else:
            # An inline body can go on any channel of the default order or the step's `fallback`
            # (which alone may name `voice`).
            offered = (*CHANNELS, *(spec.fallback or ()))
            available = {channel for channel in offered if channel != "email" or spec.subject}
        texts = [text for text in (spec.subject, spec.body) if text]
    return SendPlan(
        spec=spec,
        book=book,
        available=frozenset(available),
        wants_attributes=any("attributes" in text for text in texts),
        wants_fetched=any("fetched" in text for text in texts),
        texts=tuple(texts),
    )


async def compose_message(
    session: AsyncSession, spec: SendSpec, variables: JourneyVariables
) -> ComposedMessage:
    """Choose the channel and render the step's template (or inline body) for this patient.

    A patient who cannot be reached on any candidate channel gets a message with no recipient and the
    reason, channel by channel. Raises `TemplateNotFoundError` or `TemplateRenderError`.
    """
    composed, _ = await compose_with_facts(session, spec, variables)
    return composed


async def compose_with_facts(
    session: AsyncSession,
    spec: SendSpec,
    variables: JourneyVariables,
    *,
    minor_age: int = 0,
    today: date | None = None,
    plan: SendPlan | None = None,
) -> tuple[ComposedMessage, PatientFacts]:
    """`compose_message`, also answering the patient's facts (guardian looked up under `minor_age`
    on `today`) for the guardrails to judge the send by; `plan` when the caller planned the send."""
    plan = plan or await plan_send(session, spec)
    if plan.wants_fetched:
        variables = await with_fetched(session, variables)
    profile = variables.profile
    loaded = await load_facts(
        session,
        [profile],
        channels=plan.available,
        attributes=plan.attribute_names,
        minor_age=minor_age,
        today=today,
    )
    return compose(plan, variables, loaded[profile.id]), loaded[profile.id]


def compose(plan: SendPlan, variables: JourneyVariables, facts: PatientFacts) -> ComposedMessage:
    """Compose for one patient from the plan and the patient's facts (no I/O). The variables must hold
    what `fetched` data the plan wants; attributes come from the facts."""
    spec = plan.spec
    profile = variables.profile
    preference = None
    if spec.chooses_channel or len(plan.available) > 1:
        preferred = facts.attributes.get(PREFERRED_CHANNEL_ATTRIBUTE)
        preference = preferred if isinstance(preferred, str) else profile.preferred_channel
    candidates = choose_channels(spec, set(plan.available), preference)
    if not candidates:
        wanted = spec.channel if spec.channel not in (None, "best") else ", ".join(spec.fallback or CHANNELS)
        raise TemplateNotFoundError(f"template {spec.template!r} has no variant for {wanted}")
    reached = reach(profile, candidates, facts)
    channel = next((candidate for candidate in candidates if candidate in reached.addresses), candidates[0])
    language = facts.attributes.get(PREFERRED_LANGUAGE_ATTRIBUTE)
    sources = _sources(plan, channel, language if isinstance(language, str) else profile.language)
    if plan.wants_attributes and variables.attributes is None:
        variables = replace(variables, attributes=dict(facts.attributes))
    names = variables.template_variables()
    to = reached.addresses.get(channel)
    return ComposedMessage(
        channel=channel,
        to=to,
        unreachable_reason=None if to else _unreachable(reached, candidates),
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
        care_critical=sources.care_critical,
    )


def _sources(plan: SendPlan, channel: str, language: str | None) -> _Sources:
    spec = plan.spec
    if spec.template is None:
        assert spec.body is not None
        return _Sources(
            subject=spec.subject if channel not in ("sms", "voice") else None, body=spec.body, html=None
        )
    locales = locale_candidates(language)
    stored = plan.book.find(spec.template, channel, locales)
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
        care_critical=template.care_critical,
    )


def _unreachable(reach: Reachability, candidates: list[str]) -> str:
    if len(candidates) == 1:
        return reach.blocked[candidates[0]]
    return f"no reachable channel: {reach.explain(candidates)}"
