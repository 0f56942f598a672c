"""Secrets read from files: for every secret setting `X`, the variable `X_FILE` may name a file holding
it (Docker and Kubernetes secrets), so secrets come only from the environment or a file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import PydanticBaseSettingsSource


class SecretFileError(ValueError):
    """A `*_FILE` variable names a file that cannot be read."""


def _is_secret(field: FieldInfo) -> bool:
    annotation = field.annotation
    return annotation is SecretStr or SecretStr in getattr(annotation, "__args__", ())


class SecretFilesSource(PydanticBaseSettingsSource):
    """`X_FILE` for each `SecretStr` setting `X` (unless the settings have their own `x_file` field)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """The secret read from the file named by `{FIELD}_FILE`, if that variable is set."""
        variable = f"{field_name.upper()}_FILE"
        if not _is_secret(field) or f"{field_name}_file" in self.settings_cls.model_fields:
            return None, field_name, False
        path = os.environ.get(variable)
        if not path:
            return None, field_name, False
        try:
            return Path(path).read_text().strip(), field_name, False
        except OSError as error:
            raise SecretFileError(
                f"{variable} names {path!r}, which cannot be read: {error.strerror}"
            ) from error

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(field, name)
            if value is not None:
                values[key] = value
        return values
