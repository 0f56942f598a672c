"""Required bindings (from HL7's R4 definitions), the Quantity invariants, and references inside a
Bundle: every HL7 example and Synthea bundle passes, and each mutated copy fails naming its element."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from aftercare.fhir.binding_table import TABLE_PATH, build_table, render
from aftercare.fhir.bundles import entries_of
from aftercare.fhir.conformance import bundle_problems, required_codes, unresolved_references
from aftercare.fhir.resources import validation_problems
from tests.conftest import FHIR_EXAMPLES, REPO, SYNTHEA_BUNDLES, synthea_bundle

R4_DEFINITIONS = REPO / "tools" / "fhir-r4" / "node_modules" / "hl7.fhir.r4.examples"
R4_EXAMPLES = sorted((FHIR_EXAMPLES / "r4").glob("*.json"))
VS = "http://hl7.org/fhir/ValueSet/"


def example(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FHIR_EXAMPLES / "r4" / name).read_text())
    return document


def problems_of(document: dict[str, Any]) -> list[tuple[str, str]]:
    """What the API checks: a Bundle's own codes and each entry's resource; a resource alone."""
    if document.get("resourceType") != "Bundle":
        return validation_problems(document)
    found = bundle_problems(document)
    for entry in document.get("entry") or []:
        if "resource" in entry:
            found += validation_problems(entry["resource"])
    return found


def test_the_checked_in_table_is_what_hl7s_r4_definitions_give() -> None:
    assert (R4_DEFINITIONS / "package.json").exists(), "run `make install-test` (npm ci in tools/fhir-r4)"
    assert render(build_table(R4_DEFINITIONS)) == TABLE_PATH.read_text("utf-8")


@pytest.mark.parametrize(
    ("value_set", "codes"),
    [
        ("observation-status", {"registered", "preliminary", "final", "amended", "corrected", "cancelled"}),
        ("encounter-status", {"planned", "arrived", "in-progress", "finished", "cancelled", "unknown"}),
        ("bundle-type", {"transaction", "batch", "collection", "searchset", "history", "document"}),
        ("administrative-gender", {"male", "female", "other", "unknown"}),
        ("appointmentstatus", {"proposed", "booked", "fulfilled", "noshow", "cancelled", "waitlist"}),
        ("medicationrequest-status", {"active", "on-hold", "completed", "stopped", "draft"}),
        ("medicationrequest-intent", {"proposal", "plan", "order", "original-order", "option"}),
    ],
)
def test_the_required_value_sets_of_the_brief_hold_the_r4_codes(value_set: str, codes: set[str]) -> None:
    found = {code for listed in required_codes(VS + value_set).values() for code in listed}
    assert codes <= found
    assert "done" not in found


@pytest.mark.parametrize("path", R4_EXAMPLES, ids=lambda path: path.name)
def test_every_hl7_r4_example_in_shared_data_passes(path: Any) -> None:
    document = json.loads(path.read_text())
    assert problems_of(document) == []


def test_every_resource_of_every_synthea_bundle_passes_with_its_references_resolved() -> None:
    for path in sorted(SYNTHEA_BUNDLES.glob("*.json")):
        document = json.loads(path.read_text())
        assert bundle_problems(document) == [], path.name
        for entry in entries_of(document):
            assert validation_problems(entry.resource) == [], (path.name, entry.location)
            assert unresolved_references(entry.resource) == [], (path.name, entry.location)


def _set(path: list[Any], value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(document: dict[str, Any]) -> None:
        node = document
        for key in path[:-1]:
            node = node[key]
        if value is None:
            del node[path[-1]]
        else:
            node[path[-1]] = value

    return mutate


MUTATIONS = [
    ("Observation-example.json", ["status"], "done", "Observation.status"),
    (
        "Observation-example.json",
        ["valueQuantity", "comparator"],
        "~",
        "Observation.valueQuantity.comparator",
    ),
    ("Observation-example.json", ["valueQuantity", "system"], None, "Observation.valueQuantity.system"),
    ("Observation-example.json", ["valueQuantity", "code"], None, "Observation.valueQuantity.code"),
    (
        "Observation-blood-pressure.json",
        ["component", 1, "valueQuantity", "code"],
        None,
        "Observation.component[1].valueQuantity.code",
    ),
    ("Observation-glasgow.json", ["status"], "FINAL", "Observation.status"),
    ("Encounter-example.json", ["status"], "discharged", "Encounter.status"),
    ("Encounter-f001.json", ["status"], "completed", "Encounter.status"),
    ("Encounter-home.json", ["text", "status"], "done", "Encounter.text.status"),
    ("Patient-example.json", ["gender"], "M", "Patient.gender"),
    ("Patient-example.json", ["telecom", 1, "system"], "mobile", "Patient.telecom[1].system"),
    ("Patient-example.json", ["name", 0, "use"], "legal", "Patient.name[0].use"),
    ("Appointment-example.json", ["status"], "confirmed", "Appointment.status"),
    ("Appointment-example.json", ["participant", 0, "status"], "yes", "Appointment.participant[0].status"),
    ("Communication-example.json", ["status"], "sent", "Communication.status"),
    ("CommunicationRequest-example.json", ["status"], "open", "CommunicationRequest.status"),
    ("Bundle-bundle-transaction.json", ["type"], "txn", "Bundle.type"),
    (
        "Bundle-bundle-transaction.json",
        ["entry", 0, "request", "method"],
        "FETCH",
        "Bundle.entry[0].request.method",
    ),
    ("Bundle-bundle-response.json", ["type"], "transaction_response", "Bundle.type"),
]


@pytest.mark.parametrize(
    ("name", "path", "value", "element"), MUTATIONS, ids=[f"{m[0]}:{m[3]}" for m in MUTATIONS]
)
def test_a_mutated_hl7_example_fails_naming_its_element(
    name: str, path: list[Any], value: Any, element: str
) -> None:
    document = example(name)
    assert problems_of(document) == []
    _set(path, value)(document)
    assert [found for found, _ in problems_of(document)] == [element]


def test_a_bad_code_says_which_value_set_it_is_not_in() -> None:
    observation = example("Observation-example.json") | {"status": "done"}
    [(_, reason)] = validation_problems(observation)
    assert f"{VS}observation-status" in reason
    assert "corrected" in reason


def test_medication_request_status_and_intent_are_checked() -> None:
    bundle = synthea_bundle()
    request = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "MedicationRequest"
    )
    assert validation_problems(request) == []
    bad = copy.deepcopy(request) | {"status": "filled", "intent": "prescription"}
    assert {path for path, _ in validation_problems(bad)} == {
        "MedicationRequest.status",
        "MedicationRequest.intent",
    }


def test_a_coding_from_the_value_sets_system_must_hold_one_of_its_codes() -> None:
    encounter = example("Encounter-example.json")
    encounter["statusHistory"] = [{"status": "arrived", "period": {"start": "2020-01-01"}}]
    assert validation_problems(encounter) == []
    unknown_system = copy.deepcopy(encounter)
    unknown_system["extension"] = [
        {"url": "http://example.org/x", "valueCoding": {"system": "http://example.org/cs", "code": "zz"}}
    ]
    assert validation_problems(unknown_system) == []


def test_references_to_no_entry_of_a_transaction_or_no_contained_resource_are_named() -> None:
    bundle = synthea_bundle()
    broken = copy.deepcopy(bundle)
    observation = next(e for e in broken["entry"] if e["resource"]["resourceType"] == "Observation")
    observation["resource"]["subject"]["reference"] = "urn:uuid:00000000-0000-0000-0000-000000000000"
    problems = [
        (entry.location, path)
        for entry in entries_of(broken)
        for path, _ in unresolved_references(entry.resource)
    ]
    assert problems == [
        (f"Bundle.entry[{broken['entry'].index(observation)}]", "Observation.subject.reference")
    ]

    contained = example("Observation-example.json") | {"performer": [{"reference": "#nobody"}]}
    assert unresolved_references(contained) == [
        ("Observation.performer[0].reference", "the reference #nobody is to no contained resource")
    ]
