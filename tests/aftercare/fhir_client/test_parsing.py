"""Reading FHIR JSON into fhir.resources models of the project's release (R4B, which reads R4 resources
and the R4/R4B Subscriptions Backport shapes), and naming the invalid element when it cannot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from aftercare.fhir_client.errors import FhirInvalidResource
from aftercare.fhir_client.parsing import parse_resource, resources_of
from tests.conftest import FHIR_EXAMPLES, synthea_bundle

BACKPORT = FHIR_EXAMPLES / "subscriptions-backport" / "sushi-generated"
R5 = FHIR_EXAMPLES / "r5"
# R5 examples whose shape R4B shares.
R5_READABLE_AS_R4B = [
    "SubscriptionStatus-example.json",
    "SubscriptionTopic-admission.json",
    "notification-bundles/Bundle-3945182f-d315-4dbf-9259-09d863c7e7da.id-only.json",
    "notification-bundles/Bundle-3d20ea4b-90dc-4d0d-b15a-c7a893389401.heartbeat.json",
    "notification-bundles/Bundle-40464b74-fad0-4f45-ab60-e67f949c5e92.query-status.json",
    "notification-bundles/Bundle-54f808cf-d159-4c9b-accb-c33eb20f0ecc.handshake.json",
    "notification-bundles/Bundle-9601c07a-e34f-4945-93ca-6efb5394c995.empty.json",
    "notification-bundles/Bundle-e2c9dc20-615e-4603-9005-74deb209cbb0.error.json",
]


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text())
    return document


@pytest.mark.parametrize("path", sorted((FHIR_EXAMPLES / "r4").glob("*.json")), ids=lambda p: p.name)
def test_every_hl7_r4_example_parses(path: Path) -> None:
    document = load(path)
    model = parse_resource(document)
    assert model.get_resource_type() == document["resourceType"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", sorted(BACKPORT.glob("*.json")), ids=lambda p: p.name)
def test_every_subscriptions_backport_example_parses(path: Path) -> None:
    assert parse_resource(load(path)).id == load(path)["id"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", R5_READABLE_AS_R4B)
def test_r5_examples_with_an_r4b_shape_parse(name: str) -> None:
    parse_resource(load(R5 / name))


def test_an_r5_only_shape_is_invalid_and_names_the_element() -> None:
    with pytest.raises(FhirInvalidResource) as raised:
        parse_resource(load(R5 / "Subscription-example.json"))
    assert raised.value.element == "Subscription.channel"
    assert str(raised.value).startswith("invalid Subscription: Subscription.channel: ")


def test_every_resource_of_a_synthea_bundle_parses() -> None:
    bundle = synthea_bundle()
    resources = resources_of(bundle)
    assert len(resources) == len(bundle["entry"])
    for resource in resources:
        parse_resource(resource)


@pytest.mark.parametrize(
    ("resource", "element"),
    [
        ({"resourceType": "Observation", "code": {"text": "HbA1c"}}, "Observation.status"),
        (
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "x"},
                "valueQuantity": {"value": "lots"},
            },
            "Observation.valueQuantity.value",
        ),
        ({"resourceType": "Patient", "birthDate": "the 5th of May"}, "Patient.birthDate"),
        ({"resourceType": "Spaceship"}, "resourceType"),
        ({"id": "no-type"}, "resourceType"),
    ],
)
def test_an_invalid_resource_names_the_element(resource: dict[str, Any], element: str) -> None:
    with pytest.raises(FhirInvalidResource) as raised:
        parse_resource(resource)
    assert raised.value.element == element
    assert element in str(raised.value)


def test_resources_of_skips_entries_without_a_resource() -> None:
    bundle = {
        "resourceType": "Bundle",
        "entry": [{"fullUrl": "x"}, {"resource": {"resourceType": "Patient"}}, "junk"],
    }
    assert resources_of(bundle) == [{"resourceType": "Patient"}]
