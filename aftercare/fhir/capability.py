"""Aftercare's CapabilityStatement (R4): what its FHIR endpoints accept, and what it reads from and
writes to the FHIR servers it is a client of."""

from __future__ import annotations

from typing import Any

import aftercare
from aftercare.clinical.facts import FACT_TABLES

FHIR_VERSION = "4.0.1"
# The day this statement last changed (CapabilityStatement.date): update it with the statement.
CHANGED = "2026-12-05"
FORMATS = ["json", "application/fhir+json", "application/fhir+ndjson"]
_CORE = "http://hl7.org/fhir/StructureDefinition/"

# Resource types with a meaning beyond being stored: the profile, consents, the clinical facts that
# segments and journeys read. Any other R4 resource type is accepted and stored as it is.
UNDERSTOOD: dict[str, str] = {
    "Patient": "the patient profile: name, contact points, language, deceased, guardians; identity",
    "Consent": "consent per channel and purpose (provision.type, provision.code, provision.purpose)",
    "Task": "a care task Aftercare wrote back (identifier urn:aftercare:task), completed in the EHR",
    **{name: f"a clinical fact ({table}) for segments and journeys" for name, table in FACT_TABLES.items()},
}
# What Aftercare writes to a writable FHIR source (FHIR_WRITE_BACK), and how.
WRITTEN: dict[str, str] = {
    "Communication": "each message sent, failed or held back (conditional update on identifier "
    "urn:aftercare:message|<id>)",
    "Task": "each care task and its completion (conditional update on identifier urn:aftercare:task|<id>)",
}


def capability_statement(public_base_url: str | None = None) -> dict[str, Any]:
    """The CapabilityStatement `GET /v1/fhir/metadata` answers."""
    implementation: dict[str, Any] = {"description": "Aftercare: durable post-discharge patient outreach"}
    if public_base_url:
        implementation["url"] = public_base_url.rstrip("/") + "/v1/fhir"
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": CHANGED,
        "publisher": "Aftercare",
        "kind": "instance",
        "software": {"name": "Aftercare", "version": aftercare.__version__},
        "implementation": implementation,
        "fhirVersion": FHIR_VERSION,
        "format": FORMATS,
        "rest": [_server(), _client()],
    }


def _server() -> dict[str, Any]:
    received = [{"code": "create"}, {"code": "update"}]
    return {
        "mode": "server",
        "documentation": (
            "Resources arrive as subscription notifications (POST /v1/fhir/notifications: an R4 rest-hook "
            "resource, an empty ping, or an R4 Backport / R4B / R5 notification Bundle; PUT or POST "
            "/v1/fhir/notifications/{type}/{id}) and as imports (POST /v1/fhir/import: a transaction, "
            "batch or collection Bundle, or NDJSON). Each is validated against R4: its structure, the "
            "codes of required bindings, Quantity units, references inside a Bundle; a bad one is a 422 "
            "OperationOutcome naming the element, an unparsable body a 400. Every error is an "
            "OperationOutcome."
        ),
        "security": {
            "description": (
                "An API key in X-API-Key, or an OAuth 2.0 bearer JWT (Authorization: Bearer); "
                "this statement needs neither."
            )
        },
        "resource": [
            {"type": name, "profile": _CORE + name, "documentation": meaning, "interaction": received}
            for name, meaning in sorted(UNDERSTOOD.items())
        ],
        "interaction": [
            {"code": "transaction", "documentation": "POST /v1/fhir/import: all entries or none"},
            {"code": "batch", "documentation": "POST /v1/fhir/import: each entry alone, bad ones reported"},
        ],
    }


def _client() -> dict[str, Any]:
    read = ["read", "vread", "search-type"]
    resources: list[dict[str, Any]] = []
    for name in sorted({"Patient", *UNDERSTOOD, *WRITTEN}):
        codes = read + (["create", "update"] if name in WRITTEN else [])
        resource: dict[str, Any] = {"type": name, "interaction": [{"code": code} for code in codes]}
        if name in WRITTEN:
            resource |= {"documentation": WRITTEN[name], "conditionalUpdate": True}
        resources.append(resource)
    resources.append(
        {
            "type": "Subscription",
            "documentation": "registered per watched type: R4 rest-hook or Subscriptions Backport",
            "interaction": [{"code": "create"}, {"code": "update"}, {"code": "search-type"}],
        }
    )
    return {
        "mode": "client",
        "documentation": (
            "Aftercare reads its FHIR sources (read, search with paging and _lastUpdated, "
            "Patient/$everything, Bulk Data $export) with SMART Backend Services, client credentials "
            "or a bearer token, and registers Subscriptions on them."
        ),
        "resource": sorted(resources, key=lambda resource: str(resource["type"])),
        "operation": [
            {"name": "export", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"},
            {
                "name": "everything",
                "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
            },
        ],
    }
