"""CPU time of processes, from /proc: what a load from other programs on the machine does not inflate,
unlike wall-clock latency. Used to report CPU milliseconds per request beside the latencies."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds the process has used (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14 and 15 of stat)


async def database_backends(engine: AsyncEngine) -> set[int]:
    """The PostgreSQL server processes serving connections to the engine's database (local servers)."""
    async with engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        )
        return {int(pid) for (pid,) in rows}


class CpuMeter:
    """CPU seconds used by this process and by a set of other processes since `start()`."""

    def __init__(self) -> None:
        self._others: dict[int, float] = {}
        self._own = 0.0

    def start(self, others: set[int]) -> None:
        """Begin counting (this process, and `others`)."""
        self._own = os.times().user + os.times().system
        self._others = {pid: cpu_seconds(pid) for pid in others}

    def stop(self, others: set[int]) -> tuple[float, float]:
        """(this process's, the others') CPU seconds since `start`; a process that appeared since counts
        from zero."""
        own = os.times().user + os.times().system - self._own
        theirs = sum(cpu_seconds(pid) - self._others.get(pid, 0.0) for pid in others | set(self._others))
        return own, theirs
