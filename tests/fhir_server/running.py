"""Running a `FhirTestServer` with uvicorn on 127.0.0.1 and a free port, inside the current event loop."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import uvicorn

from tests.fhir_server.server import FhirTestServer
from tests.fhir_server.tls import TlsFiles, make_tls_files


class _Server(uvicorn.Server):
    """uvicorn's server, stopping as soon as asked rather than at its next 0.1 s tick."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._stopping = asyncio.Event()

    async def main_loop(self) -> None:
        await self.on_tick(0)
        await self._stopping.wait()

    def stop(self) -> None:
        """Stop serving; open keep-alive connections are closed without waiting."""
        self.should_exit = True
        self.force_exit = True
        self._stopping.set()


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
        config = uvicorn.Config(
            fhir.app,
            host="127.0.0.1",
            port=0,
            lifespan="off",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,
            ssl_certfile=str(files.cert_file) if files else None,
            ssl_keyfile=str(files.key_file) if files else None,
        )
        uvicorn_server = _Server(config)
        task = asyncio.create_task(uvicorn_server.serve())
        while not uvicorn_server.started:
            if task.done():
                await task
                raise RuntimeError("the FHIR test server stopped while starting")
            await asyncio.sleep(0.01)
        port = uvicorn_server.servers[0].sockets[0].getsockname()[1]
        fhir.base_url = f"{'https' if files else 'http'}://127.0.0.1:{port}/fhir"
        fhir.tls = files
        try:
            yield fhir
        finally:
            uvicorn_server.stop()
            await task
