"""Writes the audit trail from the routes' rules, in one place: after an audited route has answered
(allowed or refused, 2xx or 4xx), one row names the caller, the action, the resource and its id (from
the path, the query, or the JSON answer), the status, the client's address and user agent.

Anonymous calls (401) are not recorded: they carry no identity, and logging them would let anyone fill
the table. A row that cannot be written is logged with ids only and counted
(`aftercare_audit_write_failures_total`)."""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import parse_qs

from prometheus_client import Counter
from sqlalchemy.exc import SQLAlchemyError
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aftercare.facilities.scope import request_boundary
from aftercare.security import audit
from aftercare.security.clients import Network
from aftercare.security.principal import Principal
from api.middleware.origin import origin_of
from api.route_rules import Rule, rule_for

log = logging.getLogger(__name__)

AUDIT_WRITE_FAILURES = Counter("aftercare_audit_write_failures_total", "audit rows that could not be written")
_MAX_CAPTURED = 64 * 1024


def _rule(scope: Scope) -> Rule | None:
    path = getattr(scope.get("route"), "path", None)
    return rule_for(scope["method"], path) if path else None


def _id_in_answer(rule: Rule) -> bool:
    return rule.audit is not None and (rule.audit.id_from or "").startswith("response:")


def _resource_id(id_from: str | None, scope: Scope, answer: bytes) -> str | None:
    if not id_from:
        return None
    where, _, name = id_from.partition(":")
    value: Any = None
    if where == "path":
        value = scope.get("path_params", {}).get(name)
    elif where == "query":
        values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get(name)
        value = values[0] if values else None
    elif where == "response" and answer:
        try:
            document = json.loads(answer)
        except ValueError:
            return None
        value = document.get(name) if isinstance(document, dict) else None
    return None if value is None else str(value)


class AuditTrail:
    """The middleware; `trusted_proxies` decides whose `X-Forwarded-For` is believed."""

    def __init__(self, app: ASGIApp, *, trusted_proxies: tuple[Network, ...]) -> None:
        self.app = app
        self.trusted = trusted_proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        outcome: dict[str, Any] = {"status": 500, "rule": None}
        captured = bytearray()

        async def observe(message: Message) -> None:
            if message["type"] == "http.response.start":
                outcome["status"] = message["status"]
                outcome["rule"] = _rule(scope)
            elif message["type"] == "http.response.body":
                rule: Rule | None = outcome["rule"]
                if rule is not None and _id_in_answer(rule) and len(captured) < _MAX_CAPTURED:
                    captured.extend(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            await self._record(scope, outcome["rule"] or _rule(scope), outcome["status"], bytes(captured))

    async def _record(self, scope: Scope, rule: Rule | None, status_code: int, answer: bytes) -> None:
        principal: Principal | None = scope.get("state", {}).get("principal")
        if rule is None or rule.audit is None or principal is None:
            return
        origin = origin_of(scope, self.trusted)
        entry = audit.AuditEntry(
            principal=principal,
            action=rule.audit.action or audit.default_action(scope["method"]),
            resource_type=rule.audit.resource_type,
            resource_id=_resource_id(rule.audit.id_from, scope, answer),
            method=scope["method"],
            route=scope["route"].path,
            status_code=status_code,
            client_ip=origin.address,
            user_agent=Headers(scope=scope).get("user-agent"),
        )
        try:
            # The trail records every call, whatever facilities the caller reaches (their reads of it
            # are filtered): the write itself is not scoped.
            with request_boundary():
                await audit.record(scope["app"].state.services.sessions, entry)
        except (OSError, SQLAlchemyError):
            AUDIT_WRITE_FAILURES.inc()
            log.exception(
                "audit row not written",
                extra={"route": entry.route, "status_code": status_code, "actor_key_id": principal.key_id},
            )
