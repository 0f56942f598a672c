"""The pre-commit hooks run the checks `make test` runs, and every CI entry point runs `make test` and
`make sbom`: a fork's CI, the project's and a contributor's commit agree."""

from __future__ import annotations

import re

import yaml

from tests.conftest import REPO


def _make_recipe(target: str) -> list[str]:
    makefile = (REPO / "Makefile").read_text()
    found = re.search(rf"^{re.escape(target)}:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert found, f"no '{target}' target in the Makefile"
    return [line.strip().replace("$(BIN)/", ".venv/bin/") for line in found.group(1).splitlines()]


def test_the_pre_commit_hooks_are_the_checks_of_make_test() -> None:
    config = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text())
    hooks = [hook for repo in config["repos"] for hook in repo["hooks"]]
    checks = [
        line
        for line in _make_recipe("test")
        if line.startswith((".venv/bin/ruff", ".venv/bin/mypy", ".venv/bin/lint-imports"))
    ]
    assert len(checks) == 4
    assert [hook["entry"] for hook in hooks] == checks
    assert all(hook["language"] == "system" and hook["pass_filenames"] is False for hook in hooks)


def test_every_ci_entry_point_runs_make_test_then_make_sbom() -> None:
    ci_run = [line for line in (REPO / ".ci" / "run").read_text().splitlines() if line.startswith("make ")]
    assert [line.split("#")[0].strip() for line in ci_run] == ["make test", "make sbom"]
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "ci.yml").read_text())
    runs = [step["run"] for job in workflow["jobs"].values() for step in job["steps"] if "run" in step]
    assert [run for run in runs if run.startswith("make ")] == ["make test", "make sbom"]
