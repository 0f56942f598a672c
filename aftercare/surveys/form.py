"""A Questionnaire as the patient's form, and a posted form as a QuestionnaireResponse: the questions
in order (groups flattened, each knowing the conditions that enable it), the posted answers typed and
validated on the server (types, required items, `enableWhen`), and the response resource.

Answers to questions that are not enabled by the other answers are dropped, as the FHIR rules say."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

MAX_TEXT = 4000
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_INTEGER = re.compile(r"^[+-]?\d{1,9}$")
_DECIMAL = re.compile(r"^[+-]?\d{1,12}([.,]\d{1,6})?$")


@dataclass(frozen=True)
class Choice:
    """One option of a choice question: its form value, its label and its FHIR `value[x]`."""

    value: str
    label: str
    fhir: dict[str, Any]


@dataclass(frozen=True)
class Question:
    """One item of the form, with what enables it (its own `enableWhen` and its groups')."""

    link_id: str
    text: str
    type: str
    required: bool = False
    repeats: bool = False
    choices: tuple[Choice, ...] = ()
    conditions: tuple[tuple[tuple[dict[str, Any], ...], str], ...] = ()
    depends_on: tuple[str, ...] = ()
    max_length: int = MAX_TEXT

    @property
    def answerable(self) -> bool:
        """Not a heading or a text to read."""
        return self.type not in ("group", "display")


@dataclass
class Parsed:
    """A posted form: typed answers by linkId (enabled questions only), what was typed, and errors
    (catalogue keys) by linkId."""

    answers: dict[str, list[Any]] = field(default_factory=dict)
    typed: dict[str, list[str]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def options_of(resource: dict[str, Any], item: dict[str, Any]) -> list[Choice] | None:
    """A choice item's options, from `answerOption` or a contained `answerValueSet`; None when they
    cannot be found."""
    options: list[dict[str, Any]] = []
    if item.get("answerOption"):
        options = [option for option in item["answerOption"] if isinstance(option, dict)]
    elif item.get("answerValueSet"):
        reference = str(item["answerValueSet"])
        contained = [r for r in resource.get("contained") or [] if r.get("resourceType") == "ValueSet"]
        value_set = next(
            (v for v in contained if f"#{v.get('id')}" == reference or v.get("url") == reference), None
        )
        if value_set is None:
            return None
        for code in (value_set.get("expansion") or {}).get("contains") or []:
            options.append({"valueCoding": {k: code[k] for k in ("system", "code", "display") if k in code}})
        for include in (value_set.get("compose") or {}).get("include") or []:
            for concept in include.get("concept") or []:
                coding = {
                    "system": include.get("system"),
                    "code": concept.get("code"),
                    "display": concept.get("display"),
                }
                options.append({"valueCoding": {k: v for k, v in coding.items() if v is not None}})
    choices = []
    for position, option in enumerate(options):
        key, value = next(((k, v) for k, v in option.items() if k.startswith("value")), ("", None))
        if value is None:
            continue
        label = (value.get("display") or value.get("code")) if isinstance(value, dict) else value
        choices.append(Choice(str(position), str(label), {key: value}))
    return choices


def questions(resource: dict[str, Any]) -> list[Question]:
    """The form's questions in order, groups flattened (a group's conditions pass to its items)."""
    found: list[Question] = []

    def visit(
        items: Sequence[dict[str, Any]], inherited: tuple[tuple[tuple[dict[str, Any], ...], str], ...]
    ) -> None:
        for item in items:
            when = tuple(item.get("enableWhen") or ())
            conditions = (*inherited, (when, item.get("enableBehavior") or "all")) if when else inherited
            found.append(
                Question(
                    link_id=str(item["linkId"]),
                    text=str(item.get("text") or item["linkId"]),
                    type=str(item["type"]),
                    required=bool(item.get("required")),
                    repeats=bool(item.get("repeats")),
                    choices=tuple(options_of(resource, item) or ()) if item["type"] == "choice" else (),
                    conditions=conditions,
                    depends_on=tuple(str(c.get("question")) for c in when),
                    max_length=min(int(item.get("maxLength") or MAX_TEXT), MAX_TEXT),
                )
            )
            visit(item.get("item") or [], conditions)

    visit(resource.get("item") or [], ())
    return found


def _plain(value: Any) -> Any:
    """An answer as compared and reported: a Coding by its code, anything else as it is."""
    return value.get("code") if isinstance(value, dict) else value


def _holds(condition: dict[str, Any], answers: dict[str, list[Any]]) -> bool:
    given = [_plain(a) for a in answers.get(str(condition.get("question")), [])]
    operator = condition.get("operator")
    key = next((k for k in condition if k.startswith("answer")), None)
    expected = _plain(condition.get(key)) if key else None
    if operator == "exists":
        return bool(given) == bool(expected)
    if not given:
        return False
    if operator == "=":
        return expected in given
    if operator == "!=":
        return expected not in given
    try:
        comparisons = {
            ">": lambda a: a > expected,
            "<": lambda a: a < expected,
            ">=": lambda a: a >= expected,
            "<=": lambda a: a <= expected,
        }
        return any(comparisons[str(operator)](answer) for answer in given)
    except (KeyError, TypeError):
        return False


def is_enabled(question: Question, answers: dict[str, list[Any]]) -> bool:
    """Whether the answers so far enable the question (every level of its conditions)."""
    for conditions, behaviour in question.conditions:
        results = [_holds(condition, answers) for condition in conditions]
        if not (any(results) if behaviour == "any" else all(results)):
            return False
    return True


def _typed(question: Question, raw: str) -> Any:
    """The answer as its FHIR type; ValueError (the catalogue key) when it does not fit."""
    if question.type in ("string", "text"):
        if len(raw) > question.max_length or (question.type == "string" and "\n" in raw):
            raise ValueError("survey.too_long")
        return raw
    if question.type == "integer":
        if not _INTEGER.match(raw):
            raise ValueError("survey.integer")
        return int(raw)
    if question.type == "decimal":
        if not _DECIMAL.match(raw):
            raise ValueError("survey.decimal")
        return float(raw.replace(",", "."))
    if question.type == "date":
        try:
            if not _DATE.match(raw):
                raise ValueError
            return date.fromisoformat(raw).isoformat()
        except ValueError:
            raise ValueError("survey.date") from None
    if question.type == "boolean":
        if raw not in ("true", "false"):
            raise ValueError("survey.boolean")
        return raw == "true"
    if question.type == "choice":
        chosen = next((c for c in question.choices if c.value == raw), None)
        if chosen is None:
            raise ValueError("survey.choice")
        return chosen
    raise ValueError("survey.choice")


def parse_answers(resource: dict[str, Any], fields: dict[str, list[str]]) -> Parsed:
    """The posted form (`q.<linkId>` fields) checked against the Questionnaire. Which questions are
    enabled is settled first (a condition may name a later question, and a disabled question's answer
    enables nothing), then only the enabled ones are checked."""
    parsed = Parsed()
    typed: dict[str, list[Any]] = {}
    problems: dict[str, str] = {}
    answerable = [q for q in questions(resource) if q.answerable]
    for question in answerable:
        raw = [value.strip() for value in fields.get(f"q.{question.link_id}", []) if value.strip()]
        parsed.typed[question.link_id] = raw
        values = []
        for value in raw if question.repeats else raw[:1]:
            try:
                values.append(_typed(question, value))
            except ValueError as error:
                problems[question.link_id] = str(error)
                break
        if values and question.link_id not in problems:
            typed[question.link_id] = values
    enabled = {q.link_id for q in answerable}
    for _ in range(len(answerable) + 1):
        given = {link_id: values for link_id, values in typed.items() if link_id in enabled}
        settled = {q.link_id for q in answerable if is_enabled(q, given)}
        if settled == enabled:
            break
        enabled = settled
    for question in answerable:
        if question.link_id not in enabled:
            continue
        if question.link_id in problems:
            parsed.errors[question.link_id] = problems[question.link_id]
        elif question.link_id in typed:
            parsed.answers[question.link_id] = typed[question.link_id]
        elif question.required:
            parsed.errors[question.link_id] = "survey.required"
    return parsed


_VALUE_KEYS = {
    "string": "valueString",
    "text": "valueString",
    "integer": "valueInteger",
    "decimal": "valueDecimal",
    "date": "valueDate",
    "boolean": "valueBoolean",
}


def _answer(question: Question, value: Any) -> dict[str, Any]:
    if isinstance(value, Choice):
        return dict(value.fhir)
    return {_VALUE_KEYS[question.type]: value}


def questionnaire_response(
    resource: dict[str, Any],
    parsed: Parsed,
    *,
    response_id: str,
    patient_id: str,
    authored: datetime,
) -> dict[str, Any]:
    """The QuestionnaireResponse of the answers, shaped like the Questionnaire (groups kept)."""
    by_id = {q.link_id: q for q in questions(resource)}

    def items(source: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        built = []
        for item in source:
            link_id = str(item["linkId"])
            question = by_id[link_id]
            entry: dict[str, Any] = {"linkId": link_id, "text": question.text}
            if link_id in parsed.answers:
                entry["answer"] = [_answer(question, value) for value in parsed.answers[link_id]]
            children = items(item.get("item") or [])
            if children:
                entry["item"] = children
            if "answer" in entry or children:
                built.append(entry)
        return built

    return {
        "resourceType": "QuestionnaireResponse",
        "id": response_id,
        "identifier": {"system": "urn:aftercare:survey-response", "value": response_id},
        "questionnaire": f"{resource['url']}|{resource['version']}",
        "status": "completed",
        "subject": {"reference": f"Patient/{patient_id}"},
        "authored": authored.isoformat(),
        "item": items(resource.get("item") or []),
    }


def plain_answers(parsed: Parsed) -> dict[str, list[Any]]:
    """The answers by linkId as the `survey.completed` event and analytics carry them (a choice by
    its code or value)."""
    return {
        link_id: [_plain(next(iter(v.fhir.values()))) if isinstance(v, Choice) else v for v in values]
        for link_id, values in parsed.answers.items()
    }
