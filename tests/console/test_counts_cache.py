"""Cached counts: one entry per facility scope, computed again after the cache time."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from console import counts_cache
from console.counts_cache import CountsCache


async def test_each_scope_has_its_own_counts_until_they_age(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(counts_cache.time, "monotonic", lambda: now[0])
    computed: list[str] = []

    def counting(scope: str) -> Callable[[], Awaitable[str]]:
        async def compute() -> str:
            computed.append(scope)
            return f"counts of {scope}"

        return compute

    cache = CountsCache(seconds=5)
    north, south = frozenset({"north"}), frozenset({"south"})
    assert await cache.get(north, counting("north")) == "counts of north"
    assert await cache.get(south, counting("south")) == "counts of south"
    now[0] += 4
    assert await cache.get(north, counting("north")) == "counts of north"
    assert computed == ["north", "south"]
    now[0] += 2
    assert await cache.get(north, counting("north")) == "counts of north"
    assert computed == ["north", "south", "north"]
