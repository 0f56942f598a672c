"""Journey definitions: the contract's example parses, and every mistake is reported at its step and field."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest
import yaml

from aftercare.definitions import DefinitionInvalidError, parse_journey
from models.durations import format_iso_duration, parse_iso_duration
from models.journey import BranchStep, JourneyDefinition, SendStep, WaitForStep

CONTRACT_EXAMPLE = yaml.safe_load("""
key: hba1c-followup
version: 1
name: High HbA1c follow-up
entry:
  fhir:
    resource: Observation
    interactions: [create, update]
    criteria: "Observation.code.coding.where(system='http://loinc.org' and code='4548-4').exists() and Observation.valueQuantity.value > 9"
reentry: after_exit
exit:
  - event: appointment.booked
    outcome: goal_reached
steps:
  - id: notify
    send: {template: hba1c-high}
  - id: await-reply
    wait_for: {event: sms.reply, timeout: P2D, on_timeout: escalate}
  - id: route
    branch:
      - when: "%event.data.body.upper() = 'YES'"
        goto: thanks
      - otherwise: escalate
  - id: escalate
    wait: {duration: PT3S}
    goto: done
  - id: thanks
    send: {channel: sms, body: "Thanks {{ patient.given }}, your care team will call you."}
  - id: done
    end: {outcome: completed}
""")


def problems_of(document: dict[str, Any]) -> list[dict[str, Any]]:
    with pytest.raises(DefinitionInvalidError) as invalid:
        parse_journey(document)
    return [problem.as_detail() for problem in invalid.value.problems]


def test_the_contract_example_parses_into_typed_steps() -> None:
    journey = parse_journey(CONTRACT_EXAMPLE)
    assert [type(step) for step in journey.steps[:3]] == [SendStep, WaitForStep, BranchStep]
    wait_for = journey.steps[1]
    assert isinstance(wait_for, WaitForStep)
    assert wait_for.wait_for.timeout == timedelta(days=2)
    assert journey.listened_event_types() == {"sms.reply", "appointment.booked"}


def test_a_definition_survives_a_round_trip_through_json() -> None:
    journey = parse_journey(CONTRACT_EXAMPLE)
    document = journey.model_dump(mode="json", exclude_none=True)
    assert document["steps"][1]["wait_for"]["timeout"] == "P2D"
    assert JourneyDefinition.model_validate(document) == journey


def test_a_wait_for_times_out_after_a_duration_or_business_days_never_both_or_neither() -> None:
    document = copy.deepcopy(CONTRACT_EXAMPLE)
    document["steps"][1]["wait_for"] = {
        "event": "sms.reply",
        "timeout_business_days": 2,
        "on_timeout": "escalate",
    }
    wait_for = parse_journey(document).steps[1]
    assert isinstance(wait_for, WaitForStep)
    assert (wait_for.wait_for.timeout, wait_for.wait_for.timeout_business_days) == (None, 2)
    assert wait_for.wait_for.describe_timeout() == "2 business days"
    for spec in ({"timeout": "P2D", "timeout_business_days": 2}, {}):
        document["steps"][1]["wait_for"] = {"event": "sms.reply", **spec}
        [problem] = problems_of(document)
        assert "exactly one of `timeout` and `timeout_business_days`" in problem["msg"]


def test_a_goto_to_a_missing_step_names_the_step_and_field() -> None:
    document = copy.deepcopy(CONTRACT_EXAMPLE)
    document["steps"][3]["goto"] = "nowhere"
    [problem] = problems_of(document)
    assert problem["step"] == "escalate"
    assert problem["field"] == "goto"
    assert problem["loc"] == ["body", "steps", 3, "goto"]
    assert "nowhere" in problem["msg"]


def test_a_field_error_inside_a_step_names_the_step_and_the_nested_field() -> None:
    document = copy.deepcopy(CONTRACT_EXAMPLE)
    document["steps"][1]["wait_for"]["timeout"] = "P1M"
    [problem] = problems_of(document)
    assert (problem["step"], problem["field"]) == ("await-reply", "wait_for.timeout")
    assert "months" in problem["msg"]


def test_an_unknown_step_kind_is_refused_with_the_kinds_that_exist() -> None:
    document = copy.deepcopy(CONTRACT_EXAMPLE)
    document["steps"].append({"id": "mystery", "teleport": {}})
    [problem] = problems_of(document)
    assert problem["step"] == "mystery"
    assert (
        "send, wait, wait_for, branch, task, update, fetch, split, enroll, survey, invite, end, call"
        in problem["msg"]
    )


def test_unknown_fields_are_typos_not_silently_ignored() -> None:
    document = copy.deepcopy(CONTRACT_EXAMPLE)
    document["steps"][0]["send"]["tempalte"] = "x"
    [problem] = problems_of(document)
    assert (problem["step"], problem["field"]) == ("notify", "send.tempalte")


def test_duplicate_step_ids_are_refused() -> None:
    document = copy.deepcopy(CONTRACT_EXAMPLE)
    document["steps"][4]["id"] = "notify"
    [problem] = problems_of(document)
    assert problem["field"] == "id"
    assert "already used" in problem["msg"]


def test_a_loop_without_a_wait_is_refused() -> None:
    document = {
        "key": "spin",
        "version": 1,
        "name": "Spin",
        "steps": [
            {"id": "a", "send": {"channel": "sms", "body": "x"}},
            {"id": "b", "branch": [{"when": "true", "goto": "a"}]},
        ],
    }
    [problem] = problems_of(document)
    assert "loop without a wait" in problem["msg"]


def test_a_loop_through_a_wait_is_allowed() -> None:
    document = {
        "key": "remind",
        "version": 1,
        "name": "Remind",
        "steps": [
            {"id": "a", "send": {"channel": "sms", "body": "x"}},
            {"id": "b", "wait_for": {"event": "sms.reply", "timeout": "P1D", "on_timeout": "a"}},
        ],
    }
    assert parse_journey(document).key == "remind"


def test_send_needs_exactly_one_source() -> None:
    document = copy.deepcopy(CONTRACT_EXAMPLE)
    document["steps"][0]["send"] = {"template": "hba1c-high", "body": "also a body", "channel": "sms"}
    [problem] = problems_of(document)
    assert problem["step"] == "notify"
    assert "either `template` or an inline `body`" in problem["msg"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT3S", timedelta(seconds=3)),
        ("P2D", timedelta(days=2)),
        ("P1DT12H", timedelta(days=1, hours=12)),
        ("P2W", timedelta(weeks=2)),
        ("PT1.5S", timedelta(seconds=1.5)),
    ],
)
def test_iso_durations_parse_and_print_back(text: str, expected: timedelta) -> None:
    assert parse_iso_duration(text) == expected
    assert parse_iso_duration(format_iso_duration(expected)) == expected


@pytest.mark.parametrize("text", ["2 days", "P", "PT", "P1Y", "-P1D", "PT0S", "P1DT"])
def test_malformed_or_empty_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        parse_iso_duration(text)


def test_a_task_is_due_after_a_duration_or_after_business_days_not_both() -> None:
    def with_task(task: dict[str, Any]) -> dict[str, Any]:
        document = copy.deepcopy(CONTRACT_EXAMPLE)
        document["steps"][3] = {"id": "escalate", "task": {"queue": "nurses", "title": "Call", **task}}
        return document

    journey = parse_journey(with_task({"due_business_days": 1}))
    step = journey.steps[3]
    assert step.model_dump(exclude_none=True)["task"]["due_business_days"] == 1
    problems = problems_of(with_task({"due": "P1D", "due_business_days": 1}))
    assert [(problem["step"], problem["msg"]) for problem in problems] == [
        ("escalate", "a task has `due` or `due_business_days`, not both")
    ]
    assert problems_of(with_task({"due_business_days": 0}))  # at least one business day


def test_if_passed_must_name_a_step() -> None:
    document = {
        "key": "at",
        "version": 1,
        "name": "At",
        "steps": [
            {"id": "a", "wait": {"at": {"expression": "%trigger.start", "if_passed": "nowhere"}}},
            {"id": "b", "send": {"channel": "sms", "body": "x"}},
        ],
    }
    [problem] = problems_of(document)
    assert problem["field"] == "wait.at.if_passed"
    assert "'nowhere'" in problem["msg"]


def test_a_loop_through_a_moment_from_the_data_is_refused() -> None:
    """A `wait.at` moment waits once: the next time round it has passed, and the loop would spin."""
    document = {
        "key": "spin-at",
        "version": 1,
        "name": "Spin at",
        "steps": [
            {"id": "a", "wait": {"at": {"expression": "%trigger.start"}}},
            {"id": "b", "send": {"channel": "sms", "body": "x"}},
            {"id": "c", "branch": [{"when": "true", "goto": "a"}]},
        ],
    }
    [problem] = problems_of(document)
    assert "loop without a wait" in problem["msg"]
