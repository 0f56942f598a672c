"""`aftercare dev sms-reply`: text the running dev stack as a patient would, through the Twilio inbound
webhook, signed as Twilio signs it (the SDK's `RequestValidator`) with the stack's Twilio auth token.
The reply reaches waiting journeys as `sms.reply`; STOP, START and HELP work as they do with Twilio."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import httpx
from twilio.request_validator import RequestValidator

from aftercare.devstack.state import running_stack
from aftercare.security.dev_keys import DEV_KEY_FILE, TWILIO_TOKEN_FILE
from aftercare.settings import Settings

INBOUND_PATH = "/webhooks/twilio/inbound"
DEV_FROM_NUMBER = "+15005550006"  # the number texts come from in dev (Twilio's test "From" number)


class SmsReplyError(RuntimeError):
    """The reply could not be sent; the message says why."""


@dataclass(frozen=True)
class SmsReplyResult:
    """What the API answered: the sender's number and the text it would send back (HELP), if any."""

    from_number: str
    answer: str | None


def _read(data_dir: Path, name: str, what: str) -> str:
    try:
        return (data_dir / name).read_text().strip()
    except OSError as error:
        raise SmsReplyError(f"no {what} in {data_dir}/ ({name}): has `aftercare dev` run there?") from error


def _patient_phone(client: httpx.Client, patient_id: str, api_key: str) -> str:
    answer = client.get(f"/v1/patients/{patient_id}", headers={"X-API-Key": api_key})
    if answer.status_code == 404:
        raise SmsReplyError(f"there is no patient {patient_id}")
    answer.raise_for_status()
    phone: str | None = answer.json().get("phone")
    if not phone:
        raise SmsReplyError(f"patient {patient_id} has no phone number")
    return phone


def send_sms_reply(
    data_dir: Path,
    settings: Settings,
    *,
    body: str,
    patient_id: str | None = None,
    from_number: str | None = None,
) -> SmsReplyResult:
    """Post a signed inbound SMS from the patient's phone (or `from_number`) to the stack in `data_dir`."""
    stack = running_stack(data_dir)
    if stack is None:
        raise SmsReplyError(
            f"no dev stack is running in {data_dir}/: start it with `make dev` (or `aftercare dev`)"
        )
    token = (
        settings.twilio_auth_token.get_secret_value()
        if settings.twilio_auth_token
        else _read(data_dir, TWILIO_TOKEN_FILE, "development Twilio auth token")
    )
    dev_key = settings.aftercare_dev_api_key
    api_key = dev_key.get_secret_value() if dev_key else _read(data_dir, DEV_KEY_FILE, "development API key")
    with httpx.Client(base_url=stack.api_url, timeout=30.0) as client:
        sender = from_number or _patient_phone(client, patient_id or "", api_key)
        params = {
            "MessageSid": f"SM{secrets.token_hex(16)}",
            "AccountSid": f"AC{'0' * 32}",
            "From": sender,
            "To": DEV_FROM_NUMBER,
            "Body": body,
            "NumMedia": "0",
        }
        # Signed for the URL the API checks: PUBLIC_BASE_URL's when set, else the one it is called at.
        signed_url = f"{(settings.public_base_url or stack.api_url).rstrip('/')}{INBOUND_PATH}"
        signature = RequestValidator(token).compute_signature(signed_url, params)
        answer = client.post(INBOUND_PATH, data=params, headers={"X-Twilio-Signature": signature})
    if answer.status_code != 200:
        raise SmsReplyError(f"the API answered {answer.status_code}: {answer.text[:300]}")
    said = [element.text or "" for element in ElementTree.fromstring(answer.text).iter("Message")]  # noqa: S314
    return SmsReplyResult(from_number=sender, answer=" ".join(said) or None)
