"""The console's vendored files (htmx) and the tests' axe-core are the ones recorded, with their
licences."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from console.rendering import STATIC

AXE_DIRECTORY = Path(__file__).resolve().parents[1] / "vendor" / "axe-core"


def test_the_vendored_files_are_the_ones_recorded() -> None:
    for directory in (STATIC / "vendor", AXE_DIRECTORY):
        recorded = re.findall(r"\| `([^`]+)` \| `([0-9a-f]{64})` \|", (directory / "README.md").read_text())
        assert recorded, directory
        for name, digest in recorded:
            assert hashlib.sha256((directory / name).read_bytes()).hexdigest() == digest, name
    assert (STATIC / "vendor" / "htmx" / "LICENSE").exists()
    assert (AXE_DIRECTORY / "LICENSE").exists()
