"""The commands that need the database (`aftercare api-keys` here) use the dev stack running beside them,
say so in one line when it is not running, and report a database they cannot use in one line with exit
status 1, never a traceback. An explicit `DATABASE_URL` wins."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg

from aftercare.db.migrate import libpq_dsn
from aftercare.devstack.state import STATE_FILE, StackState, write_state
from tests.helpers import run_aftercare

UNREACHABLE = "postgresql+psycopg://postgres@127.0.0.1:9/aftercare"  # the discard port: nothing listens


def aftercare(
    cwd: Path, *arguments: str, database_url: str | None = None
) -> subprocess.CompletedProcess[str]:
    variables = {"DATABASE_URL": database_url} if database_url else {}
    return run_aftercare(cwd, *arguments, unset={"DATABASE_URL"}, **variables)


def stack_state(database_url: str, pid: int | None = None) -> StackState:
    return StackState(
        pid=pid or os.getpid(),  # this test's process: alive, as the stack's would be
        database_url=database_url,
        api_url="http://127.0.0.1:8000",
        temporal_address="127.0.0.1:7233",
        temporal_namespace="default",
    )


def one_line_error(result: subprocess.CompletedProcess[str], command: str) -> str:
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"aftercare {command}: error: ")
    return lines[0]


def test_an_unreachable_database_is_one_line_and_exit_1(tmp_path: Path) -> None:
    result = aftercare(tmp_path, "api-keys", "list", database_url=UNREACHABLE)

    line = one_line_error(result, "api-keys")
    assert "cannot use the database at postgresql+psycopg://postgres@127.0.0.1:9/aftercare" in line
    assert "Traceback" not in result.stderr


def test_a_database_that_does_not_exist_is_one_line(tmp_path: Path, database_url: str) -> None:
    missing = database_url.rsplit("/", 1)[0] + "/aftercare_missing_" + tmp_path.name[-8:]

    line = one_line_error(aftercare(tmp_path, "api-keys", "list", database_url=missing), "api-keys")
    assert "does not exist" in line


def test_beside_a_stopped_dev_stack_the_command_says_how_to_start_it(tmp_path: Path) -> None:
    (tmp_path / ".aftercare").mkdir()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    write_state(tmp_path / ".aftercare", stack_state(UNREACHABLE, pid=int(dead.stdout)))

    line = one_line_error(aftercare(tmp_path, "api-keys", "list"), "api-keys")
    assert "the dev stack in .aftercare/ is not running: start it with `make dev`" in line


def test_beside_a_running_dev_stack_the_command_uses_its_database(tmp_path: Path, database_url: str) -> None:
    data_dir = tmp_path / ".aftercare"
    data_dir.mkdir()
    write_state(data_dir, stack_state(database_url))

    made = aftercare(tmp_path, "api-keys", "create", "--name", "beside-the-stack", "--role", "admin")

    assert made.returncode == 0, made.stderr
    key_id = made.stdout.split()[0]
    with psycopg.connect(libpq_dsn(database_url)) as connection:
        row = connection.execute("SELECT name FROM api_keys WHERE id = %s", (key_id,)).fetchone()
    assert row == ("beside-the-stack",)
    assert json.loads((data_dir / STATE_FILE).read_text())["database_url"] == database_url


def test_an_explicit_database_url_wins_over_the_dev_stack(tmp_path: Path, database_url: str) -> None:
    data_dir = tmp_path / ".aftercare"
    data_dir.mkdir()
    write_state(data_dir, stack_state(UNREACHABLE))

    listed = aftercare(tmp_path, "api-keys", "list", database_url=database_url)

    assert listed.returncode == 0, listed.stderr
