"""Counts reused for a few seconds, one entry per facility scope: a busy console costs the database
little, and a user limited to some facilities never sees counts made for another scope."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from fastapi import Request

CACHE_SECONDS = 5.0


class CountsCache:
    """The last value computed for each key, reused for `seconds`."""

    def __init__(self, seconds: float = CACHE_SECONDS) -> None:
        self.seconds = seconds
        self._entries: dict[Hashable, tuple[float, Any]] = {}

    async def get(self, key: Hashable, compute: Callable[[], Awaitable[Any]]) -> Any:
        """The value for `key`, computed again when older than `seconds`."""
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is None or now - entry[0] > self.seconds:
            if len(self._entries) > 1000:
                self._entries.clear()
            entry = (now, await compute())
            self._entries[key] = entry
        return entry[1]


def counts_cache(request: Request, name: str) -> CountsCache:
    """The app's cache of these counts (`name`: which page's)."""
    state = request.app.state
    if not hasattr(state, "console_counts"):
        state.console_counts = {}
    caches: dict[str, CountsCache] = state.console_counts
    return caches.setdefault(name, CountsCache())
