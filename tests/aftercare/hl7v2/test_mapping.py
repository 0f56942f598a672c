"""Each ADT event maps to valid FHIR R4 resources, as MAPPING.md tabulates; a malformed message is a
problem naming the field, with the acknowledgement code it deserves."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from aftercare.fhir.resources import validation_problems
from aftercare.hl7v2.mapping import MappedMessage, map_message
from aftercare.hl7v2.messages import V2Message, V2Problem
from tests.aftercare.hl7v2.samples import SAMPLES, sample

ZONE = ZoneInfo("America/New_York")
EVENTS = ["a01_admit", "a02_transfer", "a03_discharge", "a04_register", "a08_update",
          "a11_cancel_admit", "a13_cancel_discharge", "a40_merge"]  # fmt: skip


def mapped(name: str) -> MappedMessage:
    return map_message(V2Message(sample(name)), zone=ZONE)


@pytest.mark.parametrize("name", EVENTS)
def test_every_event_maps_to_valid_fhir_r4_resources(name: str) -> None:
    result = mapped(name)

    assert result.resources
    for resource in result.resources:
        assert validation_problems(resource) == [], resource["resourceType"]


def test_the_samples_cover_each_event_and_malformation() -> None:
    names = {path.stem for path in SAMPLES.glob("*.hl7")}

    assert set(EVENTS) <= names
    assert {name for name in names if name.startswith("malformed_")} >= {
        "malformed_missing_pid3",
        "malformed_bad_date",
        "malformed_wrong_delimiters",
        "malformed_unknown_event",
    }


def test_pid_maps_identifiers_by_assigning_authority_names_phones_address_and_language() -> None:
    patient = mapped("a01_admit").patient

    assert patient["identifier"][0]["system"] == "urn:oid:2.16.840.1.113883.3.72.5.20"
    assert patient["identifier"][0]["value"] == "MRN12345"
    assert patient["identifier"][0]["type"]["coding"][0]["code"] == "MR"
    assert patient["identifier"][1]["system"].endswith(":SSA")
    assert patient["name"][0] == {
        "use": "official",
        "family": "Wyman",
        "given": ["Alfreda", "J"],
        "prefix": ["Ms"],
    }
    assert patient["name"][1]["use"] == "maiden"  # a repetition
    assert patient["birthDate"] == "1958-03-12"
    assert patient["gender"] == "female"
    assert {"system": "phone", "value": "+16175559876", "use": "mobile"} in patient["telecom"]
    assert {"system": "email", "value": "alfreda@example.org", "use": "home"} in patient["telecom"]
    assert {"system": "phone", "value": "+16175550000", "use": "work"} in patient["telecom"]
    assert patient["address"][0]["city"] == "Boston"
    assert patient["communication"][0]["language"]["coding"][0]["code"] == "es"


def test_pv1_maps_class_service_admit_source_attending_visit_number_and_period() -> None:
    encounter = mapped("a01_admit").encounter
    assert encounter is not None

    assert encounter["status"] == "in-progress"
    assert encounter["class"]["code"] == "IMP"
    assert encounter["serviceType"]["coding"][0]["code"] == "MED"
    assert encounter["hospitalization"]["admitSource"]["coding"][0]["code"] == "7"
    assert encounter["participant"][0]["individual"]["display"] == "Dr Gregory House"
    assert encounter["identifier"][0]["value"] == "V0001"
    assert encounter["period"] == {"start": "2026-12-01T08:00:00-05:00"}
    assert encounter["reasonCode"][0]["text"] == "Chest pain"


def test_a03_finishes_the_same_encounter_with_discharge_disposition_and_end() -> None:
    admit, discharge = mapped("a01_admit"), mapped("a03_discharge")
    assert admit.encounter is not None
    assert discharge.encounter is not None

    assert discharge.encounter["id"] == admit.encounter["id"]
    assert discharge.patient["id"] == admit.patient["id"]
    assert discharge.encounter["status"] == "finished"
    assert discharge.encounter["period"]["end"] == "2026-12-05T14:30:00-05:00"
    assert discharge.encounter["hospitalization"]["dischargeDisposition"]["coding"][0]["code"] == "01"


def test_dg1_segments_become_encounter_diagnoses() -> None:
    conditions = mapped("a03_discharge").conditions

    assert [c["code"]["coding"][0]["code"] for c in conditions] == ["I50.9", "E11.9"]
    assert conditions[0]["code"]["coding"][0]["system"] == "http://hl7.org/fhir/sid/icd-10-cm"
    assert conditions[0]["verificationStatus"]["coding"][0]["code"] == "provisional"
    assert conditions[1]["verificationStatus"]["coding"][0]["code"] == "confirmed"
    assert conditions[0]["encounter"]["reference"].startswith("Encounter/v2-")


def test_a08_a11_and_a13_update_cancel_and_reopen_the_visit() -> None:
    update, cancel, reopen = mapped("a08_update"), mapped("a11_cancel_admit"), mapped("a13_cancel_discharge")
    assert update.encounter
    assert cancel.encounter
    assert reopen.encounter

    assert update.encounter["status"] == "in-progress"
    assert len(update.conditions) == 2
    assert cancel.encounter["status"] == "cancelled"
    assert reopen.encounter["status"] == "in-progress"
    assert "end" not in reopen.encounter.get("period", {})


def test_a40_names_the_record_merged_away() -> None:
    merge = mapped("a40_merge")

    assert merge.encounter is None
    assert merge.merged_identifiers[0]["value"] == "MRN99999"
    assert merge.merged_identifiers[0]["system"] == merge.patient["identifier"][0]["system"]


def test_a_resend_maps_to_the_same_resources() -> None:
    assert mapped("a03_discharge").resources == mapped("a03_discharge").resources


def test_segments_ending_in_line_feeds_are_read_as_the_same_message() -> None:
    text = sample("a03_discharge")

    assert map_message(V2Message(text.replace("\r", "\n")), zone=ZONE) == mapped("a03_discharge")


def test_a_patient_already_known_by_an_identifier_keeps_its_id() -> None:
    result = map_message(V2Message(sample("a03_discharge")), zone=ZONE, patient_id="known-1")
    assert result.encounter is not None

    assert result.patient["id"] == "known-1"
    assert result.encounter["subject"] == {"reference": "Patient/known-1"}


@pytest.mark.parametrize(
    ("name", "ack", "location", "code"),
    [
        ("malformed_missing_pid3", "AE", "PID-3", "101"),
        ("malformed_bad_date", "AE", "PID-7", "102"),
        ("malformed_wrong_delimiters", "AE", "PID", "100"),
        ("malformed_discharge_without_date", "AE", "PV1-45", "101"),
        ("malformed_unknown_event", "AR", "MSH-9", "201"),
        ("malformed_unsupported_version", "AR", "MSH-12", "203"),
    ],
)
def test_a_malformed_message_is_a_problem_naming_the_field(
    name: str, ack: str, location: str, code: str
) -> None:
    with pytest.raises(V2Problem) as problem:
        mapped(name)

    assert (problem.value.ack, problem.value.location, problem.value.code) == (ack, location, code)


def test_text_that_is_not_hl7_is_rejected() -> None:
    with pytest.raises(V2Problem) as problem:
        V2Message("hello\r")

    assert problem.value.ack == "AR"
