"""Segment definitions (contract §5): the criteria grammar, what it refuses, and the stored form."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from aftercare.segments.validation import clean_loc
from models.journey import JourneyDefinition
from models.segment import SegmentDefinition, code_tokens, referenced_segments
from tests.api.test_segments import CONTRACT_EXAMPLE


def parse(criteria: Any, **extra: Any) -> SegmentDefinition:
    return SegmentDefinition.model_validate({"key": "k", "name": "n", "criteria": criteria, **extra})


def problems(criteria: Any, **extra: Any) -> dict[tuple[Any, ...], str]:
    with pytest.raises(ValidationError) as raised:
        parse(criteria, **extra)
    return {clean_loc(tuple(item["loc"])): item["msg"] for item in raised.value.errors()}


def test_the_contract_example_parses_and_round_trips() -> None:
    segment = SegmentDefinition.model_validate(yaml.safe_load(CONTRACT_EXAMPLE))
    again = SegmentDefinition.model_validate(segment.document())
    assert again == segment
    assert segment.document()["criteria"]["all"][3] == {
        "not": {"encounter": {"class": ["IMP"], "discharged_within": "P30D"}}
    }


def test_codes_are_a_coding_a_list_or_a_named_value_set() -> None:
    one = parse({"condition": {"code": {"system": "s", "code": "1"}}})
    many = parse({"condition": {"code": [{"system": "s", "code": "1"}, {"system": "t", "code": "2"}]}})
    named = parse({"condition": {"code": {"value_set": "hypertension"}}})
    assert code_tokens(one.criteria.condition.code) == ["s|1"]  # type: ignore[union-attr]
    assert code_tokens(many.criteria.condition.code) == ["s|1", "t|2"]  # type: ignore[union-attr]
    assert code_tokens(named.criteria.condition.code) == [  # type: ignore[union-attr]
        "http://snomed.info/sct|59621000",
        "http://snomed.info/sct|38341003",
    ]


@pytest.mark.parametrize(
    ("criteria", "loc", "message"),
    [
        ({"age": {}}, ("criteria", "age"), "at least one of"),
        ({"age": {"gte": 1}, "gender": {"eq": "f"}}, ("criteria",), "exactly one of"),
        ({"all": []}, ("criteria", "all"), "at least 1 item"),
        ({"any": [{"height": {"gt": 1}}]}, ("criteria", "any", 0), "exactly one of"),
        ({"observation": {"code": {"system": "s"}}}, ("criteria", "observation", "code", "code"), "required"),
        (
            {"encounter": {"discharged_within": "P1M"}},
            ("criteria", "encounter", "discharged_within"),
            "months",
        ),
        ({"appointment": {}}, ("criteria", "appointment"), "exactly one of upcoming_within, missed_within"),
        ({"engagement": {}}, ("criteria", "engagement"), "contacted_within"),
        ({"consent": {"channel": "fax", "status": "granted"}}, ("criteria", "consent", "channel"), "sms"),
        ({"segment": "k"}, (), "refers to itself"),
    ],
)
def test_invalid_criteria_name_their_path(criteria: Any, loc: tuple[Any, ...], message: str) -> None:
    found = problems(criteria)
    assert loc in found, found
    assert message in found[loc]


def test_referenced_segments_are_found_anywhere_in_the_tree() -> None:
    segment = parse({"all": [{"segment": "a"}, {"not": {"any": [{"segment": "b"}, {"age": {"gt": 1}}]}}]})
    assert referenced_segments(segment.criteria) == {"a", "b"}


def test_a_journey_can_be_entered_by_a_segment_and_needs_exactly_one_way_in() -> None:
    base = {"key": "j", "version": 1, "name": "J", "steps": [{"id": "end", "end": {"outcome": "done"}}]}
    journey = JourneyDefinition.model_validate({**base, "entry": {"segment": "recently-discharged"}})
    assert journey.entry is not None
    assert journey.entry.segment == "recently-discharged"
    with pytest.raises(ValidationError, match="exactly one of `fhir`, `event` or `segment`"):
        JourneyDefinition.model_validate(
            {**base, "entry": {"segment": "a", "event": {"type": "discharge.completed"}}}
        )
