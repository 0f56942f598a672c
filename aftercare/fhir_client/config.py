"""Building a `FhirClient` from configuration: the `FHIR_*` settings for the default source, or a
registered source whose `auth` names the environment variables (or files) holding its secrets."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

from aftercare.fhir_client.auth import Auth, BearerToken, ClientCredentials, NoAuth, SmartBackendServices
from aftercare.fhir_client.client import FhirClient
from aftercare.fhir_client.errors import FhirConfigError
from aftercare.fhir_client.tls import ClientCert
from aftercare.settings import Settings

AUTH_KINDS = ("none", "bearer", "client_credentials", "smart_backend")


class SourceRow(Protocol):
    """What a registered source provides (`models.tables.FhirSource`)."""

    @property
    def base_url(self) -> str: ...

    @property
    def auth(self) -> dict[str, Any]: ...


def client_for_settings(settings: Settings) -> FhirClient | None:
    """The default source's client, or None when `FHIR_BASE_URL` is unset."""
    if not settings.fhir_base_url:
        return None
    cert: ClientCert | None = None
    if settings.fhir_client_cert:
        cert = (
            (settings.fhir_client_cert, settings.fhir_client_key)
            if settings.fhir_client_key
            else settings.fhir_client_cert
        )
    return FhirClient(
        settings.fhir_base_url,
        auth=_settings_auth(settings),
        timeout=settings.fhir_timeout_seconds,
        verify=settings.fhir_ca_bundle or settings.fhir_verify_tls,
        cert=cert,
    )


def _settings_auth(settings: Settings) -> Auth:
    kind = settings.fhir_auth
    base_url = settings.fhir_base_url
    if kind == "bearer":
        if settings.fhir_bearer_token is None:
            raise FhirConfigError("FHIR_AUTH=bearer needs FHIR_BEARER_TOKEN")
        return BearerToken(settings.fhir_bearer_token.get_secret_value())
    if kind == "client_credentials":
        secret = settings.fhir_client_secret.get_secret_value() if settings.fhir_client_secret else ""
        return ClientCredentials(
            settings.fhir_token_url,
            settings.fhir_client_id or "",
            secret,
            settings.fhir_scope,
            base_url=base_url,
        )
    if kind == "smart_backend":
        key = _private_key(settings)
        return SmartBackendServices(
            settings.fhir_client_id or "",
            key,
            settings.fhir_key_id or "",
            "ES384" if settings.fhir_signing_algorithm == "ES384" else "RS384",
            settings.fhir_token_url,
            settings.fhir_scope,
            base_url=base_url,
        )
    return NoAuth()


def _private_key(settings: Settings) -> str:
    if settings.fhir_private_key is not None:
        return settings.fhir_private_key.get_secret_value()
    if settings.fhir_private_key_file:
        return _read_file(settings.fhir_private_key_file, "FHIR_PRIVATE_KEY_FILE")
    raise FhirConfigError("FHIR_AUTH=smart_backend needs FHIR_PRIVATE_KEY or FHIR_PRIVATE_KEY_FILE")


def client_for_source(source: SourceRow, *, timeout: float = 30.0) -> FhirClient:
    """A registered source's client; its secrets are read now from the environment or files it names."""
    auth = source.auth or {"kind": "none"}
    tls = auth.get("tls") or {}
    cert: ClientCert | None = None
    if tls.get("client_cert"):
        cert = (tls["client_cert"], tls["client_key"]) if tls.get("client_key") else tls["client_cert"]
    verify: bool | str = tls.get("ca_bundle") or bool(tls.get("verify", True))
    return FhirClient(
        source.base_url,
        auth=auth_for_source(auth, source.base_url),
        timeout=float(auth.get("timeout_seconds") or timeout),
        verify=verify,
        cert=cert,
    )


def auth_for_source(auth: dict[str, Any], base_url: str) -> Auth:
    """The `Auth` a source's `auth` document describes (see `models.fhir_sources.SourceRequest`)."""
    kind = auth.get("kind", "none")
    if kind == "none":
        return NoAuth()
    if kind == "bearer":
        return BearerToken(secret_named(auth, "token"))
    if kind == "client_credentials":
        return ClientCredentials(
            auth.get("token_url"),
            str(auth.get("client_id") or ""),
            secret_named(auth, "client_secret"),
            auth.get("scope"),
            base_url=base_url,
        )
    if kind == "smart_backend":
        algorithm = auth.get("algorithm", "RS384")
        if algorithm not in ("RS384", "ES384"):
            raise FhirConfigError(f"signing algorithm must be RS384 or ES384, not {algorithm!r}")
        return SmartBackendServices(
            str(auth.get("client_id") or ""),
            secret_named(auth, "private_key"),
            str(auth.get("key_id") or ""),
            algorithm,
            auth.get("token_url"),
            auth.get("scope") or "system/*.rs",
            base_url=base_url,
        )
    raise FhirConfigError(f"auth kind must be one of {', '.join(AUTH_KINDS)}, not {kind!r}")


def check_source_auth(auth: dict[str, Any]) -> list[str]:
    """What is wrong with a source's `auth` document, without reading any secret (empty when fine)."""
    kind = auth.get("kind", "none")
    if kind not in AUTH_KINDS:
        return [f"auth.kind must be one of {', '.join(AUTH_KINDS)}"]
    needed = {
        "none": [],
        "bearer": ["token"],
        "client_credentials": ["client_id", "client_secret"],
        "smart_backend": ["client_id", "private_key", "key_id"],
    }[kind]
    problems = []
    for name in needed:
        if name in ("client_id", "key_id"):
            if not auth.get(name):
                problems.append(f"auth.{name} is required for {kind}")
        elif not (auth.get(f"{name}_env") or auth.get(f"{name}_file")):
            problems.append(f"auth.{name}_env or auth.{name}_file is required for {kind}")
    if kind == "smart_backend" and auth.get("algorithm", "RS384") not in ("RS384", "ES384"):
        problems.append("auth.algorithm must be RS384 or ES384")
    for name in auth:
        if name in ("token", "client_secret", "private_key", "secret", "password"):
            problems.append(f"auth.{name} must not hold a secret; name an environment variable or file")
    return sorted(set(problems))


def secret_named(auth: dict[str, Any], name: str) -> str:
    """The secret `auth` names as `<name>_env` (an environment variable) or `<name>_file`."""
    variable = auth.get(f"{name}_env")
    if variable:
        value = os.environ.get(str(variable))
        if not value:
            raise FhirConfigError(f"environment variable {variable} (auth.{name}_env) is not set")
        return value
    path = auth.get(f"{name}_file")
    if path:
        return _read_file(str(path), f"auth.{name}_file")
    raise FhirConfigError(f"auth.{name}_env or auth.{name}_file is required")


def _read_file(path: str, what: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError as error:
        raise FhirConfigError(f"{what} cannot be read: {error.strerror}") from error
