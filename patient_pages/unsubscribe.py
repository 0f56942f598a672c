"""One-click unsubscribe (RFC 8058): `POST /u/{token}` unsubscribes at once, with no login and no
confirmation page, as a mailbox provider sends it (`List-Unsubscribe=One-Click`); the same POST again
changes nothing. `GET /u/{token}` (a person following the link) shows a page with the button, never
unsubscribing by itself (mail scanners follow links)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from aftercare.patient_links.catalogue import translate
from aftercare.patient_links.tokens import PatientLinkClaims, patient_links
from aftercare.patient_links.unsubscribe import LIST_UNSUBSCRIBE_POST, unsubscribe
from aftercare.security.rate_limit import RateLimiter
from api.deps import ServicesDep
from api.services import Services
from patient_pages.pages import MAX_FORM_BYTES, audit_change, patient_language, read_link, refused, render

router = APIRouter(prefix="/u", tags=["patient pages"], include_in_schema=False)
# Mailbox providers post on behalf of many patients from few addresses: a larger allowance.
_limiter = RateLimiter(rate=50.0, burst=500)


async def _page(services: Services, claims: PatientLinkClaims, token: str, done: bool) -> Response:
    language = await patient_language(services, claims.patient_id)
    if language is None:
        return refused("gone", "en")
    purpose = translate(language, f"purpose.{claims.purpose}")
    preferences = patient_links(services.settings).url("preferences", claims.patient_id, claims.purpose)
    return render(
        "unsubscribe.html",
        language,
        title=translate(language, "unsubscribe.title"),
        action=f"/u/{token}",
        purpose=purpose,
        done=done,
        preferences=preferences.removeprefix(patient_links(services.settings).base_url.rstrip("/")),
    )


@router.get("/{token}", response_class=HTMLResponse)
async def unsubscribe_page(token: str, request: Request, services: ServicesDep, done: int = 0) -> Response:
    """The unsubscribe page: what the link stops, and the button."""
    claims = read_link(request, services, "unsubscribe", token, _limiter)
    if isinstance(claims, HTMLResponse):
        return claims
    return await _page(services, claims, token, bool(done))


@router.post("/{token}", response_class=HTMLResponse)
async def one_click(token: str, request: Request, services: ServicesDep) -> Response:
    """Unsubscribe now: withdraw email consent for the link's purpose (idempotent)."""
    claims = read_link(request, services, "unsubscribe", token, _limiter)
    if isinstance(claims, HTMLResponse):
        return claims
    # As a form (urlencoded) or multipart/form-data: RFC 8058 allows both.
    body = (await request.body())[:MAX_FORM_BYTES].decode("utf-8", "replace")
    one_click = LIST_UNSUBSCRIBE_POST in body or ("List-Unsubscribe" in body and "One-Click" in body)
    async with services.sessions.begin() as session:
        changed = await unsubscribe(session, claims, "one-click" if one_click else "unsubscribe page")
    if changed is None:
        return refused("gone", "en")
    if changed:
        await audit_change(services, request, "unsubscribe", claims.patient_id)
    if one_click:
        return await _page(services, claims, token, done=True)
    return RedirectResponse(f"/u/{token}?done=1", status_code=303)
