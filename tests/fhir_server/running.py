"""Running a `FhirTestServer` with uvicorn on 127.0.0.1 and a free port, inside the current event loop."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from tests.fhir_server.server import FhirTestServer
from tests.fhir_server.tls import TlsFiles, make_tls_files
from tests.serving import serving


@asynccontextmanager
async def running_fhir_server(
    server: FhirTestServer | None = None,
    *,
    tls: bool | TlsFiles = False,
    **options: Any,
) -> AsyncIterator[FhirTestServer]:
    """Serve `server` (a new `FhirTestServer(**options)` when None) on `http://127.0.0.1:PORT/fhir`,
    setting its `base_url`; with `tls` (True for fresh throwaway certificates, or given `TlsFiles`)
    on https, with `server.tls` holding the files (`server.tls.ca_file` is the CA to trust)."""
    fhir = server or FhirTestServer(**options)
    with tempfile.TemporaryDirectory(prefix="fhir-tls-") as scratch:
        files = tls if isinstance(tls, TlsFiles) else make_tls_files(Path(scratch)) if tls else None
        async with serving(
            fhir.app,
            lifespan="off",
            ssl_certfile=str(files.cert_file) if files else None,
            ssl_keyfile=str(files.key_file) if files else None,
        ) as base_url:
            fhir.base_url = f"{base_url}/fhir"
            fhir.tls = files
            yield fhir
