"""The README's and the documentation pages' commands run as written: every shell block, in order (the
README, then the pages in `DOCUMENTS` order, the order the walkthrough builds on), from the repository
root, against
`aftercare dev --demo` (as `make dev` starts it) on free ports, with a data directory of its own in
place of `.aftercare`.

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

import httpx
import pytest

from tests.conftest import REPO
from tests.integration.test_dev_command import DevCommand, demo_enrollment, wait_until
from tests.prism import free_port

README = REPO / "README.md"
# The README, then the documentation pages in the order their commands build on one another.
DOCUMENTS = (
    README,
    *(
        REPO / "docs" / page
        for page in (
            "journeys.md",
            "channels.md",
            "events.md",
            "patient-pages.md",
            "consent.md",
            "clinical-data.md",
            "risk-and-tcm.md",
            "connecting-your-ehr.md",
            "segments.md",
            "campaigns.md",
            "analytics.md",
            "console.md",
            "security.md",
            "hospital-groups.md",
            "how-it-works.md",
            "configuration.md",
            "production.md",
            "performance.md",
            "tests.md",
            "contract-notes.md",
        )
    ),
)
FENCE = re.compile(r"^```(\S*)\s*$")
NOT_RUN = re.compile(r"^<!--\s*not-run:\s*(?P<reason>\S.*?)\s*-->$")
SHELLS = frozenset({"sh", "bash", "shell"})
# Files the README's commands post (`--data-binary @path`, `-d @path`), except stdin (`@-`).
POSTED_FILE = re.compile(r"(?:--data-binary|--data|-d)\s+@\"?(?P<path>[^\s\"$-][^\s\"]*)")
# Every curl fails on an HTTP error, showing the error body; the rest of its options are the README's.
SUITE_SETTINGS = frozenset(
    {"DATABASE_URL", "AFTERCARE_DEV_API_KEY", "AFTERCARE_CODEC_KEYS", "AFTERCARE_ENV", "MINOR_AGE"}
    | {"QUIET_HOURS_START", "TEMPORAL_ADDRESS"}
)
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


def for_this_stack(code: str, ports: dict[str, int]) -> str:
    """The block with the stack's ports in place of the defaults (API 8000, Temporal 7233, UI 8233)."""
    default = {"8000": ports["api"], "7233": ports["temporal"], "8233": ports["ui"]}
    code = re.sub(r"--port 2575\b", f"--port {ports['mllp']}", code)  # the MLLP listener's
    return re.sub(
        r"\b(localhost|127\.0\.0\.1):(8000|7233|8233)\b",
        lambda match: f"{match[1]}:{default[match[2]]}",
        code,
    )


def documented_blocks() -> list[tuple[Path, ShellBlock]]:
    """Every shell block of the README and the documentation pages, in `DOCUMENTS` order."""
    return [(document, block) for document in DOCUMENTS for block in shell_blocks(document.read_text())]


def test_every_page_with_commands_is_run() -> None:
    pages = {page for page in (REPO / "docs").rglob("*.md") if shell_blocks(page.read_text())}
    assert sorted(pages - set(DOCUMENTS)) == []


def test_every_not_run_marker_says_why_and_stands_before_a_shell_block() -> None:
    for document in DOCUMENTS:
        lines = document.read_text().splitlines()
        markers = [number for number, line in enumerate(lines) if line.strip().startswith("<!-- not-run")]
        for number in markers:
            where = f"{document.relative_to(REPO)} line {number + 1}"
            assert NOT_RUN.match(lines[number].strip()), f"{where}: a not-run marker needs a reason"
            following = FENCE.match(lines[number + 1])
            assert following is not None, f"{where}: a not-run marker must stand before a block"
            assert following[1] in SHELLS, f"{where}: only shell blocks are run"


def test_every_file_the_readme_posts_is_in_the_repository() -> None:
    posted = {match["path"] for _, block in documented_blocks() for match in POSTED_FILE.finditer(block.code)}
    assert "examples/observation.json" in posted
    assert sorted(path for path in posted if not (REPO / path).is_file()) == []


def test_the_readme_campaign_is_the_example_file() -> None:
    assert (REPO / "examples" / "flu-2026.campaign.yaml").read_text() in (
        REPO / "docs" / "campaigns.md"
    ).read_text()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A stand-in for the repository root: the repository's files, and as `.aftercare` a data
    directory of the test's own, so the README's relative paths work as written."""
    root = tmp_path / "repo"
    root.mkdir()
    for entry in REPO.iterdir():
        if entry.name != ".aftercare":
            (root / entry.name).symlink_to(entry)
    return root


@pytest.fixture
def dev(root: Path) -> Iterator[DevCommand]:
    ports = {"api": free_port(), "temporal": free_port(), "ui": free_port(), "mllp": free_port()}
    command = DevCommand(root / ".aftercare", ports, "--demo")
    yield command
    if command.process.poll() is None:
        try:
            command.stop()
        except subprocess.TimeoutExpired:
            command.process.kill()
            command.process.wait()


def demo_text_sent(command: DevCommand) -> bool:
    """The demo's text is recorded (the banner can come a moment before it)."""
    answer = httpx.get(f"{command.api}/v1/messages", headers=command.headers)
    return answer.status_code == 200 and len(answer.json()["items"]) == 1


def test_every_shell_block_of_the_readme_runs_against_aftercare_dev(dev: DevCommand, root: Path) -> None:
    dev.wait_for("Aftercare is running")
    # The README's first command answers the demo's text: wait until the demo journey asks.
    wait_until(lambda: demo_text_sent(dev) and demo_enrollment(dev)["current_step"] == "await-reply")
    # A reader's shell: the project's commands on the PATH, none of the suite's own settings, and the
    # key the README's `export KEY=...` block reads.
    environment = {key: value for key, value in os.environ.items() if key not in SUITE_SETTINGS}
    environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    environment["KEY"] = dev.api_key
    ran: dict[tuple[str, int], str] = {}
    for document, block in documented_blocks():
        if block.not_run is not None:
            continue
        code = for_this_stack(block.code, dev.ports)
        finished = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", CURL + code],
            cwd=root,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert finished.returncode == 0, (
            f"{document.relative_to(REPO)} block at line {block.line} failed ({finished.returncode}):\n{block.code}\n"
            f"--- stdout\n{finished.stdout}\n--- stderr\n{finished.stderr}"
        )
        ran[document.name, block.line] = finished.stdout
    [notification] = [output for output in ran.values() if '"kind":"rest-hook"' in output]
    assert '"received":{"Observation":1}' in notification
    assert len(ran) >= 4
