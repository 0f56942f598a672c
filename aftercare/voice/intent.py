"""A call's script recorded with its send intent: one transaction, so a recorded call always has the
TwiML it will be answered with."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.voice.calls import record_call
from aftercare.voice.script import render_script
from models.tables import Message
from models.voice import CallScript


async def record_call_script(
    session: AsyncSession, message: Message, script: CallScript | None, variables: Mapping[str, Any]
) -> None:
    """Render the call's script for the patient and record it beside the message; a `voice` send with
    no script says its body and hangs up. Raises `TemplateRenderError`."""
    chosen = script or CallScript(say=message.body or "")
    language = message.locale or (variables.get("patient") or {}).get("language")
    rendered = render_script(chosen, variables, say=message.body or chosen.say, language=language)
    await record_call(session, message, rendered)
