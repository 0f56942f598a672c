"""Each criterion of a tree with its path and a description in words (no SQL)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

from models.durations import format_iso_duration
from models.segment import (
    AgeCriterion,
    AllCriterion,
    AllergyCriterion,
    AnyCriterion,
    AppointmentCriterion,
    Comparison,
    ConditionCriterion,
    ConsentCriterion,
    Criterion,
    EncounterCriterion,
    EngagementCriterion,
    GenderCriterion,
    ImmunizationCriterion,
    LanguageCriterion,
    MedicationCriterion,
    NotCriterion,
    ObservationCriterion,
    PostalCodeCriterion,
    ProcedureCriterion,
    RiskCriterion,
    SegmentCriterion,
    children,
    describe_codes,
)

_WORDS = {"eq": "=", "ne": "≠", "gt": ">", "gte": "≥", "lt": "<", "lte": "≤", "in": "in"}


@dataclass(frozen=True)
class Node:
    """A criterion at a path such as `criteria.all[1].not`."""

    path: str
    criterion: Criterion
    description: str


def nodes(criterion: Criterion, path: str = "criteria") -> Iterator[Node]:
    """The criterion and all its sub-criteria, depth first."""
    yield Node(path, criterion, describe(criterion))
    for step, child in children(criterion):
        child_path = f"{path}.not" if step == "not" else f"{path}.{_kind(criterion)}[{step}]"
        yield from nodes(child, child_path)


def _kind(criterion: Criterion) -> str:
    return "all" if isinstance(criterion, AllCriterion) else "any"


def comparison_text(comparison: Comparison) -> str:
    """`≥ 18`, `in es, fr`."""
    parts = []
    for operator, operand in comparison.operators():
        shown = ", ".join(str(item) for item in operand) if isinstance(operand, list) else _number(operand)
        parts.append(f"{_WORDS[operator]} {shown}")
    return " and ".join(parts)


def _number(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _within(window: timedelta | None, what: str = "in the last") -> str:
    return f" {what} {format_iso_duration(window)}" if window is not None else ""


def _statuses(statuses: list[str] | None) -> str:
    return f" ({', '.join(statuses)})" if statuses else ""


def describe(criterion: Criterion) -> str:
    """A criterion in words."""
    match criterion:
        case AllCriterion():
            return f"all of {len(criterion.all)} criteria"
        case AnyCriterion():
            return f"any of {len(criterion.any)} criteria"
        case NotCriterion():
            return f"not: {describe(criterion.not_)}"
        case AgeCriterion():
            return f"age {comparison_text(criterion.age)}"
        case GenderCriterion():
            return f"gender {comparison_text(criterion.gender)}"
        case LanguageCriterion():
            return f"language {comparison_text(criterion.language)}"
        case PostalCodeCriterion():
            return f"postal code {comparison_text(criterion.postal_code)}"
        case ConditionCriterion():
            spec = criterion.condition
            return (
                f"condition {describe_codes(spec.code)}{_statuses(spec.clinical_status)}"
                f"{_within(spec.onset_within, 'with onset in the last')}"
            )
        case ObservationCriterion():
            observation = criterion.observation
            which = "latest " if observation.latest else ""
            value = f" {comparison_text(observation.value)}" if observation.value is not None else ""
            code = describe_codes(observation.code)
            return f"{which}observation {code}{_within(observation.within)}{value}"
        case MedicationCriterion():
            medication = criterion.medication
            code = f" {describe_codes(medication.code)}" if medication.code is not None else ""
            return (
                f"medication{code}{_statuses(medication.status)}"
                f"{_within(medication.authored_within, 'prescribed in the last')}"
            )
        case ProcedureCriterion():
            return (
                f"procedure {describe_codes(criterion.procedure.code)}{_within(criterion.procedure.within)}"
            )
        case AllergyCriterion():
            allergy = criterion.allergy
            code = f" {describe_codes(allergy.code)}" if allergy.code is not None else ""
            return f"allergy{code}{_statuses(allergy.clinical_status)}"
        case ImmunizationCriterion():
            spec_i = criterion.immunization
            return f"immunization {describe_codes(spec_i.code)}{_within(spec_i.within)}"
        case EncounterCriterion():
            encounter = criterion.encounter
            kind = f" {', '.join(encounter.class_)}" if encounter.class_ else ""
            diagnosis = (
                f" for {describe_codes(encounter.diagnosis)}" if encounter.diagnosis is not None else ""
            )
            return (
                f"encounter{kind}{diagnosis}{_within(encounter.discharged_within, 'discharged in the last')}"
                f"{_within(encounter.started_within, 'started in the last')}"
            )
        case AppointmentCriterion():
            appointment = criterion.appointment
            if appointment.upcoming_within is not None:
                return f"appointment{_within(appointment.upcoming_within, 'coming in the next')}"
            return f"appointment missed{_within(appointment.missed_within)}"
        case EngagementCriterion():
            engagement = criterion.engagement
            parts = [
                f"{verb}{_within(window)}"
                for verb, window in (
                    ("contacted", engagement.contacted_within),
                    ("replied", engagement.replied_within),
                    ("opened a message", engagement.opened_within),
                )
                if window is not None
            ]
            return " and ".join(parts)
        case ConsentCriterion():
            consent = criterion.consent
            purpose = "" if consent.purpose == "*" else f" for {consent.purpose}"
            return f"consent on {consent.channel}{purpose} {consent.status}"
        case RiskCriterion():
            risk = criterion.risk
            return (
                f"latest {risk.score.upper()} score {comparison_text(risk)}"
                f"{_within(risk.discharged_within, 'discharged in the last')}"
            )
        case SegmentCriterion():
            return f"member of segment {criterion.segment}"
    return type(criterion).__name__
