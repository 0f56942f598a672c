"""Twilio's webhooks: message status callbacks and inbound texts, both verified with
`X-Twilio-Signature` through the SDK's `RequestValidator`."""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import APIRouter, HTTPException, Request, Response, status
from starlette.datastructures import ImmutableMultiDict
from twilio.request_validator import RequestValidator, get_signature_algorithm
from twilio.twiml.messaging_response import MessagingResponse

from aftercare.enrollment.write_back import write_reported_messages_back
from aftercare.metrics import PROVIDER_WEBHOOKS
from aftercare.provider_feedback.inbound_sms import InboundSms, handle_inbound_sms
from aftercare.provider_feedback.twilio_status import PROVIDER, apply_status_callback
from aftercare.settings import Settings
from aftercare.store.message_events import message_for_provider_id
from api.deps import ServicesDep
from api.routes.webhooks.signed_url import requested_url

router = APIRouter(prefix="/webhooks/twilio", tags=["webhooks"])

SIGNATURE_HEADER = "X-Twilio-Signature"
SIGNATURE_SETTINGS_HEADER = "X-Twilio-Webhooks-Signature-Settings"
_TWIML = "application/xml"


async def verified_params(request: Request, settings: Settings, kind: str) -> ImmutableMultiDict[str, str]:
    """The form parameters of a request Twilio signed; 403 when the signature is missing or wrong."""
    body = (await request.body()).decode("utf-8", errors="replace")
    params = ImmutableMultiDict(parse_qsl(body, keep_blank_values=True))
    signature = request.headers.get(SIGNATURE_HEADER)
    signature_settings = request.headers.get(SIGNATURE_SETTINGS_HEADER)
    secret = (
        settings.twilio_webhook_signing_key
        if signature_settings and settings.twilio_webhook_signing_key
        else settings.twilio_auth_token
    )
    if secret is None:
        PROVIDER_WEBHOOKS.labels(PROVIDER, kind, "rejected").inc()
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "Twilio webhooks cannot be verified: Twilio is not configured"
        )
    if not signature:
        PROVIDER_WEBHOOKS.labels(PROVIDER, kind, "rejected").inc()
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"the {SIGNATURE_HEADER} header is missing")
    validator = RequestValidator(secret.get_secret_value())
    algorithm = get_signature_algorithm(signature_settings)
    if not validator.validate(requested_url(request, settings), params, signature, algorithm):
        PROVIDER_WEBHOOKS.labels(PROVIDER, kind, "rejected").inc()
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"the {SIGNATURE_HEADER} does not match this request (is PUBLIC_BASE_URL the URL Twilio calls?)",
        )
    return params


@router.post("/status", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def message_status(request: Request, services: ServicesDep) -> Response:
    """A message's new status (queued, sent, delivered, undelivered, failed); repeats change nothing."""
    params = await verified_params(request, services.settings, "status")
    message_id = request.query_params.get("message_id")
    async with services.sessions.begin() as session:
        if message_id is None and (sid := params.get("MessageSid")):
            found = await message_for_provider_id(session, PROVIDER, sid)
            message_id = found.id if found is not None else None
        applied = message_id is not None and await apply_status_callback(session, message_id, params)
    PROVIDER_WEBHOOKS.labels(PROVIDER, "status", "applied" if applied else "ignored").inc()
    if applied and message_id is not None:
        await write_reported_messages_back(
            services.sessions, services.temporal, services.settings, [message_id]
        )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/inbound", response_class=Response)
async def inbound_message(request: Request, services: ServicesDep) -> Response:
    """A patient's text: STOP/START/HELP keywords change consent; anything else is an `sms.reply`."""
    params = await verified_params(request, services.settings, "inbound")
    sid = params.get("MessageSid") or params.get("SmsSid")
    sender = params.get("From")
    if not sid or not sender:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "an inbound message needs MessageSid and From")
    outcome = await handle_inbound_sms(
        services.sessions,
        services.temporal,
        services.starter,
        services.settings,
        InboundSms(
            provider=PROVIDER, provider_message_id=sid, from_number=sender, body=params.get("Body", "")
        ),
    )
    PROVIDER_WEBHOOKS.labels(PROVIDER, "inbound", "duplicate" if outcome.duplicate else "applied").inc()
    answer = MessagingResponse()
    if outcome.reply and services.settings.sms_help_reply and not outcome.duplicate:
        answer.message(outcome.reply)
    return Response(content=str(answer), media_type=_TWIML)
