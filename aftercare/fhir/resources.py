"""Validation of FHIR resources with fhir.resources. The FHIR release is chosen here and only here:
R4B models, which read R4 data (Synthea, US Core) unchanged."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from fhir.resources import R4B as fhir_release
from pydantic import BaseModel, ValidationError

from aftercare.fhir.conformance import conformance_problems

FHIR_RELEASE = "R4B"


@lru_cache(maxsize=256)
def _model_class(resource_type: str) -> type[BaseModel] | None:
    try:
        model: type[BaseModel] = fhir_release.get_fhir_model_class(resource_type)
    except (ValueError, KeyError, AttributeError):
        return None
    return model


def is_resource_type(name: str) -> bool:
    """True when `name` is a FHIR resource type of the release in use."""
    return _model_class(name) is not None


def validation_problems(resource: Any) -> list[tuple[str, str]]:
    """Problems with a resource as (FHIRPath-like element path, message); empty when it is valid: its
    structure (fhir.resources), then the codes of required bindings and the invariants triggers rely on."""
    if not isinstance(resource, dict):
        return [("", "a FHIR resource is a JSON object")]
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str) or not resource_type:
        return [("resourceType", "the resource has no resourceType")]
    model = _model_class(resource_type)
    if model is None:
        return [("resourceType", f"{resource_type!r} is not a FHIR {FHIR_RELEASE} resource type")]
    try:
        model.model_validate(resource)
    except ValidationError as error:
        return [
            (_element_path(resource_type, problem["loc"]), problem["msg"])
            for problem in error.errors(include_url=False)
        ]
    return conformance_problems(resource)


def _element_path(resource_type: str, loc: tuple[Any, ...]) -> str:
    path = resource_type
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path
