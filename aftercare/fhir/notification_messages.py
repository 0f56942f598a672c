"""Da Vinci Unsolicited Notifications: admit, transfer and discharge notifications as FHIR message
Bundles (`Bundle.type = message`, a `MessageHeader` first whose `eventCoding` is from the IG's
notification-event code system, its `focus` the Encounter). The resources they carry go the same way
as any other FHIR resource: stored, and the Encounter's discharge fires the same journeys once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NOTIFICATION_EVENTS = "http://hl7.org/fhir/us/davinci-alerts/CodeSystem/notification-event"
EVENTS = frozenset({"notification-admit", "notification-discharge", "notification-transfer"})


class NotificationMessageError(ValueError):
    """Not a notification message Aftercare takes; `expression` names the element."""

    def __init__(self, expression: str, text: str) -> None:
        super().__init__(text)
        self.expression = expression


@dataclass(frozen=True)
class NotificationMessage:
    """The header's id and event, and the resources the message carries (not the header)."""

    header_id: str
    event: str
    source_endpoint: str | None
    resources: list[dict[str, Any]]


def read_notification_message(document: Any) -> NotificationMessage:
    """The notification in a message Bundle; `NotificationMessageError` for anything else."""
    if not isinstance(document, dict) or document.get("resourceType") != "Bundle":
        raise NotificationMessageError("Bundle", "the body is not a Bundle")
    if document.get("type") != "message":
        raise NotificationMessageError("Bundle.type", "a FHIR message is a Bundle of type `message`")
    resources = [entry.get("resource") for entry in document.get("entry") or [] if isinstance(entry, dict)]
    if (
        not resources
        or not isinstance(resources[0], dict)
        or resources[0].get("resourceType") != "MessageHeader"
    ):
        raise NotificationMessageError("Bundle.entry[0]", "a message Bundle starts with its MessageHeader")
    header = resources[0]
    coding = header.get("eventCoding") or {}
    if coding.get("system") != NOTIFICATION_EVENTS or coding.get("code") not in EVENTS:
        raise NotificationMessageError(
            "MessageHeader.eventCoding",
            f"the event {coding.get('system')}|{coding.get('code')} is not a Da Vinci admit, transfer or "
            "discharge notification",
        )
    carried = [r for r in resources[1:] if isinstance(r, dict)]
    focus = [f.get("reference") for f in header.get("focus") or [] if isinstance(f, dict)]
    present = {f"{r.get('resourceType')}/{r.get('id')}" for r in carried}
    missing = [reference for reference in focus if reference not in present]
    if missing:
        raise NotificationMessageError("MessageHeader.focus", f"the focus {missing[0]} is not in the Bundle")
    return NotificationMessage(
        header_id=str(header.get("id") or document.get("id") or ""),
        event=str(coding["code"]),
        source_endpoint=(header.get("source") or {}).get("endpoint"),
        resources=carried,
    )


def response_message(notification: NotificationMessage, response_id: str) -> dict[str, Any]:
    """The message that acknowledges it: a MessageHeader with `response.code = ok`."""
    return {
        "resourceType": "Bundle",
        "id": response_id,
        "type": "message",
        "entry": [
            {
                "fullUrl": f"urn:uuid:{response_id}",
                "resource": {
                    "resourceType": "MessageHeader",
                    "id": response_id,
                    "eventCoding": {"system": NOTIFICATION_EVENTS, "code": notification.event},
                    "source": {"endpoint": "urn:aftercare"},
                    "response": {"identifier": notification.header_id, "code": "ok"},
                },
            }
        ],
    }
