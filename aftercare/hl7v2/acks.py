"""Original-mode acknowledgements: `ACK^<event>^ACK` with MSA and, for `AE`/`AR`, an ERR segment
whose ERR-2 names the field (segment^sequence^field) and ERR-3 the HL7 table 0357 code."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from itertools import count

from aftercare.hl7v2.messages import Header

_ERROR_NAMES = {
    "100": "Segment sequence error",
    "101": "Required field missing",
    "102": "Data type error",
    "103": "Table value not found",
    "200": "Unsupported message type",
    "201": "Unsupported event code",
    "203": "Unsupported version id",
    "207": "Application internal error",
}
_FIELD = re.compile(r"^([A-Z0-9]{3})-(\d+)$")
_sequence = count(1)


def build_ack(
    header: Header | None,
    code: str,
    *,
    location: str = "",
    error_code: str = "",
    text: str = "",
) -> str:
    """The ACK text (CR-separated) for a message; without a readable header, an ACK to nobody."""
    now = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    control_id = f"ACK{now}{next(_sequence):06d}"
    event = header.event if header else ""
    version = header.version if header and header.version else "2.5.1"
    receiver = (header.sending_application, header.sending_facility) if header else ("", "")
    segments = [
        f"MSH|^~\\&|AFTERCARE|AFTERCARE|{_escape(receiver[0])}|{_escape(receiver[1])}|{now}||ACK^{event}^ACK|"
        f"{control_id}|P|{version}",
        f"MSA|{code}|{_escape(header.control_id if header else '')}",
    ]
    if code != "AA":
        segments.append(
            f"ERR||{_error_location(location)}|{error_code}^{_ERROR_NAMES.get(error_code, '')}^HL70357|E||||"
            f"{_escape(text)[:200]}"
        )
    return "\r".join(segments) + "\r"


def _error_location(location: str) -> str:
    match = _FIELD.match(location)
    if match:
        return f"{match.group(1)}^1^{match.group(2)}"
    return _escape(location.split(" ")[0]) if location else ""


def _escape(value: str) -> str:
    return (
        value.replace("\\", "\\E\\")
        .replace("|", "\\F\\")
        .replace("^", "\\S\\")
        .replace("&", "\\T\\")
        .replace("~", "\\R\\")
        .replace("\r", " ")
    )
