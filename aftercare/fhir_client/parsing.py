"""From FHIR JSON to fhir.resources models of the project's FHIR release, and resources out of Bundles."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from aftercare.fhir.resources import FHIR_RELEASE, _model_class, validation_problems
from aftercare.fhir_client.errors import FhirInvalidResource


def parse_resource(resource: Mapping[str, Any]) -> BaseModel:
    """The resource as a fhir.resources model (R4B). FhirInvalidResource names the first invalid element
    (e.g. `Observation.status`) when the resource is not valid."""
    resource_type = resource.get("resourceType")
    model = _model_class(resource_type) if isinstance(resource_type, str) else None
    if model is None:
        problems = [("resourceType", f"{resource_type!r} is not a FHIR {FHIR_RELEASE} resource type")]
        raise FhirInvalidResource(f"invalid resource: resourceType: {problems[0][1]}", problems=problems)
    try:
        return model.model_validate(dict(resource))
    except ValidationError as error:
        problems = validation_problems(dict(resource)) or [
            (str(resource_type), f"{error.error_count()} validation error(s)")
        ]
        element, message = problems[0]
        raise FhirInvalidResource(
            f"invalid {resource_type}: {element}: {message}"
            + (f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""),
            problems=problems,
        ) from None


def resources_of(bundle: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The resources in a Bundle's entries, in order (entries without a resource are skipped)."""
    return [
        entry["resource"]
        for entry in bundle.get("entry") or []
        if isinstance(entry, dict) and isinstance(entry.get("resource"), dict)
    ]
