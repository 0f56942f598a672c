"""A journey written in Python: the discharge call-back.

When a discharge is signalled, the patient gets a welcome message and a question. If they are not
well (or do not answer), a care coordinator is asked to call, and the journey waits for that call to
be logged, escalating to the charge nurse if nobody calls within a day. A week later there is a
check-in. Readmission ends the journey early.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, ClassVar

from temporalio import workflow

from models.journey import Entry, EventEntry, ExitRule, JourneyDefinition
from models.template import TemplateDefinition
from workflows.code_journeys import register

if TYPE_CHECKING:
    from workflows.steps import JourneySteps


@register
class DischargeCallback:
    """Welcome, ask, call when needed, check in after a week."""

    definition: ClassVar[JourneyDefinition] = JourneyDefinition(
        key="discharge-callback",
        version=1,
        name="Discharge call-back (written in Python)",
        description="Asks how the patient is after discharge; a coordinator calls when they are not well.",
        code=True,
        entry=Entry(event=EventEntry(type="discharge.completed")),
        reentry="after_exit",
        exit=[ExitRule(event="readmission.admitted", outcome="readmitted")],
    )
    templates: ClassVar[list[TemplateDefinition]] = [
        TemplateDefinition(
            key="discharge-callback-welcome",
            channel="sms",
            locale="en",
            body="Welcome home, {{ patient.given }}. How are you feeling? Reply 1 if you are well, "
            "2 if you would like a nurse to call. Reply STOP to opt out.",
        ),
        TemplateDefinition(
            key="discharge-callback-welcome",
            channel="sms",
            locale="es",
            body="Bienvenido a casa, {{ patient.given }}. ¿Cómo se siente? Responda 1 si está bien, "
            "2 si desea que le llame una enfermera. Responda STOP para no recibir mensajes.",
        ),
        TemplateDefinition(
            key="discharge-callback-week",
            channel="sms",
            locale="en",
            body="Hi {{ patient.given }}, it has been a week since you went home. Reply 2 if you would "
            "like a nurse to call.",
        ),
    ]

    async def run(self, steps: JourneySteps) -> str | None:
        """The journey."""
        await steps.send("discharge-callback-welcome", step="welcome")
        answer = await steps.wait_for("sms.reply", timeout=timedelta(days=2), step="await-answer")
        body = str(answer.data.get("body", "")).strip() if answer is not None else ""
        if body != "1":
            await steps.task(
                "care-coordinators",
                "Call {{ patient.name }} after discharge",
                description="No answer to the welcome message." if answer is None else "Asked for a call.",
                due="PT4H",
                priority="high",
                step="call",
            )
            called = await steps.wait_for("task.completed", timeout=timedelta(days=1), step="await-call")
            if called is None:
                await steps.task(
                    "charge-nurses",
                    "Nobody has called {{ patient.name }} after discharge",
                    due="PT2H",
                    priority="urgent",
                    step="escalate",
                )
        if workflow.patched("week-check-in"):
            await steps.wait(timedelta(days=7), step="until-week")
            await steps.send("discharge-callback-week", step="week")
        return "completed"
