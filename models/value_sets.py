"""Named value sets that segment criteria can use (`code: {value_set: diabetes}`).

Each is a small, explicit list of codings, checked against the Synthea sample where it has them.
"""

from __future__ import annotations

from dataclasses import dataclass

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
CVX = "http://hl7.org/fhir/sid/cvx"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


@dataclass(frozen=True)
class ValueCoding:
    """A coding of a value set."""

    system: str
    code: str

    def token(self) -> str:
        """The `system|code` token the clinical tables index."""
        return f"{self.system}|{self.code}"


@dataclass(frozen=True)
class ValueSet:
    """A named list of codings."""

    name: str
    codes: tuple[ValueCoding, ...]


def _set(name: str, system: str, *codes: str) -> ValueSet:
    return ValueSet(name, tuple(ValueCoding(system, code) for code in codes))


VALUE_SETS: dict[str, ValueSet] = {
    # Diabetes mellitus type 2 (SNOMED), and type 1 / unspecified.
    "diabetes": _set("diabetes", SNOMED, "44054006", "46635009", "73211009"),
    # Heart failure, chronic congestive heart failure.
    "heart-failure": _set("heart failure", SNOMED, "84114007", "88805009", "42343007"),
    # Chronic obstructive pulmonary disease, pulmonary emphysema, chronic obstructive bronchitis.
    "copd": _set("COPD", SNOMED, "13645005", "185086009", "87433001"),
    # Hypertension, essential hypertension.
    "hypertension": _set("hypertension", SNOMED, "59621000", "38341003"),
    # Seasonal influenza vaccines (CVX).
    "influenza-vaccine": _set(
        "influenza vaccine",
        CVX,
        "88",
        "140",
        "141",
        "150",
        "153",
        "155",
        "158",
        "161",
        "166",
        "168",
        "171",
        "185",
        "186",
        "197",
        "205",
    ),
    # Hemoglobin A1c / hemoglobin total in blood.
    "hba1c": _set("HbA1c", LOINC, "4548-4", "17856-6"),
    # Blood pressure panels and their components.
    "blood-pressure-panel": _set("blood pressure", LOINC, "85354-9", "55284-4"),
    "systolic-blood-pressure": _set("systolic blood pressure", LOINC, "8480-6"),
    "diastolic-blood-pressure": _set("diastolic blood pressure", LOINC, "8462-4"),
}


# Value sets of observations whose latest value segments compare (`latest: true`): each has a partial
# index over just its rows, in "latest first" order, so the latest per patient is read without a sort.
LATEST_OBSERVATION_VALUE_SETS = ("hba1c", "systolic-blood-pressure", "diastolic-blood-pressure")


def tokens_literal(name: str) -> str:
    """A value set's tokens as a PostgreSQL `varchar[]` literal, as segment queries write them."""
    quoted = ",".join('"' + coding.token().replace('"', '\\"') + '"' for coding in VALUE_SETS[name].codes)
    return "'{" + quoted + "}'::varchar[]"
