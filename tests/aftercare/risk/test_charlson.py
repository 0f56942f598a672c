"""The Charlson index: ICD-10 codes by Quan 2005's algorithm, SNOMED CT codes by the value-set file,
Charlson's weights, and the heavier of each pair counting alone."""

from __future__ import annotations

import json

import pytest

from aftercare.risk.charlson import (
    QUAN_2005_ICD10,
    SNOMED_VALUE_SET,
    Condition,
    category_of,
    charlson_index,
    expand,
    snomed_categories,
)

ICD10 = "http://hl7.org/fhir/sid/icd-10"
ICD10_CM = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"


def test_ranges_expand_to_every_prefix_in_them() -> None:
    assert expand("I42.5-I42.9") == ["I425", "I426", "I427", "I428", "I429"]
    assert expand("F00-F03") == ["F00", "F01", "F02", "F03"]
    assert expand("I25.2") == ["I252"]


@pytest.mark.parametrize(
    ("code", "category"),
    [
        ("I21.4", "myocardial_infarction"),
        ("I25.2", "myocardial_infarction"),
        ("I25.1", None),  # atherosclerotic heart disease is not a Charlson condition
        ("I50.9", "congestive_heart_failure"),
        ("I42.4", None),
        ("I42.5", "congestive_heart_failure"),
        ("I69.3", "cerebrovascular_disease"),
        ("J44.1", "chronic_pulmonary_disease"),
        ("J48", None),
        ("E11.9", "diabetes_without_complication"),
        ("E11.65", "diabetes_without_complication"),  # ICD-10-CM, longer than Quan's 4 characters
        ("E11.22", "diabetes_with_complication"),
        ("N18.3", "renal_disease"),
        ("C34.1", "any_malignancy"),
        ("C44.9", None),  # malignant neoplasm of skin other than melanoma is left out
        ("C78.0", "metastatic_solid_tumor"),
        ("K70.4", "moderate_or_severe_liver_disease"),
        ("K70.3", "mild_liver_disease"),
        ("B20", "aids_hiv"),
        ("B23", None),
    ],
)
def test_icd10_codes_fall_in_quan_2005_categories(code: str, category: str | None) -> None:
    assert category_of(f"{ICD10}|{code}") == category
    assert category_of(f"{ICD10_CM}|{code.replace('.', '')}") == category


def test_every_snomed_concept_sits_in_the_category_of_its_icd10_code() -> None:
    document = json.loads(SNOMED_VALUE_SET.read_text())
    assert "Quan" in document["source"]
    assert "Med Care 2005" in document["source"]
    for category, concepts in document["categories"].items():
        for concept in concepts:
            assert category_of(f"{ICD10}|{concept['icd10']}") == category, concept
            assert category_of(f"{SNOMED}|{concept['code']}") == category
    assert len(snomed_categories()) >= 40


def test_codes_of_other_systems_are_not_read() -> None:
    assert category_of("http://loinc.org|22298006") is None
    assert category_of("|I21.0") is None


def test_weights_sum_once_per_category() -> None:
    index = charlson_index(
        [
            Condition("Condition/mi", (f"{SNOMED}|22298006",)),
            Condition("Condition/mi-again", (f"{ICD10}|I21.9",)),
            Condition("Condition/ckd", (f"{ICD10}|N18.4",)),
            Condition("Condition/hiv", (f"{SNOMED}|86406008",)),
            Condition("Condition/flu", (f"{ICD10}|J10.1",)),
        ]
    )
    assert index.score == 1 + 2 + 6
    assert index.categories == {
        "aids_hiv": ["Condition/hiv"],
        "myocardial_infarction": ["Condition/mi", "Condition/mi-again"],
        "renal_disease": ["Condition/ckd"],
    }
    assert index.basis == ["Condition/hiv", "Condition/mi", "Condition/mi-again", "Condition/ckd"]


@pytest.mark.parametrize(
    ("lighter", "heavier", "score"),
    [
        ("E11.9", "E11.2", 2),
        ("K70.3", "K70.4", 3),
        ("C34.1", "C78.0", 6),
    ],
)
def test_only_the_heavier_of_a_pair_counts(lighter: str, heavier: str, score: int) -> None:
    index = charlson_index(
        [Condition("Condition/a", (f"{ICD10}|{lighter}",)), Condition("Condition/b", (f"{ICD10}|{heavier}",))]
    )
    assert index.score == score
    assert index.basis == ["Condition/b"]


def test_every_category_has_charlsons_weight() -> None:
    weights = {category: weight for category, (weight, _) in QUAN_2005_ICD10.items()}
    assert sorted(weights.values()) == [1] * 10 + [2] * 4 + [3] + [6] * 2
    assert weights["metastatic_solid_tumor"] == weights["aids_hiv"] == 6
