"""Production refuses to start without authentication and payload encryption configured."""

from __future__ import annotations

from pydantic import SecretStr

from aftercare.security.codec import new_codec_key
from aftercare.security.startup import configuration_problems
from aftercare.settings import Settings


def production(**values: object) -> Settings:
    defaults: dict[str, object] = {
        "aftercare_env": "production",
        "aftercare_dev_api_key": None,
        "aftercare_codec_keys": None,
    }
    return Settings(**{**defaults, **values}, _env_file=None)  # type: ignore[arg-type]


def test_the_default_environment_is_production() -> None:
    assert Settings.model_fields["aftercare_env"].default == "production"


def test_production_without_codec_keys_is_refused() -> None:
    [problem] = configuration_problems(production())
    assert "AFTERCARE_CODEC_KEYS" in problem


def test_production_with_the_development_key_is_refused() -> None:
    problems = configuration_problems(
        production(
            aftercare_codec_keys=SecretStr(new_codec_key("k")), aftercare_dev_api_key=SecretStr("ak_dev_x")
        )
    )
    assert problems == ["AFTERCARE_DEV_API_KEY is for development only: unset it in production"]


def test_an_issuer_without_an_audience_is_refused_everywhere() -> None:
    settings = production(aftercare_env="development", auth_jwt_issuer="https://idp.example")
    assert configuration_problems(settings) == [
        "AUTH_JWT_ISSUER and AUTH_JWT_AUDIENCE go together: set both (or neither)"
    ]


def test_malformed_codec_keys_are_refused() -> None:
    [problem] = configuration_problems(production(aftercare_codec_keys=SecretStr("k1:short")))
    assert problem.startswith("AFTERCARE_CODEC_KEYS: ")


def test_production_with_keys_and_jwt_is_ready() -> None:
    settings = production(
        aftercare_codec_keys=SecretStr(new_codec_key("k")),
        auth_jwt_issuer="https://idp.example",
        auth_jwt_audience="aftercare",
    )
    assert configuration_problems(settings) == []
