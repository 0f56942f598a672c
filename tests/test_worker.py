"""`aftercare worker` without a Temporal server to talk to says so in one line, never a traceback."""

from __future__ import annotations

from pathlib import Path

from aftercare.settings import Settings
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


def test_the_worker_runs_workflows_outside_the_sandbox_unless_workflow_sandbox_is_set() -> None:
    from temporalio.worker import UnsandboxedWorkflowRunner
    from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

    from worker import workflow_runner

    assert Settings(_env_file=None).workflow_sandbox is False  # type: ignore[call-arg]
    assert isinstance(workflow_runner(False), UnsandboxedWorkflowRunner)
    assert isinstance(workflow_runner(True), SandboxedWorkflowRunner)


def test_the_suite_runs_every_workflow_in_the_sandbox(settings: Settings) -> None:
    assert settings.workflow_sandbox
