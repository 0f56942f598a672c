"""The version is one, SemVer, and has its CHANGELOG.md entry; every migration is named in the changelog.
`make release-check` runs these with the upgrade from each release (tests/aftercare/db/test_release_upgrades.py).
"""

from __future__ import annotations

import importlib.metadata
import re

import pytest
from alembic.script import ScriptDirectory

import aftercare
from aftercare.cli import main
from aftercare.db.migrate import alembic_config
from tests.project.changelog import releases, sections

_SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?$")
_CHANGE_TYPES = {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}


def _revisions_oldest_first() -> list[str]:
    scripts = ScriptDirectory.from_config(alembic_config("postgresql://unused/unused"))
    return [script.revision for script in reversed(list(scripts.walk_revisions()))]


def test_the_current_version_has_a_dated_changelog_entry() -> None:
    dated = {release.name: release.date for release in releases()}
    assert aftercare.__version__ in dated, f"CHANGELOG.md has no '## [{aftercare.__version__}] - date'"
    assert dated[aftercare.__version__] is not None


def test_the_changelog_starts_with_unreleased_then_semver_releases_newest_first() -> None:
    names = [section.name for section in sections()]
    assert names[0] == "Unreleased"
    versions = [tuple(int(part) for part in name.split("-")[0].split(".")) for name in names[1:]]
    assert all(_SEMVER.match(name) for name in names[1:]), names
    assert versions == sorted(versions, reverse=True)
    dates = [release.date for release in releases()]
    assert dates == sorted(dates, reverse=True)


def test_changes_are_grouped_under_keep_a_changelog_headings() -> None:
    for section in sections():
        headings = re.findall(r"^### (.+)$", section.text, re.MULTILINE)
        assert set(headings) <= _CHANGE_TYPES, (section.name, headings)


def test_every_migration_is_named_once_and_each_section_names_its_head() -> None:
    revisions = _revisions_oldest_first()
    named: list[str] = []
    for section in reversed(sections()):  # oldest first, as the database moves
        assert section.migrations_paragraph, f"[{section.name}] has no 'Database migrations:' paragraph"
        named.extend(section.migrations)
        assert named == revisions[: len(named)], f"[{section.name}] names {section.migrations}"
        assert section.head == named[-1], f"[{section.name}] says head {section.head}, not {named[-1]}"
    assert named == revisions, f"migrations not named in CHANGELOG.md: {revisions[len(named) :]}"


def test_the_package_metadata_and_the_command_report_the_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert importlib.metadata.version("aftercare") == aftercare.__version__
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"aftercare {aftercare.__version__}\n"
