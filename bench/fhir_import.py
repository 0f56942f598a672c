"""NDJSON import into PostgreSQL: resources per second and peak memory, per file size.

    python bench/fhir_import.py                          # 10k, 50k and 200k resources
    python bench/fhir_import.py --sizes 10000,1000000 --batch 2000
    python bench/fhir_import.py --tracemalloc            # also the Python heap peak (slower run)

For each size it writes one NDJSON file of Synthea resources (the shared Bulk Data export, copied with
every id rewritten so each copy is new patients and new resources, references kept consistent), then,
in a fresh process, imports it with `aftercare.bulk` (the path `aftercare import` takes) into a new
PostgreSQL database (created, migrated and dropped here; `--server`, default 127.0.0.1:5432). It prints
resources per second, the process's peak RSS and its growth during the import: flat memory as the file
grows shows that the file is streamed, not loaded. Target: at least 5,000 resources/s.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/<name>.py`: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPO = Path(__file__).resolve().parents[1]
SYNTHEA_BULK = (
    Path(os.environ.get("AFTERCARE_SHARED_DATA", REPO.parent / "shared" / "data"))
    / "synthea"
    / "bulk-ndjson-10-patients"
)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TARGET = 5000


def synthea_lines() -> list[str]:
    """The resources of the shared export (Patient first, so references resolve in order)."""
    files = sorted(SYNTHEA_BULK.glob("[A-Z]*.ndjson"), key=lambda path: path.name != "Patient.000.ndjson")
    return [line for path in files for line in path.read_text().splitlines() if line.strip()]


def generated_lines(count: int) -> Iterator[str]:
    """`count` resources: copies of the export with each copy's UUIDs (ids and references) rewritten."""
    source = synthea_lines()
    for copy in itertools.count():
        rewrite = _rewriter(f"{copy:08x}")
        for line in source:
            if count <= 0:
                return
            count -= 1
            yield _UUID.sub(rewrite, line)


def _rewriter(prefix: str) -> Callable[[re.Match[str]], str]:
    return lambda match: prefix + match.group(0)[8:]


def write_file(path: Path, count: int) -> int:
    """Write the NDJSON file; returns its size in bytes."""
    with path.open("w") as out:
        for line in generated_lines(count):
            out.write(line)
            out.write("\n")
    return path.stat().st_size


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _import_one(server: str, path: Path, batch: int, trace: bool) -> dict[str, float]:
    import psycopg
    from psycopg import sql

    from aftercare.bulk.files import import_files
    from aftercare.db.engine import create_engine, normalise_database_url, session_factory
    from aftercare.db.migrate import libpq_dsn, upgrade

    name = f"aftercare_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(libpq_dsn(server), autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = normalise_database_url(server).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        engine = create_engine(url, pool_size=2)
        sessions = session_factory(engine)
        rss_before = _rss_mb()
        if trace:
            tracemalloc.start()
        started = time.perf_counter()
        summary = await import_files(sessions, [path], phone_region="US", batch_size=batch)
        seconds = time.perf_counter() - started
        heap_peak = tracemalloc.get_traced_memory()[1] / 2**20 if trace else 0.0
        tracemalloc.stop()
        await engine.dispose()
        return {
            "resources": summary.resources,
            "new": sum(summary.new.values()),
            "parked": summary.parked,
            "seconds": seconds,
            "per_second": summary.resources / seconds,
            "rss_before_mb": rss_before,
            "rss_peak_mb": _rss_mb(),
            "heap_peak_mb": heap_peak,
        }
    finally:
        with psycopg.connect(libpq_dsn(server), autocommit=True) as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,50000,200000", help="resources per file, comma-separated")
    parser.add_argument("--batch", type=int, default=500, help="resources per transaction")
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--tracemalloc", action="store_true", help="also measure the Python heap peak")
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)  # child process: import this file
    arguments = parser.parse_args()
    if arguments.one:
        result = asyncio.run(
            _import_one(arguments.server, arguments.one, arguments.batch, arguments.tracemalloc)
        )
        print(json.dumps(result))
        return
    print(
        f"{'resources':>10} {'file MB':>8} {'seconds':>8} {'res/s':>8} {'peak RSS MB':>12} "
        f"{'RSS growth MB':>14}" + (f" {'heap peak MB':>13}" if arguments.tracemalloc else "")
    )
    slowest = float("inf")
    with tempfile.TemporaryDirectory(prefix="aftercare-bench-") as directory:
        for size in (int(value) for value in arguments.sizes.split(",")):
            path = Path(directory) / f"bench-{size}.ndjson"
            file_mb = write_file(path, size) / 2**20
            command = [
                sys.executable,
                __file__,
                "--one",
                str(path),
                "--batch",
                str(arguments.batch),
                "--server",
                arguments.server,
            ]
            if arguments.tracemalloc:
                command.append("--tracemalloc")
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            result = json.loads(output.strip().splitlines()[-1])
            slowest = min(slowest, result["per_second"])
            print(
                f"{int(result['resources']):>10} {file_mb:>8.1f} {result['seconds']:>8.1f} "
                f"{result['per_second']:>8.0f} {result['rss_peak_mb']:>12.0f} "
                f"{result['rss_peak_mb'] - result['rss_before_mb']:>14.0f}"
                + (f" {result['heap_peak_mb']:>13.1f}" if arguments.tracemalloc else "")
            )
            path.unlink()
    if arguments.tracemalloc:
        print("(tracemalloc slows the import several times: measure the rate without --tracemalloc)")
        return
    verdict = "meets" if slowest >= TARGET else "misses"
    print(f"slowest {slowest:.0f} resources/s: {verdict} the target of {TARGET}/s")


if __name__ == "__main__":
    main()
