"""The README's commands run as written: every shell block, in order, from the repository root, against
`aftercare dev --demo` (as `make dev` starts it) on free ports with a data directory of its own.

A block that cannot run here says why in a marker on the line before it, `<!-- not-run: reason -->`;
every other block runs with bash (`-euo pipefail`), with `curl` failing on any HTTP error
(`--fail-with-body`), so a missing file, a wrong path or a 4xx fails the test and names the block.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.integration.test_dev_command import DevCommand, demo_enrollment, wait_until
from tests.prism import free_port

README = REPO / "README.md"
FENCE = re.compile(r"^```(\S*)\s*$")
NOT_RUN = re.compile(r"^<!--\s*not-run:\s*(?P<reason>\S.*?)\s*-->$")
SHELLS = frozenset({"sh", "bash", "shell", "console"})
# Files the README's commands post (`--data-binary @path`, `-d @path`), except stdin (`@-`).
POSTED_FILE = re.compile(r"(?:--data-binary|--data|-d)\s+@\"?(?P<path>[^\s\"$-][^\s\"]*)")
# Every curl fails on an HTTP error, showing the error body; the rest of its options are the README's.
CURL = 'curl() { command curl --silent --show-error --fail-with-body "$@"; }\n'


@dataclass(frozen=True)
class ShellBlock:
    """A shell code block: the line its code starts on, the code, and why it is not run (if it is not)."""

    line: int
    code: str
    not_run: str | None


def shell_blocks(text: str) -> list[ShellBlock]:
    """The README's shell blocks, each with the reason of a `not-run` marker on the line before it."""
    lines = text.splitlines()
    blocks: list[ShellBlock] = []
    position = 0
    while position < len(lines):
        opening = FENCE.match(lines[position])
        if opening is None:
            position += 1
            continue
        end = next(index for index in range(position + 1, len(lines)) if lines[index].strip() == "```")
        if opening[1] in SHELLS:
            marker = NOT_RUN.match(lines[position - 1].strip()) if position else None
            code = "\n".join(lines[position + 1 : end])
            blocks.append(ShellBlock(position + 2, code, marker["reason"] if marker else None))
        position = end + 1
    return blocks


def for_this_stack(code: str, api_port: int, data_dir: Path) -> str:
    """The block with the stack's API port and data directory in place of the defaults."""
    code = re.sub(r"\b(localhost|127\.0\.0\.1):8000\b", rf"\g<1>:{api_port}", code)
    return re.sub(r"(?<![\w/])\.aftercare/", f"{data_dir}/", code)


def test_every_not_run_marker_says_why_and_stands_before_a_shell_block() -> None:
    lines = README.read_text().splitlines()
    markers = [number for number, line in enumerate(lines) if line.strip().startswith("<!-- not-run")]
    for number in markers:
        assert NOT_RUN.match(lines[number].strip()), (
            f"README line {number + 1}: a not-run marker needs a reason"
        )
        following = FENCE.match(lines[number + 1])
        assert following is not None, f"README line {number + 1}: a not-run marker must stand before a block"
        assert following[1] in SHELLS, f"README line {number + 1}: only shell blocks are run"


def test_every_file_the_readme_posts_is_in_the_repository() -> None:
    posted = {
        match["path"]
        for block in shell_blocks(README.read_text())
        for match in POSTED_FILE.finditer(block.code)
    }
    assert "examples/observation.json" in posted
    assert sorted(path for path in posted if not (REPO / path).is_file()) == []


def test_the_readme_campaign_is_the_example_file() -> None:
    assert (REPO / "examples" / "flu-2026.campaign.yaml").read_text() in README.read_text()


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[DevCommand]:
    ports = {"api": free_port(), "temporal": free_port(), "ui": free_port()}
    command = DevCommand(tmp_path / "data", ports, "--demo")
    yield command
    if command.process.poll() is None:
        try:
            command.stop()
        except subprocess.TimeoutExpired:
            command.process.kill()
            command.process.wait()


def test_every_shell_block_of_the_readme_runs_against_aftercare_dev(dev: DevCommand, tmp_path: Path) -> None:
    dev.wait_for("Aftercare is running")
    # The README's first command answers the demo's text: wait until the demo journey asks.
    wait_until(lambda: demo_enrollment(dev)["current_step"] == "await-reply")
    environment = {
        **os.environ,
        "KEY": dev.api_key,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    ran: dict[int, str] = {}
    for block in shell_blocks(README.read_text()):
        if block.not_run is not None:
            continue
        code = for_this_stack(block.code, dev.ports["api"], tmp_path / "data")
        finished = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", CURL + code],
            cwd=REPO,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert finished.returncode == 0, (
            f"README block at line {block.line} failed ({finished.returncode}):\n{block.code}\n"
            f"--- stdout\n{finished.stdout}\n--- stderr\n{finished.stderr}"
        )
        ran[block.line] = finished.stdout
    [notification] = [output for output in ran.values() if '"kind":"rest-hook"' in output]
    assert '"received":{"Observation":1}' in notification
    assert len(ran) >= 4
