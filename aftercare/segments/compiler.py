"""From a segment's criteria tree to one SQL condition over `patients` (no per-patient Python).

Every fact criterion becomes `EXISTS (SELECT FROM <facts> WHERE patient_id = patients.id AND ...)`,
which PostgreSQL runs as a semi-join (an anti-join under `not`); directly under `any` it becomes
`patients.id IN (SELECT patient_id ...)`, a sub-plan hashed once rather than run per patient (the
evaluation raises `work_mem` so the hash fits). A segment is a single query whatever its shape.
Column criteria (age, gender, ...) are `coalesce(..., false)` so that `not` of a missing value is
true, as an author expects.

Windows are relative to `as_of`: `within: P30D` means `as_of - 30 days < time <= as_of` (an upcoming
appointment: `as_of < start <= as_of + window`). The latest observation is the latest up to `as_of`;
other criteria without a window read current facts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy import (
    ARRAY,
    Column,
    ColumnElement,
    Date,
    DateTime,
    Select,
    String,
    Table,
    and_,
    bindparam,
    cast,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)

from aftercare.store.facilities import placed_in
from models.risk_tables import RiskScore
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
    SegmentDefinition,
    code_tokens,
)
from models.tables import (
    ClinicalAllergy,
    ClinicalAppointment,
    ClinicalCondition,
    ClinicalEncounter,
    ClinicalImmunization,
    ClinicalMedication,
    ClinicalObservation,
    ClinicalProcedure,
    ConsentEvent,
    InboundMessage,
    Message,
    Patient,
    table_of,
)

PATIENTS = table_of(Patient)
UPCOMING_STATUSES = ("booked", "pending", "proposed")
MISSED_STATUSES = ("noshow",)


class SegmentReferenceError(ValueError):
    """A `segment` criterion names a segment that does not exist, or segments refer to each other."""


@dataclass(frozen=True)
class CompileContext:
    """What a compilation needs besides the tree: the evaluation time, the segments referred to
    (latest versions, by key), optionally one patient to restrict every sub-query to, and the subtree
    of each facility that owns one of the segments (its members are that subtree's patients)."""

    as_of: datetime
    segments: Mapping[str, SegmentDefinition] = field(default_factory=dict)
    patient_id: str | None = None
    visiting: tuple[str, ...] = ()
    subtrees: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def since(self, window: timedelta) -> ColumnElement[datetime]:
        """The start of a look-back window."""
        return literal(self.as_of - window, DateTime(timezone=True))

    def now(self) -> ColumnElement[datetime]:
        """The evaluation time."""
        return literal(self.as_of, DateTime(timezone=True))


def segment_condition(definition: SegmentDefinition, context: CompileContext) -> ColumnElement[bool]:
    """Membership of a segment: its criteria, alive unless it includes the deceased, and a patient of
    the subtree of the facility that owns it, if one does."""
    condition = compile_criterion(
        definition.criteria, replace(context, visiting=(*context.visiting, definition.key))
    )
    if definition.facility is not None:
        owned = context.subtrees.get(definition.facility, (definition.facility,))
        condition = and_(PATIENTS.c.id.in_(placed_in(owned)), condition)
    return condition if definition.include_deceased else and_(alive(), condition)


def alive() -> ColumnElement[bool]:
    """The patient is not known to be deceased."""
    return not_(PATIENTS.c.deceased)


def members_query(definition: SegmentDefinition, context: CompileContext) -> Select[tuple[str]]:
    """`SELECT id FROM patients WHERE <membership>`."""
    return select(PATIENTS.c.id).where(segment_condition(definition, context))


def compile_criterion(
    criterion: Criterion, context: CompileContext, *, alternative: bool = False
) -> ColumnElement[bool]:
    """One criterion (and its sub-tree) as a condition on `patients`; `alternative` for a direct child
    of `any`."""
    match criterion:
        case AllCriterion():
            return and_(true(), *(compile_criterion(child, context) for child in criterion.all))
        case AnyCriterion():
            return or_(
                false(), *(compile_criterion(child, context, alternative=True) for child in criterion.any)
            )
        case NotCriterion():
            return not_(compile_criterion(criterion.not_, context))
        case AgeCriterion():
            as_of_date = literal(context.as_of.date(), Date)
            years = func.date_part("year", func.age(as_of_date, PATIENTS.c.birth_date))
            return _known(compare(years, criterion.age))
        case GenderCriterion():
            return _known(compare(func.lower(PATIENTS.c.gender), criterion.gender, lower=True))
        case LanguageCriterion():
            language = func.lower(func.split_part(PATIENTS.c.language, "-", 1))
            return _known(compare(language, criterion.language, lower=True))
        case PostalCodeCriterion():
            postal = PATIENTS.c.address.op("->>")("postalCode")
            return _known(compare(postal, criterion.postal_code))
        case SegmentCriterion():
            return _segment(criterion.segment, context)
    if alternative:
        # Under `any` a correlated EXISTS would run once per patient; `IN` is hashed once instead.
        return PATIENTS.c.id.in_(fact_patients(criterion, context))
    facts = fact_patients(criterion, context).subquery("facts")
    return select(facts.c.patient_id).where(facts.c.patient_id == PATIENTS.c.id).exists()


def fact_patients(criterion: Criterion, context: CompileContext) -> Select[tuple[str]]:
    """The patients with a fact matching a leaf criterion about clinical data or messages."""
    match criterion:
        case ConditionCriterion():
            spec = criterion.condition
            table = table_of(ClinicalCondition)
            where = [_codes(table.c.codes, code_tokens(spec.code))]
            if spec.clinical_status is not None:
                where.append(table.c.status.in_(spec.clinical_status))
            if spec.onset_within is not None:
                where.append(_in_window(table.c.onset_at, spec.onset_within, context))
            return _patients(table, where, context)
        case ObservationCriterion():
            return _observation(criterion, context)
        case MedicationCriterion():
            medication = criterion.medication
            table = table_of(ClinicalMedication)
            where = []
            if medication.code is not None:
                where.append(_codes(table.c.codes, code_tokens(medication.code)))
            if medication.status is not None:
                where.append(table.c.status.in_(medication.status))
            if medication.authored_within is not None:
                where.append(_in_window(table.c.authored_at, medication.authored_within, context))
            return _patients(table, where, context)
        case ProcedureCriterion():
            procedure = criterion.procedure
            table = table_of(ClinicalProcedure)
            where = [_codes(table.c.codes, code_tokens(procedure.code))]
            if procedure.within is not None:
                where.append(_in_window(table.c.performed_at, procedure.within, context))
            return _patients(table, where, context)
        case AllergyCriterion():
            allergy = criterion.allergy
            table = table_of(ClinicalAllergy)
            where = []
            if allergy.code is not None:
                where.append(_codes(table.c.codes, code_tokens(allergy.code)))
            if allergy.clinical_status is not None:
                where.append(table.c.status.in_(allergy.clinical_status))
            return _patients(table, where, context)
        case ImmunizationCriterion():
            immunization = criterion.immunization
            table = table_of(ClinicalImmunization)
            where = [_codes(table.c.codes, code_tokens(immunization.code))]
            if immunization.within is not None:
                where.append(_in_window(table.c.occurred_at, immunization.within, context))
            return _patients(table, where, context)
        case EncounterCriterion():
            return _encounter(criterion, context)
        case AppointmentCriterion():
            return _appointment(criterion, context)
        case EngagementCriterion():
            return _engagement(criterion, context)
        case ConsentCriterion():
            return _consent(criterion, context)
        case RiskCriterion():
            return _risk(criterion, context)
    raise TypeError(f"not a fact criterion: {criterion!r}")


# --- comparisons ------------------------------------------------------------------------------------


def compare(
    value: ColumnElement[object],
    comparison: Comparison,
    *,
    text_value: ColumnElement[object] | None = None,
    lower: bool = False,
) -> ColumnElement[bool]:
    """Every comparison of `comparison` on a value: numbers against `value`, strings against
    `text_value` (default: `value`), lower-cased when `lower`."""
    text_side = value if text_value is None else text_value
    parts: list[ColumnElement[bool]] = []
    for operator, operand in comparison.operators():
        if operator == "in":
            parts.append(or_(*(_equal(value, text_side, item, lower) for item in operand)))
        elif operator == "eq":
            parts.append(_equal(value, text_side, operand, lower))
        elif operator == "ne":
            parts.append(not_(_equal(value, text_side, operand, lower)))
        elif operator == "gt":
            parts.append(value > operand)
        elif operator == "gte":
            parts.append(value >= operand)
        elif operator == "lt":
            parts.append(value < operand)
        else:
            parts.append(value <= operand)
    return and_(*parts)


def _equal(
    value: ColumnElement[object], text_value: ColumnElement[object], operand: object, lower: bool
) -> ColumnElement[bool]:
    if isinstance(operand, int | float) and not isinstance(operand, bool):
        return value == operand
    operand_text = str(operand).lower() if lower else str(operand)
    return text_value == operand_text


def _known(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    """A missing value makes the criterion false (not unknown), so `not` reads naturally."""
    return func.coalesce(condition, false())


# --- building blocks --------------------------------------------------------------------------------


def _codes(column: Column[list[str]], tokens: list[str]) -> ColumnElement[bool]:
    # The codes are written into the statement rather than bound: each code list then has a plan of
    # its own (how many rows a code matches varies by orders of magnitude), and the planner can use a
    # partial index made for a value set (`ix_clinical_observations_latest_*`) even once the driver
    # has prepared the statement.
    codes = bindparam(None, tokens, type_=ARRAY(String), literal_execute=True)
    return column.op("&&")(cast(codes, ARRAY(String)))


def _in_window(column: Column[datetime], window: timedelta, context: CompileContext) -> ColumnElement[bool]:
    return and_(column > context.since(window), column <= context.now())


def _patients(table: Table, where: list[ColumnElement[bool]], context: CompileContext) -> Select[tuple[str]]:
    query = select(table.c.patient_id).where(*where)
    if context.patient_id is not None:
        query = query.where(table.c.patient_id == context.patient_id)
    return query


def _observation(criterion: ObservationCriterion, context: CompileContext) -> Select[tuple[str]]:
    spec = criterion.observation
    table = table_of(ClinicalObservation)
    where = [_codes(table.c.codes, code_tokens(spec.code))]
    if spec.within is not None:
        where.append(_in_window(table.c.effective_at, spec.within, context))
    else:
        where.append(or_(table.c.effective_at.is_(None), table.c.effective_at <= context.now()))
    matches: ColumnElement[bool] = true()
    if spec.value is not None:
        text_value = func.coalesce(
            func.nullif(func.split_part(table.c.value_code, "|", 2), ""), table.c.value_text
        )
        matches = compare(table.c.value_number, spec.value, text_value=text_value)
    if not spec.latest:
        return _patients(table, [*where, matches], context)
    # The latest row per patient carries only whether it matches, so the sort stays narrow.
    latest = (
        _patients(table, where, context)
        .add_columns(matches.label("matches"))
        .distinct(table.c.patient_id)
        .order_by(table.c.patient_id, table.c.effective_at.desc().nulls_last(), table.c.resource_id)
        .subquery("latest")
    )
    return select(latest.c.patient_id).where(latest.c.matches)


def _encounter(criterion: EncounterCriterion, context: CompileContext) -> Select[tuple[str]]:
    spec = criterion.encounter
    table = table_of(ClinicalEncounter)
    where: list[ColumnElement[bool]] = []
    if spec.class_ is not None:
        where.append(table.c.class_code.in_(spec.class_))
    if spec.discharged_within is not None:
        where.append(_in_window(table.c.end_at, spec.discharged_within, context))
    if spec.started_within is not None:
        where.append(_in_window(table.c.start_at, spec.started_within, context))
    if spec.diagnosis is not None:
        tokens = code_tokens(spec.diagnosis)
        where.append(or_(_codes(table.c.diagnosis_codes, tokens), _codes(table.c.reason_codes, tokens)))
    return _patients(table, where, context)


def _appointment(criterion: AppointmentCriterion, context: CompileContext) -> Select[tuple[str]]:
    spec = criterion.appointment
    table = table_of(ClinicalAppointment)
    where: list[ColumnElement[bool]] = []
    if spec.upcoming_within is not None:
        ahead = literal(context.as_of + spec.upcoming_within, DateTime(timezone=True))
        where += [
            table.c.status.in_(UPCOMING_STATUSES),
            table.c.start_at > context.now(),
            table.c.start_at <= ahead,
        ]
    elif spec.missed_within is not None:
        where += [
            table.c.status.in_(MISSED_STATUSES),
            _in_window(table.c.start_at, spec.missed_within, context),
        ]
    if spec.code is not None:
        where.append(_codes(table.c.codes, code_tokens(spec.code)))
    return _patients(table, where, context)


def _engagement(criterion: EngagementCriterion, context: CompileContext) -> Select[tuple[str]]:
    spec = criterion.engagement
    messages = table_of(Message)
    parts: list[Select[tuple[str]]] = []
    if spec.contacted_within is not None:
        parts.append(
            _patients(messages, [_in_window(messages.c.sent_at, spec.contacted_within, context)], context)
        )
    if spec.opened_within is not None:
        parts.append(
            _patients(messages, [_in_window(messages.c.opened_at, spec.opened_within, context)], context)
        )
    if spec.replied_within is not None:
        inbound = table_of(InboundMessage)
        window = _in_window(inbound.c.received_at, spec.replied_within, context)
        parts.append(_patients(inbound, [window, inbound.c.patient_id.is_not(None)], context))
    query, patient = parts[0], parts[0].selected_columns[0]
    for part in parts[1:]:
        query = query.where(patient.in_(part))
    return query


def _consent(criterion: ConsentCriterion, context: CompileContext) -> Select[tuple[str]]:
    spec = criterion.consent
    table = table_of(ConsentEvent)
    purposes = (spec.purpose, "*") if spec.purpose != "*" else ("*",)
    latest = (
        _patients(
            table,
            [
                table.c.channel.in_((spec.channel, "*")),
                table.c.purpose.in_(purposes),
                table.c.recorded_at <= context.now(),
            ],
            context,
        )
        .add_columns(table.c.status)
        .distinct(table.c.patient_id)
        .order_by(table.c.patient_id, table.c.recorded_at.desc(), table.c.id.desc())
        .subquery("latest_consent")
    )
    return select(latest.c.patient_id).where(latest.c.status == spec.status)


def _risk(criterion: RiskCriterion, context: CompileContext) -> Select[tuple[str]]:
    spec = criterion.risk
    table = table_of(RiskScore)
    where = [table.c.score == spec.score, table.c.discharged_at <= context.now()]
    if spec.discharged_within is not None:
        where.append(_in_window(table.c.discharged_at, spec.discharged_within, context))
    latest = (
        _patients(table, where, context)
        .add_columns(compare(table.c.value, spec).label("matches"))
        .distinct(table.c.patient_id)
        .order_by(table.c.patient_id, table.c.discharged_at.desc(), table.c.encounter_id)
        .subquery("latest_risk")
    )
    return select(latest.c.patient_id).where(latest.c.matches)


def _segment(key: str, context: CompileContext) -> ColumnElement[bool]:
    if key in context.visiting:
        chain = " → ".join((*context.visiting, key))
        raise SegmentReferenceError(f"segments refer to each other: {chain}")
    definition = context.segments.get(key)
    if definition is None:
        raise SegmentReferenceError(f"there is no segment {key!r}")
    return segment_condition(definition, context)
