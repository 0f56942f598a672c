"""Reading one line: the resource, or why it is parked (without its content)."""

from __future__ import annotations

import pytest

from aftercare.bulk.lines import Parked, read_item


def test_a_resource_line_is_read() -> None:
    assert read_item('{"resourceType": "Patient", "id": "p-1"}') == {"resourceType": "Patient", "id": "p-1"}


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('{"resourceType": "Patient"', "not JSON: Expecting ',' delimiter at position 26"),
        ('"Patient"', "not a JSON object"),
        ('{"id": "x"}', "not a FHIR resource: no resourceType"),
        ('{"resourceType": "Patientt", "id": "x"}', "'Patientt' is not a FHIR resource type"),
        ('{"resourceType": "Patient", "id": "has space"}', "Patient without a valid id"),
        ('{"resourceType": "Patient", "id": "' + "x" * 65 + '"}', "Patient without a valid id"),
        (
            '{"resourceType": "Patient", "id": "p", "meta": {"versionId": 3}}',
            "Patient with an invalid meta.versionId",
        ),
        (
            '{"resourceType": "Patient", "id": "p", "name": [{"text": "a\\u0000"}]}',
            "contains \\u0000, which PostgreSQL cannot store",
        ),
    ],
)
def test_an_unusable_line_is_parked_with_why(line: str, reason: str) -> None:
    assert read_item(line) == Parked(reason)


def test_validation_is_asked_for() -> None:
    line = '{"resourceType": "Patient", "id": "p", "gender": 5}'

    assert isinstance(read_item(line), dict)
    parked = read_item(line, validate=True)
    assert isinstance(parked, Parked)
    assert parked.reason.startswith("Patient.gender")
