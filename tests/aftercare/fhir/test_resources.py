"""Validation with fhir.resources (R4B models reading R4 data)."""

from __future__ import annotations

from aftercare.fhir.bundles import entries_of
from aftercare.fhir.resources import is_resource_type, validation_problems
from tests.conftest import synthea_bundle


def test_every_resource_of_a_synthea_bundle_is_valid() -> None:
    entries = entries_of(synthea_bundle())
    assert all(validation_problems(entry.resource) == [] for entry in entries)


def test_a_missing_required_element_is_named() -> None:
    problems = validation_problems({"resourceType": "Observation", "id": "o1", "code": {"text": "x"}})
    assert [path for path, _ in problems] == ["Observation.status"]


def test_an_unknown_element_and_a_bad_value_are_both_reported() -> None:
    problems = validation_problems(
        {
            "resourceType": "Observation",
            "id": "o1",
            "status": "final",
            "code": {"text": "x"},
            "valueQuantity": {"value": "nine"},
            "colour": "red",
        }
    )
    assert {path for path, _ in problems} == {"Observation.valueQuantity.value", "Observation.colour"}


def test_unknown_resource_types_are_refused() -> None:
    assert not is_resource_type("Spaceship")
    assert validation_problems({"resourceType": "Spaceship"})[0][0] == "resourceType"
