"""Every vendored file keeps its licence beside it and is listed in NOTICE; the repository carries the
Apache-2.0 text it is licensed under.

Vendored code lives in a folder per package under any `static/vendor/` folder of the repository
(`api/static/vendor/swagger-ui/`, `console/static/vendor/htmx/`, ...). CONTRIBUTING.md says how to add one.
"""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
from pathlib import Path

import pytest

from tests.conftest import REPO

# The sha256 of https://www.apache.org/licenses/LICENSE-2.0.txt, byte for byte.
APACHE_2_0_SHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"

_NOT_SOURCE = {".git", ".venv", "node_modules", ".aftercare", "build", "dist", "__pycache__"}
_LICENCE_FILE = re.compile(r"^(LICEN[CS]E|COPYING)([.-].*)?$", re.IGNORECASE)
_LICENCE_LINE = re.compile(r"^\s+Licence: (?P<spdx>[^,]+), (?P<path>\S+)$")
# Beside the packages, a vendor folder may hold only its README (what is there, versions, hashes).
_VENDOR_FOLDER_FILES = {"README.md"}


def vendor_folders(root: Path) -> list[Path]:
    """Every `static/vendor/` folder under the root, at any depth, outside installed and built trees."""
    found = []
    for folder, subfolders, _ in os.walk(root):
        subfolders[:] = sorted(s for s in subfolders if s not in _NOT_SOURCE and not s.startswith("."))
        path = Path(folder)
        if path.name == "vendor" and path.parent.name == "static":
            found.append(path)
    return found


def notice_entries(notice: str) -> dict[str, list[str]]:
    """NOTICE's entries for vendored folders: a line `<folder>/` at the margin, then its indented lines."""
    entries: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in notice.splitlines():
        if line and not line[0].isspace():
            current = entries.setdefault(line, []) if line.endswith("/") and "/vendor/" in line else None
        elif current is not None and line.strip():
            current.append(line)
    return entries


def licence_problems(root: Path, notice: str) -> list[str]:
    """What is wrong with the vendored files under the root, given the NOTICE text; empty when nothing."""
    entries = notice_entries(notice)
    problems = []
    listed = set()
    for vendor in vendor_folders(root):
        for path in sorted(vendor.iterdir()):
            relative = path.relative_to(root).as_posix()
            if path.is_file():
                if path.name not in _VENDOR_FOLDER_FILES:
                    problems.append(f"{relative}: a vendored file needs a folder of its own with its licence")
                continue
            entry_name = f"{relative}/"
            listed.add(entry_name)
            if not any(_LICENCE_FILE.match(f.name) for f in path.iterdir() if f.is_file()):
                problems.append(
                    f"{entry_name}: no licence file (LICENSE, LICENCE or COPYING) beside the files"
                )
            if entry_name not in entries:
                problems.append(f"{entry_name}: not listed in NOTICE")
                continue
            named = [m["path"] for m in map(_LICENCE_LINE.match, entries[entry_name]) if m]
            if not named:
                problems.append(f"{entry_name}: its NOTICE entry has no 'Licence: <SPDX id>, <file>' line")
            for licence in named:
                if not licence.startswith(entry_name) or not (root / licence).is_file():
                    problems.append(
                        f"{entry_name}: NOTICE names {licence}, which is not a file in the folder"
                    )
    problems.extend(f"{name}: listed in NOTICE but not vendored" for name in entries.keys() - listed)
    return problems


def test_every_vendored_folder_keeps_its_licence_and_is_listed_in_notice() -> None:
    assert vendor_folders(REPO), "the scan found no static/vendor folder at all"
    assert licence_problems(REPO, (REPO / "NOTICE").read_text()) == []


def _vendor(root: Path, folder: str, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / folder / name).parent.mkdir(parents=True, exist_ok=True)
        (root / folder / name).write_text(text)


def test_a_folder_vendored_anywhere_without_a_licence_or_entry_is_reported(tmp_path: Path) -> None:
    _vendor(tmp_path, "console/pages/static/vendor/htmx", {"htmx.min.js": "//"})
    assert licence_problems(tmp_path, "") == [
        "console/pages/static/vendor/htmx/: no licence file (LICENSE, LICENCE or COPYING) beside the files",
        "console/pages/static/vendor/htmx/: not listed in NOTICE",
    ]


def test_a_folder_with_its_licence_and_entry_passes(tmp_path: Path) -> None:
    _vendor(tmp_path, "console/static/vendor/htmx", {"htmx.min.js": "//", "LICENSE": "BSD Zero Clause"})
    notice = (
        "console/static/vendor/htmx/\n  htmx 2.0.4\n  Licence: 0BSD, console/static/vendor/htmx/LICENSE\n"
    )
    assert licence_problems(tmp_path, notice) == []


def test_an_entry_naming_a_missing_licence_file_is_reported(tmp_path: Path) -> None:
    _vendor(tmp_path, "console/static/vendor/axe-core", {"axe.min.js": "//", "LICENSE.txt": "MPL-2.0"})
    notice = "console/static/vendor/axe-core/\n  Licence: MPL-2.0, console/static/vendor/axe-core/LICENSE\n"
    assert licence_problems(tmp_path, notice) == [
        "console/static/vendor/axe-core/: NOTICE names console/static/vendor/axe-core/LICENSE, "
        "which is not a file in the folder"
    ]


def test_a_loose_vendored_file_and_a_stale_entry_are_reported(tmp_path: Path) -> None:
    _vendor(tmp_path, "api/static/vendor", {"README.md": "#", "chart.umd.js": "//"})
    notice = "api/static/vendor/chart/\n  Licence: MIT, api/static/vendor/chart/LICENSE\n"
    assert licence_problems(tmp_path, notice) == [
        "api/static/vendor/chart.umd.js: a vendored file needs a folder of its own with its licence",
        "api/static/vendor/chart/: listed in NOTICE but not vendored",
    ]


def test_the_licence_is_the_apache_2_0_text_the_package_metadata_declares() -> None:
    assert hashlib.sha256((REPO / "LICENSE").read_bytes()).hexdigest() == APACHE_2_0_SHA256
    assert tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["license"] == "Apache-2.0"


@pytest.mark.parametrize("name", ["LICENSE", "NOTICE"])
def test_the_licence_files_ship_in_the_image(name: str) -> None:
    copied = [line for line in (REPO / "Dockerfile").read_text().splitlines() if line.startswith("COPY ")]
    assert any(name in line.split()[1:-1] for line in copied)
