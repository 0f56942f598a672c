"""FHIRPath: syntax errors are caught at publish time; criteria and branches evaluate as FHIR expects."""

from __future__ import annotations

import pytest

from aftercare.fhir.fhirpath import FhirPathError, check_syntax, is_true

HBA1C = (
    "Observation.code.coding.where(system='http://loinc.org' and code='4548-4').exists() "
    "and Observation.valueQuantity.value > 9"
)


def observation(value: float) -> dict[str, object]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
        "valueQuantity": {"value": value, "unit": "%"},
    }


@pytest.mark.parametrize(("value", "expected"), [(9.4, True), (9.0, False), (6.1, False)])
def test_the_contract_criteria_select_high_hba1c(value: float, expected: bool) -> None:
    assert is_true(HBA1C, observation(value), {}) is expected


def test_choice_types_resolve_with_the_fhir_model() -> None:
    assert is_true("Observation.value.value > 9", observation(9.4), {})


def test_variables_are_available_with_a_percent_sign() -> None:
    event = {"type": "sms.reply", "data": {"body": "yes"}}
    assert is_true("%event.data.body.upper() = 'YES'", {}, {"event": event})


@pytest.mark.parametrize("expression", ["Observation.code.where(", "Observation..code", "1 +"])
def test_syntax_errors_name_the_column(expression: str) -> None:
    with pytest.raises(FhirPathError, match="column"):
        check_syntax(expression)


def test_several_values_where_one_boolean_is_expected_is_an_error() -> None:
    with pytest.raises(FhirPathError):
        is_true(
            "Observation.code.coding.code",
            {"resourceType": "Observation", "code": {"coding": [{"code": "a"}, {"code": "b"}]}},
            {},
        )
