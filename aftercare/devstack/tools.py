"""Finding the command-line tools Aftercare's Python packages install (temporal, temporal-test-server)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def installed_tool(name: str, package: str) -> str:
    """The tool installed beside this Python (the virtual environment), else on PATH."""
    beside_python = Path(sys.executable).parent / name
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"the `{name}` command is missing: install the `{package}` package")
    return found
