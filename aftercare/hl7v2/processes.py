"""`aftercare mllp --processes N`: the first listener process starts N - 1 more on the port it bound.
Each binds with SO_REUSEPORT, so the kernel spreads the connections among them; a connection stays
with one process, which keeps its messages in order. Across processes each patient's messages go one
at a time through the advisory lock the intake takes per patient (`hold_patients`). The others stop
with the first; when one of them ends, the first stops too, so whatever supervises it starts all again.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

STOP_PATIENCE = 30.0  # seconds a listener may take to finish its batches once told to stop


@asynccontextmanager
async def other_listeners(count: int, arguments: Sequence[str]) -> AsyncIterator[asyncio.Future[int]]:
    """`count` more `aftercare mllp <arguments> --share-port` processes for as long as the block runs;
    the future ends (with its exit status) when one of them does."""
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "aftercare", "mllp", *arguments, "--share-port"
        )
        for _ in range(count)
    ]
    ended: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def watch(child: asyncio.subprocess.Process) -> None:
        status = await child.wait()
        if not ended.done():
            ended.set_result(status)

    watchers = [asyncio.create_task(watch(child)) for child in children]
    try:
        yield ended
    finally:
        for child in children:
            if child.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                await asyncio.wait_for(child.wait(), STOP_PATIENCE)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    child.kill()
                await child.wait()
        for watcher in watchers:
            watcher.cancel()
        if not ended.done():
            ended.cancel()
