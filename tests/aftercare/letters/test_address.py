"""The address block printed in the envelope window, from a FHIR Address."""

from __future__ import annotations

from aftercare.letters.address import address_block
from tests.conftest import patient_of, synthea_bundle


def test_a_synthea_home_address_becomes_a_usps_style_block() -> None:
    [address] = patient_of(synthea_bundle())["address"]
    lines = address_block("Abdul Koepp", address)
    assert lines[0] == "Abdul Koepp"
    assert lines[-1].endswith(f"MA {address['postalCode']}")
    assert lines[1:-1] == address["line"]


def test_a_foreign_address_keeps_its_region_and_names_its_country() -> None:
    address = {"line": ["10 Downing St"], "city": "London", "postalCode": "SW1A 2AA", "country": "gb"}
    assert address_block("A. Patient", address) == ["A. Patient", "10 Downing St", "London, SW1A 2AA", "GB"]


def test_an_address_with_only_text_is_printed_as_written_and_an_empty_one_gives_nothing() -> None:
    assert address_block("A. Patient", {"text": "Flat 2\n5 High St\nBath"}) == [
        "A. Patient",
        "Flat 2",
        "5 High St",
        "Bath",
    ]
    assert address_block("A. Patient", {"city": "Boston"}) == []
