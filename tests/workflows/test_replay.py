"""Recorded histories of real enrollments and campaign runs replay on the current workflow code.

A change that would break journeys already running fails here; record new histories only for a
deliberate change that is guarded with `workflow.patched`. They were recorded before payloads were
encrypted, and replay through the encrypting converter: its codec passes unencrypted payloads through.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

import journeys.code  # noqa: F401 (the code journeys register with the enrollment workflow, as in worker.py)
from tests.conftest import suite_converter
from workflows import WORKFLOWS

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_there_are_recorded_histories() -> None:
    assert len(HISTORIES) >= 5


@pytest.mark.parametrize("path", HISTORIES, ids=[path.stem for path in HISTORIES])
async def test_a_recorded_workflow_replays_without_nondeterminism(path: Path) -> None:
    document = json.loads(path.read_text())
    history = WorkflowHistory.from_json(path.stem, document)
    replayer = Replayer(workflows=WORKFLOWS, data_converter=suite_converter())
    result = await replayer.replay_workflow(history)
    assert result.replay_failure is None
