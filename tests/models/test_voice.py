"""The `call` step in journey definitions (contract §6, voice): the issue's example parses; mistakes in
a script are refused naming the step and the field."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from aftercare.definitions import DefinitionInvalidError, parse_journey
from models.journey import CallStep

CONTRACT_EXAMPLE = """
key: voice-check
version: 1
name: Voice check
steps:
  - id: check-call
    call:
      say: "Hello {{ patient.given }}, this is your care team checking on you after your discharge."
      gather: [{id: feeling, prompt: "Press 1 if you feel well, 2 if you feel worse.", digits: "12"}]
  - id: await-call
    wait_for: {event: voice.answered, timeout: PT2H, on_timeout: no-answer}
  - id: route
    branch:
      - {when: "%event.data.answers.feeling = '2'", goto: escalate}
      - {otherwise: done}
  - id: escalate
    task: {queue: nurses, title: "Call {{ patient.name }}"}
    goto: done
  - id: no-answer
    end: {outcome: no_answer}
  - id: done
    end: {outcome: completed}
"""


def with_call(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(CONTRACT_EXAMPLE)
    document["steps"][0]["call"].update(changes)
    return document


def problem_of(document: dict[str, Any]) -> dict[str, Any]:
    with pytest.raises(DefinitionInvalidError) as invalid:
        parse_journey(document)
    [problem] = [problem.as_detail() for problem in invalid.value.problems]
    return problem


def test_the_issue_s_example_parses_and_listens_for_every_call_outcome() -> None:
    journey = parse_journey(yaml.safe_load(CONTRACT_EXAMPLE))
    call = journey.steps[0]
    assert isinstance(call, CallStep)
    assert [(q.id, q.digits, q.num_digits) for q in call.call.gather] == [("feeling", "12", 1)]
    assert call.describe() == "Calling the patient (1 question)"
    assert journey.listened_event_types() == {
        "voice.answered",
        "voice.no_answer",
        "voice.busy",
        "voice.failed",
        "voice.machine",
    }


def test_two_questions_with_one_id_are_refused() -> None:
    twice = [{"id": "feeling", "prompt": "One?"}, {"id": "feeling", "prompt": "Two?"}]
    problem = problem_of(with_call(gather=twice))
    assert problem["step"] == "check-call"
    assert "same `id`" in problem["msg"]


def test_keys_that_are_not_keypad_keys_are_refused() -> None:
    problem = problem_of(with_call(gather=[{"id": "feeling", "prompt": "Yes?", "digits": "yn"}]))
    assert problem["loc"][-1] == "digits"


def test_on_unanswered_must_name_a_step() -> None:
    problem = problem_of(with_call(on_unanswered="letter"))
    assert "jumps to 'letter'" in problem["msg"]
    assert problem["loc"][-1] == "on_unanswered"


def test_a_transfer_goes_to_a_phone_number_in_international_form() -> None:
    problem = problem_of(with_call(transfer={"to": "555-0100"}))
    assert problem["loc"][-1] == "to"
