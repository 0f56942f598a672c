"""The OpenAPI document, with the schemas of bodies the routes read themselves (JSON or YAML)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from models.journey import JourneyDefinition
from models.template import TemplateDefinition

_REF = "#/components/schemas/{model}"


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
        app.openapi_schema = document
        return document

    app.openapi = build  # type: ignore[method-assign]
