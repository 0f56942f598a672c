"""Secrets come from the environment or from files named by `*_FILE`."""

from __future__ import annotations

from pathlib import Path

import pytest

from aftercare.secret_files import SecretFileError
from aftercare.settings import Settings


def test_a_secret_is_read_from_the_file_its_file_variable_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "twilio"
    secret.write_text("token-from-file\n")
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN_FILE", str(secret))

    settings = Settings(_env_file=None)  # type: ignore[call-arg]

    assert settings.twilio_auth_token is not None
    assert settings.twilio_auth_token.get_secret_value() == "token-from-file"
    assert "token-from-file" not in repr(settings)


def test_a_missing_secret_file_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_PASSWORD_FILE", str(tmp_path / "absent"))
    with pytest.raises(SecretFileError, match="SMTP_PASSWORD_FILE"):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_settings_with_their_own_file_field_keep_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FHIR_PRIVATE_KEY_FILE", str(tmp_path / "key.pem"))
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.fhir_private_key is None
    assert settings.fhir_private_key_file == str(tmp_path / "key.pem")
