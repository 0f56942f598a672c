"""`ShapeValidator` says what `validation_problems` says, validating in full only shapes it has not seen
valid before: every value of a remembered shape is still checked against its element's FHIR type."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from aftercare.fhir.resources import validation_problems
from aftercare.fhir.shapes import ShapeValidator, shape_of
from aftercare.hl7v2.mapping import map_message
from aftercare.hl7v2.messages import V2Message
from tests.aftercare.hl7v2.samples import sample

ZONE = ZoneInfo("America/New_York")
EVENTS = ["a01_admit", "a02_transfer", "a03_discharge", "a04_register", "a08_update",
          "a11_cancel_admit", "a13_cancel_discharge", "a40_merge"]  # fmt: skip
# Values no FHIR type takes, or that only some do: each put in place of every value in turn.
BAD_VALUES: list[Any] = ["", " padded", "two  spaces", "1958-02-30", "not a date", "a b", True, 12, 1.5]


def resources(name: str) -> list[dict[str, Any]]:
    return map_message(V2Message(sample(name)), zone=ZONE).resources


def paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path of every primitive value."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key != "resourceType":
                yield from paths(value, (*path, key))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from paths(item, (*path, index))
    else:
        yield path


def replaced(resource: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(resource)
    node: Any = changed
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return changed


@pytest.mark.parametrize("name", EVENTS)
def test_a_shape_seen_valid_is_validated_in_full_once(name: str) -> None:
    validator = ShapeValidator()
    first, second = resources(name), resources(name)
    second[0]["id"] = "another-patient"

    shapes = len({shape_of(resource)[0] for resource in first})

    assert [validator.problems(resource) for resource in first] == [[] for _ in first]
    assert validator.full == shapes  # two Conditions may share one
    assert [validator.problems(resource) for resource in second] == [[] for _ in second]
    assert validator.full == shapes  # nothing validated in full again


@pytest.mark.parametrize("name", ["a01_admit", "a03_discharge", "a40_merge"])
def test_every_value_of_a_remembered_shape_is_checked_against_its_type(name: str) -> None:
    """Each value of each mapped resource replaced by each bad value: the answer is always
    `validation_problems`', and the replacements it refuses are refused here too."""
    validator = ShapeValidator()
    refused = 0
    for resource in resources(name):
        assert validator.problems(resource) == []
        for path in paths(resource):
            for value in BAD_VALUES:
                changed = replaced(resource, path, value)
                expected = validation_problems(changed)
                assert validator.problems(changed) == expected, (path, value)
                refused += bool(expected)
    assert refused > 100


def test_a_value_its_type_refuses_in_a_remembered_shape() -> None:
    validator = ShapeValidator()
    patient = resources("a01_admit")[0]
    assert validator.problems(patient) == []
    bad_code = replaced(patient, ("gender",), "fe  male")
    bad_date = replaced(patient, ("birthDate",), "1958-02-30")
    bad_id = replaced(patient, ("id",), "an id with spaces")

    for changed, element in ((bad_code, "gender"), (bad_date, "birthDate"), (bad_id, "id")):
        assert shape_of(changed)[0] == shape_of(patient)[0]
        problems = validator.problems(changed)
        assert problems
        assert problems == validation_problems(changed)
        assert element in problems[0][0]


def test_another_shape_or_an_unknown_element_is_validated_in_full() -> None:
    validator = ShapeValidator()
    patient = resources("a01_admit")[0]
    assert validator.problems(patient) == []

    assert validator.problems({**patient, "spaceship": "yes"}) == validation_problems(
        {**patient, "spaceship": "yes"}
    )
    assert validator.problems({**patient, "spaceship": "yes"})
    assert validator.problems({**patient, "active": "maybe"})  # a string where a boolean goes
    assert validator.problems({**patient, "name": [None]})
    assert validator.full == 5


def test_a_shape_whose_types_cannot_be_read_is_always_validated_in_full() -> None:
    validator = ShapeValidator()
    patient = {**resources("a01_admit")[0], "contained": [{"resourceType": "Organization", "id": "o1"}]}

    assert validator.problems(patient) == []
    assert validator.problems(patient) == []
    assert validator.full == 2


def test_conformance_problems_are_reported_for_a_remembered_shape() -> None:
    validator = ShapeValidator()
    encounter = resources("a03_discharge")[1]
    assert validator.problems(encounter) == []
    unknown_status = replaced(encounter, ("status",), "gone-home")

    problems = validator.problems(unknown_status)
    assert problems == validation_problems(unknown_status) != []
