"""Fixtures for the FHIR client tests: the local FHIR test server, running on a free port."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import ABDUL_BUNDLE
from tests.fhir_server import FhirTestServer, running_fhir_server

# A Synthea patient with HbA1c results (LOINC 4548-4).
ALEXIA_BUNDLE = "Alexia_Senger_a5f5a550-b13e-4f92-b194-6d118f67fcdb.json"


@pytest.fixture(scope="session")
async def shared_fhir() -> AsyncIterator[FhirTestServer]:
    """A server with two Synthea patients, shared by the tests that only read from it."""
    async with running_fhir_server() as server:
        server.load_synthea([ABDUL_BUNDLE, ALEXIA_BUNDLE])
        yield server


@pytest.fixture(scope="session")
async def blank_fhir() -> AsyncIterator[FhirTestServer]:
    """A running server that each test using `fhir` gets emptied and reset."""
    async with running_fhir_server() as server:
        yield server


@pytest.fixture
def fhir(blank_fhir: FhirTestServer) -> FhirTestServer:
    """An empty server with default options, the test's own until it ends (to fail, lock or fill)."""
    blank_fhir.reset()
    return blank_fhir


class Sleeps:
    """A `sleep` for FhirClient that records the waits instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    """A recorder of the client's waits."""
    return Sleeps()
