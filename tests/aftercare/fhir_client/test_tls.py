"""TLS to a FHIR server: a CA bundle the client is told to trust works; an unknown CA fails clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from aftercare.fhir_client.client import FhirClient
from aftercare.fhir_client.errors import FhirClientError, FhirConfigError
from tests.fhir_server import running_fhir_server


async def test_a_server_signed_by_the_trusted_ca_is_reached_over_https() -> None:
    async with running_fhir_server(tls=True) as fhir:
        fhir.put({"resourceType": "Patient", "id": "p1"})
        assert fhir.base_url.startswith("https://127.0.0.1:")
        assert fhir.tls is not None
        async with FhirClient(fhir.base_url, verify=str(fhir.tls.ca_file)) as client:
            assert (await client.read("Patient", "p1"))["id"] == "p1"
        async with FhirClient(fhir.base_url, verify=False) as client:
            assert (await client.read("Patient", "p1"))["id"] == "p1"


async def test_an_untrusted_certificate_fails_with_a_clear_tls_error() -> None:
    async with running_fhir_server(tls=True) as fhir:
        async with FhirClient(fhir.base_url, max_attempts=3) as client:
            with pytest.raises(FhirClientError) as raised:
                await client.read("Patient", "p1")
        assert fhir.requests == []
    message = str(raised.value)
    assert message.startswith(f"TLS with {fhir.base_url} failed: ")
    assert "CERTIFICATE_VERIFY_FAILED" in message


def test_a_missing_ca_bundle_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(FhirConfigError, match="TLS files cannot be loaded"):
        FhirClient("https://fhir.example", verify=str(tmp_path / "missing.pem"))
