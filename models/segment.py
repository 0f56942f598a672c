"""Segment definitions (contract §5): a tree of `all` / `any` / `not` over criteria about patients.

A definition is data: `aftercare/segments/compiler.py` turns it into one SQL query. Every criterion is
a single-key mapping (`age: {gte: 18}`), told apart by that key, so an error names its path
(`criteria.all.1.observation.value`). Relative windows (`within: P30D`) count back from the
evaluation time (`as_of`, now by default).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    model_validator,
)

from models.base import DefinitionModel, OwnerFacility
from models.durations import IsoDuration
from models.journey import EventType
from models.value_sets import VALUE_SETS

SegmentKey = Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]+$", min_length=1, max_length=64)]
Scalar = str | int | float
CodeText = Annotated[str, StringConstraints(min_length=1, max_length=200)]


# --- values -----------------------------------------------------------------------------------------


class Comparison(DefinitionModel):
    """One or more comparisons, all of which must hold (`{gte: 18, lt: 65}`)."""

    eq: Scalar | None = None
    ne: Scalar | None = None
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None
    in_: list[Scalar] | None = Field(default=None, alias="in", min_length=1)

    model_config = ConfigDict(populate_by_name=True)

    @model_validator(mode="after")
    def _some(self) -> Comparison:
        if not self.operators():
            raise ValueError("a comparison needs at least one of eq, ne, gt, gte, lt, lte, in")
        return self

    def operators(self) -> list[tuple[str, Any]]:
        """The comparisons given, as (operator, operand)."""
        names = ("eq", "ne", "gt", "gte", "lt", "lte", "in_")
        return [(name.rstrip("_"), getattr(self, name)) for name in names if getattr(self, name) is not None]


class Coding(DefinitionModel):
    """A code in a code system (`{system: http://loinc.org, code: 4548-4}`)."""

    system: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    code: CodeText

    def token(self) -> str:
        """The `system|code` token the clinical tables index."""
        return f"{self.system}|{self.code}"


class ValueSetRef(DefinitionModel):
    """A named value set shipped with Aftercare (`models/value_sets.py`)."""

    value_set: Annotated[str, StringConstraints(min_length=1, max_length=64)]

    @model_validator(mode="after")
    def _known(self) -> ValueSetRef:
        if self.value_set not in VALUE_SETS:
            known = ", ".join(sorted(VALUE_SETS))
            raise ValueError(f"unknown value set {self.value_set!r}; known: {known}")
        return self


def _codes_kind(value: Any) -> str | None:
    if isinstance(value, ValueSetRef) or (isinstance(value, dict) and "value_set" in value):
        return "value_set"
    if isinstance(value, Coding | dict):
        return "coding"
    if isinstance(value, list):
        return "codings"
    return None


Codes = Annotated[
    Annotated[ValueSetRef, Tag("value_set")]
    | Annotated[Coding, Tag("coding")]
    | Annotated[list[Coding], Tag("codings"), Field(min_length=1)],
    Discriminator(
        _codes_kind,
        custom_error_type="codes",
        custom_error_message="codes are {system, code}, a list of them, or {value_set: name}",
    ),
]


def code_tokens(codes: Codes) -> list[str]:
    """The `system|code` tokens of a code, a list of codes or a value set."""
    if isinstance(codes, ValueSetRef):
        return [coding.token() for coding in VALUE_SETS[codes.value_set].codes]
    if isinstance(codes, Coding):
        return [codes.token()]
    return [coding.token() for coding in codes]


def describe_codes(codes: Codes) -> str:
    """A code, codes or value set in words."""
    if isinstance(codes, ValueSetRef):
        return VALUE_SETS[codes.value_set].name
    listed = [codes] if isinstance(codes, Coding) else codes
    return " or ".join(coding.code for coding in listed)


Token = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]+$", max_length=32)]
Statuses = Annotated[
    list[Token],
    BeforeValidator(lambda value: [value] if isinstance(value, str) else value),
    Field(min_length=1),
]
"""One status (or class) or a list of them."""


# --- criteria about facts ---------------------------------------------------------------------------


class ConditionSpec(DefinitionModel):
    """A `Condition` with one of these codes (and clinical status, and onset within a window)."""

    code: Codes
    clinical_status: Statuses | None = None
    onset_within: IsoDuration | None = None


class ObservationSpec(DefinitionModel):
    """The latest observation of a code within the look-back window, compared by value."""

    code: Codes
    latest: bool = True
    value: Comparison | None = None
    within: IsoDuration | None = None


class MedicationSpec(DefinitionModel):
    """A medication request (active by default), optionally of a code and authored within a window."""

    code: Codes | None = None
    status: Statuses | None = ["active"]
    authored_within: IsoDuration | None = None


class ProcedureSpec(DefinitionModel):
    """A procedure of a code, optionally performed within a window."""

    code: Codes
    within: IsoDuration | None = None


class AllergySpec(DefinitionModel):
    """An allergy or intolerance (any code when none is given), of a clinical status."""

    code: Codes | None = None
    clinical_status: Statuses | None = ["active"]


class ImmunizationSpec(DefinitionModel):
    """An immunization with a vaccine code, optionally within a window."""

    code: Codes
    within: IsoDuration | None = None


class EncounterSpec(DefinitionModel):
    """An encounter of a class, discharged (ended) or started within a window, with a diagnosis."""

    class_: Statuses | None = Field(default=None, alias="class")
    discharged_within: IsoDuration | None = None
    started_within: IsoDuration | None = None
    diagnosis: Codes | None = None

    model_config = ConfigDict(populate_by_name=True)


class AppointmentSpec(DefinitionModel):
    """An appointment coming within a window (booked or pending) or missed within one (no-show)."""

    upcoming_within: IsoDuration | None = None
    missed_within: IsoDuration | None = None
    code: Codes | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> AppointmentSpec:
        if (self.upcoming_within is None) == (self.missed_within is None):
            raise ValueError("an appointment criterion needs exactly one of upcoming_within, missed_within")
        return self


class EngagementSpec(DefinitionModel):
    """Messages sent to, replied by or opened by the patient within windows (all given must hold)."""

    contacted_within: IsoDuration | None = None
    replied_within: IsoDuration | None = None
    opened_within: IsoDuration | None = None

    @model_validator(mode="after")
    def _some(self) -> EngagementSpec:
        if self.contacted_within is None and self.replied_within is None and self.opened_within is None:
            raise ValueError("engagement needs contacted_within, replied_within or opened_within")
        return self


class ConsentSpec(DefinitionModel):
    """The latest consent covering a channel and purpose is `granted` or `revoked`."""

    channel: Literal["sms", "email", "letter", "push"]
    purpose: Annotated[str, StringConstraints(pattern=r"^[a-z_*]+$", max_length=32)] = "*"
    status: Literal["granted", "revoked"]


class RiskSpec(Comparison):
    """The readmission risk score of the patient's latest scored discharge (up to the evaluation time,
    and within `discharged_within` when given) compares so (`{score: lace, gte: 10}`)."""

    score: Literal["lace", "hospital"] = "lace"
    discharged_within: IsoDuration | None = None


# --- the tree ---------------------------------------------------------------------------------------


class AgeCriterion(DefinitionModel):
    """Age in whole years at the evaluation time."""

    age: Comparison


class GenderCriterion(DefinitionModel):
    """Administrative gender (`female`, `male`, `other`, `unknown`)."""

    gender: Comparison


class LanguageCriterion(DefinitionModel):
    """Preferred language (`en`, `es`, ...)."""

    language: Comparison


class PostalCodeCriterion(DefinitionModel):
    """Postal code of the home address."""

    postal_code: Comparison


class ConditionCriterion(DefinitionModel):
    """Has a condition."""

    condition: ConditionSpec


class ObservationCriterion(DefinitionModel):
    """Latest observation of a code."""

    observation: ObservationSpec


class MedicationCriterion(DefinitionModel):
    """Has a medication request."""

    medication: MedicationSpec


class ProcedureCriterion(DefinitionModel):
    """Had a procedure."""

    procedure: ProcedureSpec


class AllergyCriterion(DefinitionModel):
    """Has an allergy."""

    allergy: AllergySpec


class ImmunizationCriterion(DefinitionModel):
    """Was immunized."""

    immunization: ImmunizationSpec


class EncounterCriterion(DefinitionModel):
    """Had an encounter."""

    encounter: EncounterSpec


class AppointmentCriterion(DefinitionModel):
    """Has an upcoming or missed appointment."""

    appointment: AppointmentSpec


class EngagementCriterion(DefinitionModel):
    """Was contacted, replied or opened a message."""

    engagement: EngagementSpec


class ConsentCriterion(DefinitionModel):
    """Consent state for a channel and purpose."""

    consent: ConsentSpec


class RiskCriterion(DefinitionModel):
    """Readmission risk of the latest discharge (`aftercare/risk`)."""

    risk: RiskSpec


class SegmentCriterion(DefinitionModel):
    """Is a member of another segment (its latest version, evaluated at the same time)."""

    segment: SegmentKey


class AllCriterion(DefinitionModel):
    """Every one of these holds."""

    all: Annotated[list[Criterion], Field(min_length=1)]


class AnyCriterion(DefinitionModel):
    """At least one of these holds."""

    any: Annotated[list[Criterion], Field(min_length=1)]


class NotCriterion(DefinitionModel):
    """This does not hold."""

    not_: Criterion = Field(alias="not")

    model_config = ConfigDict(populate_by_name=True)


CRITERION_TYPES: dict[str, type[DefinitionModel]] = {
    "all": AllCriterion,
    "any": AnyCriterion,
    "not": NotCriterion,
    "age": AgeCriterion,
    "gender": GenderCriterion,
    "language": LanguageCriterion,
    "postal_code": PostalCodeCriterion,
    "condition": ConditionCriterion,
    "observation": ObservationCriterion,
    "medication": MedicationCriterion,
    "procedure": ProcedureCriterion,
    "allergy": AllergyCriterion,
    "immunization": ImmunizationCriterion,
    "encounter": EncounterCriterion,
    "appointment": AppointmentCriterion,
    "engagement": EngagementCriterion,
    "consent": ConsentCriterion,
    "risk": RiskCriterion,
    "segment": SegmentCriterion,
}
CRITERION_KINDS: tuple[str, ...] = tuple(CRITERION_TYPES)


def criterion_kind(value: Any) -> str | None:
    """The kind of a criterion: its single key (or its model's)."""
    if isinstance(value, DefinitionModel):
        return next((kind for kind, model in CRITERION_TYPES.items() if isinstance(value, model)), None)
    if isinstance(value, dict) and len(value) == 1:
        kind = next(iter(value))
        return kind if kind in CRITERION_TYPES else None
    return None


Criterion = Annotated[
    Annotated[AllCriterion, Tag("all")]
    | Annotated[AnyCriterion, Tag("any")]
    | Annotated[NotCriterion, Tag("not")]
    | Annotated[AgeCriterion, Tag("age")]
    | Annotated[GenderCriterion, Tag("gender")]
    | Annotated[LanguageCriterion, Tag("language")]
    | Annotated[PostalCodeCriterion, Tag("postal_code")]
    | Annotated[ConditionCriterion, Tag("condition")]
    | Annotated[ObservationCriterion, Tag("observation")]
    | Annotated[MedicationCriterion, Tag("medication")]
    | Annotated[ProcedureCriterion, Tag("procedure")]
    | Annotated[AllergyCriterion, Tag("allergy")]
    | Annotated[ImmunizationCriterion, Tag("immunization")]
    | Annotated[EncounterCriterion, Tag("encounter")]
    | Annotated[AppointmentCriterion, Tag("appointment")]
    | Annotated[EngagementCriterion, Tag("engagement")]
    | Annotated[ConsentCriterion, Tag("consent")]
    | Annotated[RiskCriterion, Tag("risk")]
    | Annotated[SegmentCriterion, Tag("segment")],
    Discriminator(
        criterion_kind,
        custom_error_type="criterion_kind",
        custom_error_message="a criterion is a mapping with exactly one of: " + ", ".join(CRITERION_KINDS),
    ),
]

AllCriterion.model_rebuild()
AnyCriterion.model_rebuild()
NotCriterion.model_rebuild()


def children(criterion: Criterion) -> list[tuple[str | int, Criterion]]:
    """The sub-criteria of a combinator with their path steps (none for a leaf)."""
    if isinstance(criterion, AllCriterion):
        return [(index, child) for index, child in enumerate(criterion.all)]
    if isinstance(criterion, AnyCriterion):
        return [(index, child) for index, child in enumerate(criterion.any)]
    if isinstance(criterion, NotCriterion):
        return [("not", criterion.not_)]
    return []


def referenced_segments(criterion: Criterion) -> set[str]:
    """The keys of the segments a criterion tree refers to."""
    if isinstance(criterion, SegmentCriterion):
        return {criterion.segment}
    found: set[str] = set()
    for _, child in children(criterion):
        found |= referenced_segments(child)
    return found


class SegmentDefinition(DefinitionModel):
    """A segment: who is in it, as a criteria tree."""

    key: SegmentKey
    version: int = Field(default=1, ge=1)
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    description: str | None = None
    facility: OwnerFacility = None
    include_deceased: bool = False
    refresh_every: IsoDuration | None = Field(
        default=None, description="how often the schedule refreshes membership (default: every pass)"
    )
    # Patient events (`POST /v1/triggers` types, `fhir.<type>` for FHIR changes) that refresh this
    # segment for the patient concerned at once, between scheduled refreshes.
    refresh_on: list[EventType] = Field(default=[], max_length=50)
    criteria: Criterion

    @model_validator(mode="after")
    def _not_itself(self) -> SegmentDefinition:
        if self.key in referenced_segments(self.criteria):
            raise ValueError(f"segment {self.key!r} refers to itself")
        return self

    def document(self) -> dict[str, Any]:
        """The definition as stored and served (aliases such as `not`, `in`, `class`)."""
        return self.model_dump(mode="json", exclude_none=True, by_alias=True)
