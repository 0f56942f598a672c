"""The Charlson comorbidity index of a patient's conditions.

ICD-10 codes (WHO ICD-10 and ICD-10-CM) are mapped with the coding algorithm of Quan H, Sundararajan V,
Halfon P, et al. "Coding algorithms for defining comorbidities in ICD-9-CM and ICD-10 administrative
data", Med Care 2005;43(11):1130-1139, Table 1 (Charlson, ICD-10 column): a code belongs to a category
when it starts with one of the category's codes (dots ignored, so `E11.22` is under `E11.2`). SNOMED CT
codes are mapped through `charlson_snomed.json` (its `source` says where its entries come from).

Weights are Charlson's original ones (Charlson ME et al., J Chronic Dis 1987;40:373-383). Within a pair
only the heavier category counts: diabetes with chronic complications over diabetes without, moderate or
severe liver disease over mild, metastatic solid tumour over any malignancy.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path

ICD10_SYSTEMS = frozenset({"http://hl7.org/fhir/sid/icd-10", "http://hl7.org/fhir/sid/icd-10-cm"})
SNOMED_SYSTEM = "http://snomed.info/sct"
SNOMED_VALUE_SET = Path(__file__).with_name("charlson_snomed.json")

# category → (weight, Quan 2005 ICD-10 codes; `A00-A03` is every 3-character code in that range and
# `A00.1-A00.4` every 4-character one).
QUAN_2005_ICD10: Mapping[str, tuple[int, tuple[str, ...]]] = {
    "myocardial_infarction": (1, ("I21", "I22", "I25.2")),
    "congestive_heart_failure": (
        1,
        ("I09.9", "I11.0", "I13.0", "I13.2", "I25.5", "I42.0", "I42.5-I42.9", "I43", "I50", "P29.0"),
    ),
    "peripheral_vascular_disease": (
        1,
        (
            "I70",
            "I71",
            "I73.1",
            "I73.8",
            "I73.9",
            "I77.1",
            "I79.0",
            "I79.2",
            "K55.1",
            "K55.8",
            "K55.9",
            "Z95.8",
            "Z95.9",
        ),
    ),
    "cerebrovascular_disease": (1, ("G45", "G46", "H34.0", "I60-I69")),
    "dementia": (1, ("F00-F03", "F05.1", "G30", "G31.1")),
    "chronic_pulmonary_disease": (
        1,
        ("I27.8", "I27.9", "J40-J47", "J60-J67", "J68.4", "J70.1", "J70.3"),
    ),
    "rheumatic_disease": (1, ("M05", "M06", "M31.5", "M32-M34", "M35.1", "M35.3", "M36.0")),
    "peptic_ulcer_disease": (1, ("K25-K28",)),
    "mild_liver_disease": (
        1,
        (
            "B18",
            "K70.0-K70.3",
            "K70.9",
            "K71.3-K71.5",
            "K71.7",
            "K73",
            "K74",
            "K76.0",
            "K76.2-K76.4",
            "K76.8",
            "K76.9",
            "Z94.4",
        ),
    ),
    "diabetes_without_complication": (
        1,
        tuple(f"{block}.{digit}" for block in ("E10", "E11", "E12", "E13", "E14") for digit in "01689"),
    ),
    "diabetes_with_complication": (
        2,
        tuple(
            code
            for block in ("E10", "E11", "E12", "E13", "E14")
            for code in (f"{block}.2-{block}.5", f"{block}.7")
        ),
    ),
    "hemiplegia_or_paraplegia": (
        2,
        ("G04.1", "G11.4", "G80.1", "G80.2", "G81", "G82", "G83.0-G83.4", "G83.9"),
    ),
    "renal_disease": (
        2,
        (
            "I12.0",
            "I13.1",
            "N03.2-N03.7",
            "N05.2-N05.7",
            "N18",
            "N19",
            "N25.0",
            "Z49.0-Z49.2",
            "Z94.0",
            "Z99.2",
        ),
    ),
    "any_malignancy": (
        2,
        ("C00-C26", "C30-C34", "C37-C41", "C43", "C45-C58", "C60-C76", "C81-C85", "C88", "C90-C97"),
    ),
    "moderate_or_severe_liver_disease": (
        3,
        (
            "I85.0",
            "I85.9",
            "I86.4",
            "I98.2",
            "K70.4",
            "K71.1",
            "K72.1",
            "K72.9",
            "K76.5",
            "K76.6",
            "K76.7",
        ),
    ),
    "metastatic_solid_tumor": (6, ("C77-C80",)),
    "aids_hiv": (6, ("B20-B22", "B24")),
}
# The lighter category of each pair does not count when the heavier one is present.
HIERARCHY: Mapping[str, str] = {
    "diabetes_without_complication": "diabetes_with_complication",
    "mild_liver_disease": "moderate_or_severe_liver_disease",
    "any_malignancy": "metastatic_solid_tumor",
}


def expand(code: str) -> list[str]:
    """The prefixes (without dots) a Quan code or range stands for: `I42.5-I42.9` → I425 … I429."""
    first, _, last = code.partition("-")
    first, last = first.replace(".", ""), (last or first).replace(".", "")
    if first == last:
        return [first]
    letter, width = first[0], len(first) - 1
    return [f"{letter}{number:0{width}d}" for number in range(int(first[1:]), int(last[1:]) + 1)]


@cache
def _icd10_prefixes() -> dict[str, str]:
    return {
        prefix: category
        for category, (_, codes) in QUAN_2005_ICD10.items()
        for code in codes
        for prefix in expand(code)
    }


@cache
def snomed_categories() -> dict[str, str]:
    """SNOMED CT code → Charlson category, from the value-set file."""
    document = json.loads(SNOMED_VALUE_SET.read_text())
    mapping: dict[str, str] = {}
    for category, concepts in document["categories"].items():
        if category not in QUAN_2005_ICD10:
            raise ValueError(f"{SNOMED_VALUE_SET.name}: unknown category {category!r}")
        for concept in concepts:
            mapping[concept["code"]] = category
    return mapping


@lru_cache(maxsize=65536)
def category_of(token: str) -> str | None:
    """The Charlson category of one `system|code` token, or None (remembered: patients share codes)."""
    system, _, code = token.partition("|")
    if system in ICD10_SYSTEMS:
        compact = code.replace(".", "").upper()
        prefixes = _icd10_prefixes()
        # The longest matching prefix wins (4 characters before 3).
        for length in (4, 3):
            category = prefixes.get(compact[:length])
            if category is not None and len(compact) >= length:
                return category
        return None
    if system == SNOMED_SYSTEM:
        return snomed_categories().get(code)
    return None


@dataclass(frozen=True)
class Condition:
    """A condition as the index reads it: its reference and its code tokens."""

    reference: str
    codes: tuple[str, ...]


@dataclass(frozen=True)
class CharlsonIndex:
    """The index, the categories that count and the conditions behind each."""

    score: int
    categories: dict[str, list[str]] = field(default_factory=dict)

    @property
    def basis(self) -> list[str]:
        """The references of every condition that counted, each once, in order."""
        return list(dict.fromkeys(ref for refs in self.categories.values() for ref in refs))


def charlson_index(conditions: Iterable[Condition]) -> CharlsonIndex:
    """The Charlson index of these conditions (each category counts once, with its weight)."""
    found: dict[str, list[str]] = {}
    for condition in conditions:
        for token in condition.codes:
            category = category_of(token)
            if category is not None and condition.reference not in found.setdefault(category, []):
                found[category].append(condition.reference)
    counted = {
        category: refs for category, refs in sorted(found.items()) if HIERARCHY.get(category) not in found
    }
    return CharlsonIndex(score=sum(QUAN_2005_ICD10[category][0] for category in counted), categories=counted)
