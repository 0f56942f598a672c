"""Assigning authorities named by the feed become the identifier systems the FHIR side uses."""

from __future__ import annotations

import copy

import pytest
from pydantic import ValidationError

from aftercare.hl7v2.authorities import AuthoritySystems
from aftercare.hl7v2.datatypes import AUTHORITY_SYSTEM
from aftercare.settings import Settings
from tests.aftercare.hl7v2.test_mapping import mapped

SSN = "http://hl7.org/fhir/sid/us-ssn"


def test_a_configured_authority_becomes_its_system_everywhere_an_identifier_is() -> None:
    discharge = mapped("a03_discharge")
    AuthoritySystems({"SSA": SSN}).rewrite(discharge.resources)

    systems = {identifier["system"] for identifier in discharge.patient["identifier"]}
    assert SSN in systems
    assert AUTHORITY_SYSTEM + "SSA" not in systems
    assert "urn:oid:2.16.840.1.113883.3.72.5.20" in systems  # an authority with an OID keeps it


def test_authorities_not_configured_keep_their_urn_and_codings_are_left_alone() -> None:
    discharge = mapped("a03_discharge")
    conditions = copy.deepcopy([r for r in discharge.resources if r["resourceType"] == "Condition"])
    assert conditions
    AuthoritySystems({"ELSEWHERE": "http://elsewhere.example/id", "SSA": SSN}).rewrite(discharge.resources)

    assert [r for r in discharge.resources if r["resourceType"] == "Condition"] == conditions
    other = mapped("a03_discharge")
    AuthoritySystems({"ELSEWHERE": "http://elsewhere.example/id"}).rewrite(other.resources)
    assert AUTHORITY_SYSTEM + "SSA" in {i["system"] for i in other.patient["identifier"]}


def test_identifiers_are_mapped_as_copies() -> None:
    identifiers = [{"system": AUTHORITY_SYSTEM + "SSA", "value": "999-12-3456"}]

    assert AuthoritySystems({"SSA": SSN}).identifiers(identifiers) == [
        {"system": SSN, "value": "999-12-3456"}
    ]
    assert identifiers[0]["system"] == AUTHORITY_SYSTEM + "SSA"


def test_the_setting_takes_uris_only() -> None:
    settings = Settings(hl7v2_authority_systems={"SSA": SSN}, _env_file=None)  # type: ignore[call-arg]
    assert settings.hl7v2_authority_systems == {"SSA": SSN}
    with pytest.raises(ValidationError, match="must be a URI"):
        Settings(hl7v2_authority_systems={"SSA": "ssn numbers"}, _env_file=None)  # type: ignore[call-arg]
