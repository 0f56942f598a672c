"""A Questionnaire as a form: answers typed and checked on the server, `enableWhen` (with its
operators, `enableBehavior` and conditions inherited from groups), and the QuestionnaireResponse."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aftercare.fhir.resources import validation_problems
from aftercare.surveys.form import parse_answers, plain_answers, questionnaire_response, questions
from aftercare.surveys.questionnaires import survey_problems

QUESTIONNAIRE: dict[str, Any] = {
    "resourceType": "Questionnaire",
    "url": "https://example.org/q/form",
    "version": "1",
    "status": "active",
    "item": [
        {"linkId": "smoker", "text": "Do you smoke?", "type": "boolean", "required": True},
        {
            "linkId": "smoking",
            "text": "About smoking",
            "type": "group",
            "enableWhen": [{"question": "smoker", "operator": "=", "answerBoolean": True}],
            "item": [
                {"linkId": "per-day", "text": "Cigarettes a day", "type": "integer", "required": True},
                {
                    "linkId": "quit-help",
                    "text": "Would you like help to quit?",
                    "type": "choice",
                    "required": True,
                    "enableWhen": [
                        {"question": "per-day", "operator": ">", "answerInteger": 10},
                        {"question": "weight", "operator": "exists", "answerBoolean": True},
                    ],
                    "enableBehavior": "any",
                    "answerOption": [{"valueString": "yes"}, {"valueString": "no"}],
                },
            ],
        },
        {"linkId": "weight", "text": "Weight in kg", "type": "decimal"},
        {"linkId": "seen", "text": "Last seen", "type": "date"},
        {"linkId": "note", "text": "A note", "type": "string", "maxLength": 10},
    ],
}


def parse(**fields: str) -> Any:
    return parse_answers(QUESTIONNAIRE, {f"q.{k.replace('_', '-')}": [v] for k, v in fields.items()})


def test_questions_come_in_order_and_inherit_their_groups_conditions() -> None:
    found = {q.link_id: q for q in questions(QUESTIONNAIRE)}
    assert list(found) == ["smoker", "smoking", "per-day", "quit-help", "weight", "seen", "note"]
    assert len(found["per-day"].conditions) == 1  # the group's
    assert len(found["quit-help"].conditions) == 2  # the group's and its own
    assert [c.label for c in found["quit-help"].choices] == ["yes", "no"]


def test_answers_to_disabled_questions_are_dropped_and_not_required() -> None:
    parsed = parse(smoker="false", per_day="20", quit_help="0")
    assert parsed.errors == {}
    assert plain_answers(parsed) == {"smoker": [False]}


def test_an_enabled_required_question_needs_an_answer() -> None:
    parsed = parse(smoker="true")
    assert parsed.errors == {"per-day": "survey.required"}


def test_enable_behavior_any_takes_one_condition() -> None:
    light = parse(smoker="true", per_day="5")
    heavy = parse(smoker="true", per_day="15")
    light_but_weighed = parse(smoker="true", per_day="5", weight="80.5")
    assert light.errors == {}
    assert heavy.errors == {"quit-help": "survey.required"}
    assert light_but_weighed.errors == {"quit-help": "survey.required"}


def test_each_type_is_checked() -> None:
    parsed = parse(smoker="maybe", weight="heavy", seen="2026-02-30", note="far too long for this")
    assert parsed.errors == {
        "smoker": "survey.boolean",
        "weight": "survey.decimal",
        "seen": "survey.date",
        "note": "survey.too_long",
    }
    assert parse(smoker="false", per_day="x").errors == {}  # disabled: not checked
    assert parse(smoker="true", per_day="x").errors == {"per-day": "survey.integer"}
    assert parse(smoker="true", per_day="12", quit_help="7").errors == {"quit-help": "survey.choice"}


def test_the_response_keeps_the_groups_and_is_valid_fhir() -> None:
    parsed = parse(smoker="true", per_day="12", quit_help="0", weight="80,5", seen="2026-01-31")
    response = questionnaire_response(
        QUESTIONNAIRE, parsed, response_id="r1", patient_id="p1", authored=datetime(2026, 12, 5, tzinfo=UTC)
    )
    assert validation_problems(response) == []
    assert response["questionnaire"] == "https://example.org/q/form|1"
    smoking = response["item"][1]
    assert smoking["linkId"] == "smoking"
    assert [item["linkId"] for item in smoking["item"]] == ["per-day", "quit-help"]
    assert smoking["item"][1]["answer"] == [{"valueString": "yes"}]
    assert response["item"][2]["answer"] == [{"valueDecimal": 80.5}]


def test_what_a_survey_cannot_use_is_named_by_element() -> None:
    broken = {
        **QUESTIONNAIRE,
        "url": None,
        "item": [
            {"linkId": "a", "text": "A", "type": "attachment"},
            {"linkId": "a", "text": "A again", "type": "choice"},
            {
                "linkId": "b",
                "text": "B",
                "type": "string",
                "enableWhen": [{"question": "zz", "operator": "exists", "answerBoolean": True}],
            },
        ],
    }
    assert survey_problems(broken) == [
        ("Questionnaire.url", "a survey Questionnaire needs a canonical url"),
        ("Questionnaire.item[0].type", "item type 'attachment' is not supported in surveys"),
        ("Questionnaire.item[1].linkId", "linkId 'a' is used twice"),
        ("Questionnaire.item[1]", "a choice item needs answerOption or a contained answerValueSet"),
        ("Questionnaire.item[2].enableWhen[0].question", "no item with linkId 'zz'"),
    ]
