"""The OpenAPI document, with the schemas of bodies the routes read themselves (JSON or YAML)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api.route_rules import Access, rule_for
from models.journey import JourneyDefinition
from models.template import TemplateDefinition

_REF = "#/components/schemas/{model}"
SECURITY_SCHEMES = {
    "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    "Bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
}
_REFUSED = {
    "401": {"description": "no credentials, or credentials that do not authenticate"},
    "403": {"description": "the caller's roles do not hold the permission"},
}


def _describe_security(document: dict[str, Any]) -> None:
    """Each operation's security from its rule: the permission it needs, or none."""
    document["components"]["securitySchemes"] = SECURITY_SCHEMES
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            rule = rule_for(method.upper(), path)
            if rule is None or rule.access is not Access.PERMISSION:
                operation["security"] = []
                continue
            operation["security"] = [{"ApiKey": []}, {"Bearer": []}]
            assert rule.permission is not None
            operation["description"] = (
                operation.get("description", "") + f"\n\nNeeds the permission `{rule.permission.value}`."
            ).strip()
            for status, answer in _REFUSED.items():
                operation.setdefault("responses", {}).setdefault(status, answer)


def install_openapi(app: FastAPI) -> None:
    """Add the definition schemas to the generated document."""

    def build() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for model in (JourneyDefinition, TemplateDefinition):
            schema = model.model_json_schema(ref_template=_REF)
            schemas.update(schema.pop("$defs", {}))
            schemas[model.__name__] = schema
        _describe_security(document)
        app.openapi_schema = document
        return document

    app.openapi = build  # type: ignore[method-assign]
