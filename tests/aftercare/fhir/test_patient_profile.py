"""The patient profile taken from a FHIR `Patient`."""

from __future__ import annotations

import copy
from datetime import date

from aftercare.fhir.patient_profile import TIMEZONE_EXTENSION, profile_from_patient
from aftercare.fhir.phones import normalise_phone
from tests.conftest import patient_of, synthea_bundle

SPANISH_SPEAKER = "Antonio_Castellanos_6d2eba67-5b4a-403f-a29f-e6da3f1ea963.json"


def test_a_synthea_patient_becomes_a_profile_with_an_e164_phone() -> None:
    profile = profile_from_patient(patient_of(synthea_bundle()), "v1", "US")
    assert (profile.given, profile.family) == ("Abdul", "Koepp")
    assert profile.name == "Abdul Koepp"
    assert profile.phone == "+15559784581"
    assert profile.phone_raw == "555-978-4581"
    assert profile.phone_status == "unverified"
    assert profile.language == "en-US"
    assert profile.birth_date == date(1956, 8, 3)
    assert profile.gender == "male"
    assert profile.timezone is None
    assert profile.deceased is False
    assert profile.address is not None


def test_the_language_comes_from_communication() -> None:
    profile = profile_from_patient(patient_of(synthea_bundle(SPANISH_SPEAKER)), "v1", "US")
    assert profile.language == "es"


def test_a_number_that_cannot_be_normalised_is_flagged_not_guessed() -> None:
    patient = copy.deepcopy(patient_of(synthea_bundle()))
    patient["telecom"] = [{"system": "phone", "value": "call the front desk", "use": "home"}]
    profile = profile_from_patient(patient, "v1", "US")
    assert (profile.phone, profile.phone_status, profile.phone_raw) == (
        None,
        "invalid",
        "call the front desk",
    )


def test_sms_and_mobile_numbers_are_preferred_and_old_ones_ignored() -> None:
    patient = copy.deepcopy(patient_of(synthea_bundle()))
    patient["telecom"] = [
        {"system": "phone", "value": "617-555-0100", "use": "home"},
        {"system": "phone", "value": "617-555-0199", "use": "old"},
        {"system": "phone", "value": "617-555-0142", "use": "mobile"},
        {"system": "email", "value": "abdul@example.org"},
    ]
    profile = profile_from_patient(patient, "v1", "US")
    assert profile.phone == "+16175550142"
    assert profile.email == "abdul@example.org"


def test_the_timezone_extension_is_used_when_present() -> None:
    patient = copy.deepcopy(patient_of(synthea_bundle()))
    patient["extension"].append({"url": TIMEZONE_EXTENSION, "valueCode": "America/Chicago"})
    assert profile_from_patient(patient, "v1", "US").timezone == "America/Chicago"


def test_international_numbers_keep_their_country() -> None:
    assert normalise_phone("+44 20 7946 0958", "US").e164 == "+442079460958"
    assert normalise_phone("020 7946 0958", "GB").e164 == "+442079460958"
    assert normalise_phone(None, "US").status == "missing"
