"""A call's script rendered for one patient, once, when the call is recorded."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aftercare.templating import render
from models.voice import CallScript, RenderedCall


def render_script(
    script: CallScript, variables: Mapping[str, Any], *, say: str, language: str | None
) -> RenderedCall:
    """Every text of the script rendered like a message body; `say` is the message's body, already
    rendered (the non-PHI variant when the guardrails chose it). Raises `TemplateRenderError`."""

    def spoken(text: str | None) -> str | None:
        return render(text, variables) if text else text

    questions = [
        question.model_copy(update={"prompt": spoken(question.prompt), "reprompt": spoken(question.reprompt)})
        for question in script.gather
    ]
    transfer = script.transfer
    if transfer is not None:
        transfer = transfer.model_copy(update={"say": spoken(transfer.say)})
    record = script.record
    if record is not None:
        record = record.model_copy(update={"prompt": spoken(record.prompt)})
    rendered = script.model_copy(
        update={
            "say": say,
            "gather": questions,
            "transfer": transfer,
            "record": record,
            "voicemail": spoken(script.voicemail),
            "goodbye": spoken(script.goodbye),
        }
    )
    return RenderedCall(script=rendered, language=language)
