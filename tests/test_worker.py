"""`aftercare worker` without a Temporal server to talk to says so in one line, never a traceback."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import run_aftercare


def test_a_worker_without_temporal_says_so_in_one_line(tmp_path: Path, database_url: str) -> None:
    result = run_aftercare(
        tmp_path, "worker", DATABASE_URL=database_url, TEMPORAL_ADDRESS="127.0.0.1:9"
    )  # the discard port: nothing listens

    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "aftercare worker: error: Temporal does not answer at 127.0.0.1:9 "
        "(start it, or set TEMPORAL_ADDRESS; `make dev` runs one)"
    ]
    assert "Traceback" not in result.stderr
