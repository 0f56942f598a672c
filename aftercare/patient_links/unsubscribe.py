"""RFC 8058 one-click unsubscribe: the headers every email carries, the footer link to the preference
centre, and the consent change a one-click POST records.

A message from a template the hospital marks `care_critical` carries neither: the patient may not opt
out of it, and the decision log says so."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.guardrails import Decision
from aftercare.patient_links.catalogue import translate
from aftercare.patient_links.tokens import PatientLinkClaims, PatientLinks
from aftercare.store.consents import consent_for, record_consent
from models.tables import Patient

LIST_UNSUBSCRIBE_POST = "List-Unsubscribe=One-Click"
UNSUBSCRIBE_SOURCE = "list-unsubscribe"
NO_OPT_OUT = "no unsubscribe link: the template is marked care-critical (the patient may not opt out of it)"


def opt_out_headers(links: PatientLinks, patient_id: str, purpose: str) -> dict[str, str]:
    """`List-Unsubscribe` (the https one-click URL, and the mailto when configured) and
    `List-Unsubscribe-Post`."""
    token, _ = links.token("unsubscribe", patient_id, purpose)
    targets = [f"{links.base_url.rstrip('/')}/u/{token}"]
    mailto = links.mailto_uri(token)
    if mailto:
        targets.append(mailto)
    return {
        "List-Unsubscribe": ", ".join(f"<{target}>" for target in targets),
        "List-Unsubscribe-Post": LIST_UNSUBSCRIBE_POST,
    }


def add_opt_out(values: dict[str, Any], links: PatientLinks | None, care_critical: bool) -> None:
    """Give a message intent's email its unsubscribe headers and the preference centre footer (in the
    message's language), unless the template is care-critical or the message will not be sent."""
    if links is None or values["channel"] != "email" or values["status"] == "skipped" or care_critical:
        return
    patient_id, purpose = values["patient_id"], values["purpose"]
    values["headers"] = opt_out_headers(links, patient_id, purpose)
    manage = translate(values.get("locale") or "en", "footer.manage")
    url = links.url("preferences", patient_id, purpose)
    values["body"] = f"{values['body']}\n\n--\n{manage}: {url}"
    if values.get("html"):
        values["html"] = f'{values["html"]}\n<p style="font-size:small"><a href="{url}">{manage}</a></p>'


def note_no_opt_out(decision: Decision, channel: str, care_critical: bool) -> Decision:
    """The decision as logged: an allowed care-critical email says why it has no unsubscribe link."""
    if channel != "email" or not care_critical or decision.outcome != "allow":
        return decision
    return replace(decision, reason=f"{decision.reason}; {NO_OPT_OUT}" if decision.reason else NO_OPT_OUT)


async def unsubscribe(session: AsyncSession, claims: PatientLinkClaims, how: str) -> bool | None:
    """Withdraw the patient's email consent for the link's purpose (source `list-unsubscribe`, `how`
    in the detail); False when it was withdrawn already (the same POST twice changes nothing), None
    when the patient is no longer on record."""
    if await session.get(Patient, claims.patient_id) is None:
        return None
    current = await consent_for(session, claims.patient_id, "email", claims.purpose, exact_purpose=True)
    if current is not None and current.status == "revoked":
        return False
    await record_consent(
        session, [claims.patient_id], "email", "revoked", UNSUBSCRIBE_SOURCE, how, purpose=claims.purpose
    )
    return True
