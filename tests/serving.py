"""Serving an ASGI app with uvicorn on 127.0.0.1 and a free port, inside the current event loop, for tests
whose clients are real processes (a browser, the `temporal` CLI) or need a real socket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

import uvicorn


class _Server(uvicorn.Server):
    """uvicorn's server, stopping as soon as asked rather than at its next 0.1 s tick."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._stopping = asyncio.Event()

    async def main_loop(self) -> None:
        await self.on_tick(0)
        await self._stopping.wait()

    def stop(self) -> None:
        """Stop serving; without a lifespan to shut down, open keep-alive connections are closed at once."""
        self.should_exit = True
        self.force_exit = self.config.lifespan == "off"  # forcing would skip the app's shutdown
        self._stopping.set()


@asynccontextmanager
async def serving(
    app: Any,
    *,
    lifespan: Literal["on", "off"] = "on",
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
) -> AsyncIterator[str]:
    """Serve `app`; yields its base URL (`http://127.0.0.1:PORT`, https with a certificate)."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        lifespan=lifespan,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await task
            raise RuntimeError("the server stopped while starting")
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"{'https' if ssl_certfile else 'http'}://127.0.0.1:{port}"
    finally:
        server.stop()
        await task
