"""Outreach as FHIR R4 resources for the chart: each message a `Communication`, each send planned for
later a `CommunicationRequest`, each care task a `Task`.

A Communication carries no more than the message did (its text, to the patient, about the resource
that triggered the journey), and an identifier naming the message (`urn:aftercare:message|<id>`): it is
written by a conditional update on that identifier, so writing it again updates the same resource
instead of adding one. A Task likewise names its care task (`urn:aftercare:task|<id>`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

MESSAGE_IDENTIFIER_SYSTEM = "urn:aftercare:message"
_MODE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode"
_CATEGORY = "http://terminology.hl7.org/CodeSystem/communication-category"
# How each channel reaches the patient (v3 ParticipationMode, the value set Communication.medium uses).
MEDIUM: dict[str, tuple[str, str]] = {
    "sms": ("SMSWRIT", "SMS message"),
    "email": ("EMAILWRIT", "email"),
    "letter": ("MAILWRIT", "mail"),
    "push": ("ELECTRONIC", "electronic data"),
}
# A message's status, as the event status of its Communication: a provider's later report moves it on
# (delivered stays `completed`; a failure is `entered-in-error`, a bounce `not-done` with the reason).
STATUS: dict[str, str] = {
    "queued": "in-progress",
    "sending": "in-progress",
    "sent": "completed",
    "delivered": "completed",
    "printed": "completed",
    "failed": "entered-in-error",
    "undelivered": "not-done",
}
PLANNED_IDENTIFIER_SYSTEM = "urn:aftercare:send"


@dataclass(frozen=True)
class SentMessage:
    """What the chart may learn of one message."""

    message_id: str
    patient_id: str
    channel: str
    status: str
    body: str | None = None
    sent_at: datetime | None = None
    reason: str | None = None
    topic: str | None = None
    about: str | None = None
    reminder: bool = False
    # The send's idempotency key when it was planned first (a CommunicationRequest): `basedOn` it.
    planned_key: str | None = None


def communication(message: SentMessage) -> dict[str, Any]:
    """The message as a Communication: sent and delivered ones `completed`, failed ones
    `entered-in-error`, bounced ones and ones the guardrails held back `not-done`, with the reason."""
    status = STATUS.get(message.status, "not-done")
    resource: dict[str, Any] = {
        "resourceType": "Communication",
        "identifier": [{"system": MESSAGE_IDENTIFIER_SYSTEM, "value": message.message_id}],
        "status": status,
        **_outreach(message.patient_id, message.channel, message.topic, message.about, message.reminder),
    }
    if status in ("not-done", "entered-in-error") and message.reason:
        resource["statusReason"] = {"text": message.reason}
    if message.planned_key:
        resource["basedOn"] = [planned_reference(message.planned_key)]
    if message.sent_at is not None and status == "completed":
        resource["sent"] = message.sent_at.isoformat()
    if message.body and status != "not-done":
        resource["payload"] = [{"contentString": message.body}]
    return resource


def _outreach(
    patient_id: str, channel: str | None, topic: str | None, about: str | None, reminder: bool
) -> dict[str, Any]:
    """What a Communication and a CommunicationRequest share: category, patient, medium, topic, about."""
    resource: dict[str, Any] = {
        "category": [{"coding": [{"system": _CATEGORY, "code": "reminder" if reminder else "notification"}]}],
        "subject": {"reference": f"Patient/{patient_id}"},
        "recipient": [{"reference": f"Patient/{patient_id}"}],
    }
    if channel in MEDIUM:
        code, display = MEDIUM[channel]
        resource["medium"] = [{"coding": [{"system": _MODE, "code": code, "display": display}]}]
    if topic:
        resource["topic"] = {"text": topic}
    if about:
        resource["about"] = [{"reference": about}]
    return resource


@dataclass(frozen=True)
class PlannedSend:
    """A send known in advance (deferred to a moment, or scheduled): `active` until it happens
    (`completed`, with its message) or is called off (`revoked`)."""

    key: str
    patient_id: str
    status: str
    channel: str | None = None
    occurrence: datetime | None = None
    reason: str | None = None
    topic: str | None = None
    about: str | None = None
    reminder: bool = False


def planned_reference(key: str) -> dict[str, Any]:
    """A logical reference to the CommunicationRequest of a planned send (by its identifier)."""
    return {"type": "CommunicationRequest", "identifier": {"system": PLANNED_IDENTIFIER_SYSTEM, "value": key}}


def communication_request(planned: PlannedSend) -> dict[str, Any]:
    """The planned send as a CommunicationRequest: `occurrenceDateTime` when it is due, no text (the
    message is composed when it goes out), `statusReason` when it was revoked for a reason."""
    shared = _outreach(planned.patient_id, planned.channel, None, planned.about, planned.reminder)
    resource: dict[str, Any] = {
        "resourceType": "CommunicationRequest",
        "identifier": [{"system": PLANNED_IDENTIFIER_SYSTEM, "value": planned.key}],
        "status": planned.status,
        **shared,
    }
    if planned.topic:  # a CommunicationRequest has no `topic`: the journey's name is its reason
        resource["reasonCode"] = [{"text": planned.topic}]
    if planned.occurrence is not None:
        resource["occurrenceDateTime"] = planned.occurrence.isoformat()
    if planned.status == "revoked" and planned.reason:
        resource["statusReason"] = {"text": planned.reason}
    return resource


def triggering_reference(trigger_key: str | None) -> str | None:
    """`Observation/x` from an enrollment's trigger key `fhir:Observation/x/_history/3`."""
    if not trigger_key or not trigger_key.startswith("fhir:"):
        return None
    parts = trigger_key.removeprefix("fhir:").split("/")
    return "/".join(parts[:2]) if len(parts) >= 2 else None


TASK_IDENTIFIER_SYSTEM = "urn:aftercare:task"
TASK_STATUS = {"open": "requested", "completed": "completed", "cancelled": "cancelled"}
TASK_PRIORITY = {"low": "routine", "normal": "routine", "high": "urgent", "urgent": "asap"}


@dataclass(frozen=True)
class CareTask:
    """What the chart may learn of one care-team task."""

    task_id: str
    patient_id: str
    queue: str
    status: str
    priority: str
    title: str
    created_at: datetime
    due_at: datetime | None = None
    completed_at: datetime | None = None
    outcome: str | None = None
    focus: str | None = None


def fhir_task(task: CareTask) -> dict[str, Any]:
    """The care task as a FHIR Task: owned by its queue, for the patient, focused on the resource that
    triggered the journey; `requested` while open."""
    resource: dict[str, Any] = {
        "resourceType": "Task",
        "identifier": [{"system": TASK_IDENTIFIER_SYSTEM, "value": task.task_id}],
        "status": TASK_STATUS.get(task.status, "requested"),
        "intent": "order",
        "priority": TASK_PRIORITY.get(task.priority, "routine"),
        "description": task.title,
        "for": {"reference": f"Patient/{task.patient_id}"},
        "owner": {"display": task.queue},
        "authoredOn": task.created_at.isoformat(),
    }
    if task.focus:
        resource["focus"] = {"reference": task.focus}
    if task.due_at is not None:
        resource["restriction"] = {"period": {"end": task.due_at.isoformat()}}
    if task.completed_at is not None:
        resource["executionPeriod"] = {"end": task.completed_at.isoformat()}
    if task.outcome:
        resource["businessStatus"] = {"text": task.outcome}
    return resource


def aftercare_task_id(resource: dict[str, Any]) -> str | None:
    """The Aftercare task a FHIR Task stands for (by its identifier), or None."""
    if resource.get("resourceType") != "Task":
        return None
    for identifier in resource.get("identifier") or []:
        if isinstance(identifier, dict) and identifier.get("system") == TASK_IDENTIFIER_SYSTEM:
            value = identifier.get("value")
            return value if isinstance(value, str) else None
    return None
