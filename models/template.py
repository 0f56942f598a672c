"""Message templates (contract §4): Jinja2 text per channel and locale."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints, field_validator, model_validator

from models.base import DefinitionModel, OwnerFacility
from models.journey import Channel, Key, Purpose
from models.voice import QuestionId, Spoken

Locale = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$", max_length=35)]


def normalise_locale(locale: str) -> str:
    """BCP-47 case conventions: `EN-us` becomes `en-US`, `pt-br` becomes `pt-BR`."""
    language, *rest = locale.split("-")
    parts = [language.lower()]
    for part in rest:
        parts.append(part.upper() if len(part) == 2 else part.title() if len(part) == 4 else part.lower())
    return "-".join(parts)


def locale_candidates(language: str | None, default: str = "en") -> list[str]:
    """Locales to try for a patient's language, most specific first: `pt-BR`, `pt`, then the default."""
    candidates: list[str] = []
    if language:
        tags = normalise_locale(language).split("-")
        candidates = ["-".join(tags[:n]) for n in range(len(tags), 0, -1)]
    if default not in candidates:
        candidates.append(default)
    return candidates


class TemplateDefinition(DefinitionModel):
    """One channel's and locale's variant of a message template.

    `subject` is the email subject (required), the push notification's title, or the letter's
    "Re:" line; `html` is an email's HTML body.
    """

    key: Key
    channel: Channel
    locale: Locale = "en"
    name: str | None = None
    facility: OwnerFacility = None
    subject: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = None
    body: str = Field(min_length=1, max_length=20000)
    html: str | None = None
    # The purpose of messages from this template; `phi: true` when the text carries protected health
    # information, which goes only over a channel the patient consented to receive PHI on; otherwise
    # the `non_phi_body` (and `non_phi_subject`) is sent, or the send is skipped.
    purpose: Purpose | None = None
    phi: bool = False
    non_phi_subject: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = None
    non_phi_body: str | None = Field(default=None, min_length=1, max_length=20000)
    # A voice template (a call's script in this locale): `body` is said first; `prompts` say the call
    # step's `gather` questions (by id), `voicemail` what is left on an answering machine, `goodbye`
    # the call's last words.
    prompts: dict[QuestionId, Spoken] | None = None
    voicemail: Spoken | None = None
    goodbye: Spoken | None = None
    # A notice the patient may not opt out of (the hospital's call): its emails carry no unsubscribe link.
    care_critical: bool = False

    @field_validator("locale")
    @classmethod
    def _normalise(cls, value: str) -> str:
        return normalise_locale(value)

    @model_validator(mode="after")
    def _channel_fields(self) -> TemplateDefinition:
        if self.channel == "email" and not self.subject:
            raise ValueError("an email template needs a `subject`")
        if self.html is not None and self.channel != "email":
            raise ValueError("only email templates have an `html` body")
        if self.subject is not None and self.channel == "sms":
            raise ValueError("an SMS has no `subject`")
        if (self.non_phi_body or self.non_phi_subject) and not self.phi:
            raise ValueError("a non-PHI variant goes with `phi: true`")
        if self.non_phi_subject is not None and self.channel == "sms":
            raise ValueError("an SMS has no `non_phi_subject`")
        spoken = (self.prompts, self.voicemail, self.goodbye)
        if any(part is not None for part in spoken) and self.channel != "voice":
            raise ValueError("only voice templates have `prompts`, `voicemail` and `goodbye`")
        return self
