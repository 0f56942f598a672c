"""Reading Bundles and NDJSON: Synthea's `urn:uuid:` references resolve to `Type/id`."""

from __future__ import annotations

import json

import pytest

from aftercare.fhir.bundles import BundleError, entries_of, parse_ndjson
from aftercare.fhir.references import patient_id_of, reference_target
from tests.conftest import ABDUL_PATIENT_ID, FHIR_EXAMPLES, SYNTHEA_BULK, synthea_bundle


def test_synthea_references_resolve_to_the_resources_ids() -> None:
    entries = entries_of(synthea_bundle())
    observations = [e.resource for e in entries if e.resource["resourceType"] == "Observation"]
    assert observations
    assert all(o["subject"]["reference"] == f"Patient/{ABDUL_PATIENT_ID}" for o in observations)
    assert all(patient_id_of(o) == ABDUL_PATIENT_ID for o in observations)
    encounter_refs = {o["encounter"]["reference"] for o in observations}
    assert all(ref.startswith("Encounter/") for ref in encounter_refs)


def test_every_resource_of_a_bulk_export_is_read_with_its_line() -> None:
    text = (SYNTHEA_BULK / "Patient.000.ndjson").read_text()
    entries = parse_ndjson(text)
    assert len(entries) == len([line for line in text.splitlines() if line.strip()])
    assert entries[0].location == "line 1"


def test_a_broken_ndjson_line_is_named() -> None:
    with pytest.raises(BundleError, match="line 2"):
        parse_ndjson('{"resourceType": "Patient", "id": "a"}\n{not json\n')


def test_delete_entries_are_refused_rather_than_ignored() -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"request": {"method": "DELETE", "url": "Patient/1"}}],
    }
    with pytest.raises(BundleError, match="DELETE"):
        entries_of(bundle)


def test_a_single_resource_is_one_entry() -> None:
    resource = json.loads('{"resourceType": "Patient", "id": "p1"}')
    assert [e.resource for e in entries_of(resource)] == [resource]


@pytest.mark.parametrize(
    ("reference", "target"),
    [
        ("Patient/1", ("Patient", "1")),
        ("https://x.org/fhir/Patient/1", ("Patient", "1")),
        ("Patient/1/_history/3", ("Patient", "1")),
        ("#contained", None),
        ("urn:uuid:abc", None),
    ],
)
def test_literal_references_are_read(reference: str, target: tuple[str, str] | None) -> None:
    assert reference_target(reference) == target


def test_an_appointment_names_its_patient_through_a_participant() -> None:
    appointment = json.loads((FHIR_EXAMPLES / "r4" / "Appointment-example.json").read_text())
    assert patient_id_of(appointment) == "example"
