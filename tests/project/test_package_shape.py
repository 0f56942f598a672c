"""The shape of the code a newcomer reads: every package opens with a one-line docstring saying what it
owns, and the import contracts (`[tool.importlinter]`, run by `lint-imports` in `make test`) cover every
top-level package the distribution ships."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

from tests.conftest import REPO

_PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
# Alembic's script directory: loaded by Alembic from its path, not imported as a package.
_NOT_PACKAGES = {
    REPO / "aftercare" / "db" / "migrations",
    REPO / "aftercare" / "db" / "migrations" / "versions",
}


def _top_level_packages() -> list[str]:
    patterns = _PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    return sorted(pattern.removesuffix("*") for pattern in patterns)


def _code_folders() -> list[Path]:
    folders = set()
    for top in _top_level_packages():
        for module in (REPO / top).rglob("*.py"):
            if module.parent not in _NOT_PACKAGES:
                folders.add(module.parent)
    return sorted(folders)


def test_the_import_contracts_cover_every_shipped_package() -> None:
    assert sorted(_PYPROJECT["tool"]["importlinter"]["root_packages"]) == _top_level_packages()


@pytest.mark.parametrize("folder", _code_folders(), ids=lambda folder: str(folder.relative_to(REPO)))
def test_every_package_opens_with_a_line_saying_what_it_owns(folder: Path) -> None:
    init = folder / "__init__.py"
    assert init.exists(), f"{folder.relative_to(REPO)} holds Python modules but is not a package"
    docstring = ast.get_docstring(ast.parse(init.read_text()))
    assert docstring, f"{init.relative_to(REPO)} has no docstring"
    summary = docstring.splitlines()[0]
    assert summary.endswith((".", ")")), f"{init.relative_to(REPO)}: the first line is not a whole sentence"
    assert len('"""' + summary) <= 110, f"{init.relative_to(REPO)}: the first line is longer than a line"
