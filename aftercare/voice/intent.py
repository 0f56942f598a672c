"""A call's script recorded with its send intent: one transaction, so a recorded call always has the
TwiML it will be answered with."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.store.templates import load_template_book
from aftercare.voice.calls import record_call
from aftercare.voice.script import render_script
from models.tables import Message
from models.voice import CallScript


async def record_call_script(
    session: AsyncSession, message: Message, script: CallScript | None, variables: Mapping[str, Any]
) -> None:
    """Render the call's script for the patient and record it beside the message; a `voice` send with
    no script says its body and hangs up. A voice template's variant in the patient's locale says the
    questions' prompts and the voicemail. Raises `TemplateRenderError`."""
    chosen = await _localised(session, message, script or CallScript())
    language = message.locale or (variables.get("patient") or {}).get("language")
    rendered = render_script(chosen, variables, say=message.body or "", language=language)
    await record_call(session, message, rendered)


async def _localised(session: AsyncSession, message: Message, script: CallScript) -> CallScript:
    """The script with the prompts and voicemail of the message's voice template variant, if any."""
    if message.template_key is None or message.locale is None:
        return script
    book = await load_template_book(session, [message.template_key])
    stored = book.find(message.template_key, "voice", [message.locale])
    if stored is None:
        return script
    variant = stored.definition
    prompts = variant.prompts or {}
    questions = [
        question.model_copy(update={"prompt": prompts.get(question.id, question.prompt)})
        for question in script.gather
    ]
    return script.model_copy(
        update={
            "gather": questions,
            "voicemail": variant.voicemail or script.voicemail,
            "goodbye": variant.goodbye or script.goodbye,
        }
    )
