"""What every patient page shares: the templates, the page's language, the clear pages for links that
cannot be used, rate limiting, reading a link, and the audit row of a patient's own change."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from aftercare.patient_links.catalogue import LANGUAGES, language_of, translate
from aftercare.patient_links.tokens import LinkKind, LinkRefused, PatientLinkClaims, patient_links
from aftercare.security import audit
from aftercare.security.principal import Principal, PrincipalKind
from aftercare.security.rate_limit import RateLimiter, retry_after
from api.services import Services
from models.tables import Patient

PAGE_CSP = "; ".join(
    [
        "default-src 'none'",
        "style-src 'unsafe-inline'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)
MAX_FORM_BYTES = 10_000
templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape(["html"])
)
# Per client address: a page view or a form post every half second, bursts of 20.
PAGE_RATE, PAGE_BURST = 2.0, 20
_REFUSED_STATUS = {"invalid": 403, "expired": 410, "closed": 410, "used": 409, "limited": 429, "gone": 404}
_PATIENT = Principal(PrincipalKind.PATIENT_LINK, "patient-link", frozenset())


def translator(language: str) -> Callable[..., str]:
    """The page's `t(key, **values)`."""
    return lambda key, **values: translate(language, key, **values)


def render(name: str, language: str, status_code: int = 200, **values: object) -> HTMLResponse:
    """A page in the patient's language, with the pages' content security policy."""
    lang = language_of(language)
    html = templates.get_template(name).render(lang=lang, t=translator(lang), languages=LANGUAGES, **values)
    return HTMLResponse(html, status_code=status_code, headers={"Content-Security-Policy": PAGE_CSP})


def browser_language(request: Request) -> str:
    """The first catalogue language the browser asks for (`Accept-Language`), else English."""
    for part in request.headers.get("accept-language", "").split(","):
        language = part.split(";")[0].strip().split("-")[0].lower()
        if language in LANGUAGES:
            return language
    return "en"


def refused(reason: str, language: str, headers: dict[str, str] | None = None) -> HTMLResponse:
    """The clear page for a link that cannot be used (never another patient's data, never a 500)."""
    response = render(
        "refused.html",
        language,
        _REFUSED_STATUS[reason],
        title=translate(language, f"refused.{reason}.title"),
        message=translate(language, f"refused.{reason}.text"),
    )
    response.headers.update(headers or {})
    return response


def page_limiter(request: Request) -> RateLimiter:
    """The app's limiter of patient page requests (one per app, made on first use)."""
    state = request.app.state
    if getattr(state, "patient_page_limiter", None) is None:
        state.patient_page_limiter = RateLimiter(rate=PAGE_RATE, burst=PAGE_BURST)
    limiter: RateLimiter = state.patient_page_limiter
    return limiter


def read_link(
    request: Request, services: Services, kind: LinkKind, token: str, limiter: RateLimiter | None = None
) -> PatientLinkClaims | HTMLResponse:
    """The link's claims, or the page saying why it cannot be used (rate limited per client address, by
    `limiter` or the app's page limiter)."""
    client = request.client.host if request.client else "unknown"
    wait = (limiter or page_limiter(request)).take(client)
    if wait:
        return refused("limited", browser_language(request), {"Retry-After": retry_after(wait)})
    try:
        return patient_links(services.settings).read(kind, token)
    except LinkRefused as error:
        return refused(error.reason, browser_language(request))


async def patient_language(services: Services, patient_id: str) -> str | None:
    """The patient's language, or None when the patient is gone."""
    async with services.sessions() as session:
        patient = await session.get(Patient, patient_id)
    return None if patient is None else (patient.language or "en")


async def form(request: Request, limit: int = MAX_FORM_BYTES) -> dict[str, list[str]]:
    """A form body (at most `limit` bytes read), every value of every field."""
    body = (await request.body())[:limit].decode("utf-8", "replace")
    return parse_qs(body, keep_blank_values=True)


async def audit_change(services: Services, request: Request, action: str, patient_id: str) -> None:
    """The audit row of a change a patient made through their link (the patient's id only)."""
    await audit.record(
        services.sessions,
        audit.AuditEntry(
            principal=_PATIENT,
            action=action,
            resource_type="patient",
            resource_id=patient_id,
            method=request.method,
            route=request.scope["route"].path,
            status_code=200,
            client_ip=request.client.host if request.client else None,
            user_agent=request.headers.get("user-agent"),
        ),
    )
