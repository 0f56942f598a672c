"""The one function that builds a Temporal client: always the pydantic data converter, and the payload
codec that encrypts every payload (aftercare/security/codec.py) whenever codec keys are configured."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeIndexedValueType
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.service import RetryConfig, RPCError, RPCStatusCode, TLSConfig

from aftercare.security.codec import CodecKeyError, EncryptionCodec, parse_codec_keys
from aftercare.settings import Settings
from aftercare.temporal.interceptors import ConnectionFreeCalls
from models.search_attributes import ALL_SEARCH_ATTRIBUTES

_CLI_TYPE_NAMES = {
    SearchAttributeIndexedValueType.KEYWORD: "Keyword",
    SearchAttributeIndexedValueType.INT: "Int",
    SearchAttributeIndexedValueType.TEXT: "Text",
    SearchAttributeIndexedValueType.DOUBLE: "Double",
    SearchAttributeIndexedValueType.BOOL: "Bool",
    SearchAttributeIndexedValueType.DATETIME: "Datetime",
    SearchAttributeIndexedValueType.KEYWORD_LIST: "KeywordList",
}


def payload_codec(settings: Settings) -> EncryptionCodec | None:
    """The codec from `AFTERCARE_CODEC_KEYS`; none in development without keys, an error in production."""
    if settings.aftercare_codec_keys is not None:
        return EncryptionCodec(parse_codec_keys(settings.aftercare_codec_keys.get_secret_value()))
    if not settings.development:
        raise CodecKeyError(
            "AFTERCARE_CODEC_KEYS (or AFTERCARE_CODEC_KEYS_FILE) must be set in production: every Temporal "
            "payload is encrypted with it"
        )
    return None


def encrypting_converter(codec: EncryptionCodec | None) -> DataConverter:
    """The pydantic converter with `codec` on payloads and on failure messages and stack traces."""
    if codec is None:
        return pydantic_data_converter
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def data_converter(settings: Settings) -> DataConverter:
    """The converter every Temporal client of these settings uses (API, worker, CLI, tests)."""
    return encrypting_converter(payload_codec(settings))


# A request waiting on Temporal gives up after about this long in all, so that during an outage the
# caller gets a prompt 503 with Retry-After instead of a hung connection (the default keeps trying
# for 10 s per call).
REQUEST_RETRIES = RetryConfig(
    initial_interval_millis=100,
    randomization_factor=0.2,
    multiplier=1.5,
    max_interval_millis=1000,
    max_elapsed_time_millis=2500,
    max_retries=5,
)
REQUEST_CONNECT_TIMEOUT = timedelta(seconds=3)


class TemporalTLSError(ValueError):
    """The Temporal TLS settings name a file that cannot be read, or half of a key pair."""


def _read(path: str, setting: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise TemporalTLSError(f"{setting} names {path!r}, which cannot be read: {error.strerror}") from error


def temporal_tls(settings: Settings) -> TLSConfig | bool:
    """How to reach Temporal: plain (False), TLS with the system's roots (True), or the TLSConfig of
    the `TEMPORAL_TLS_*` files (mutual TLS with a client certificate, a private CA, a server name)."""
    cert, key = settings.temporal_tls_cert_file, settings.temporal_tls_key_file
    if bool(cert) != bool(key):
        raise TemporalTLSError(
            "TEMPORAL_TLS_CERT_FILE and TEMPORAL_TLS_KEY_FILE are set together or not at all"
        )
    ca, server_name = settings.temporal_tls_ca_file, settings.temporal_tls_server_name
    if (cert and key) or ca or server_name:
        return TLSConfig(
            client_cert=_read(cert, "TEMPORAL_TLS_CERT_FILE") if cert else None,
            client_private_key=_read(key, "TEMPORAL_TLS_KEY_FILE") if key else None,
            server_root_ca_cert=_read(ca, "TEMPORAL_TLS_CA_FILE") if ca else None,
            domain=server_name,
        )
    return settings.temporal_tls or settings.temporal_api_key is not None


async def connect_temporal(
    settings: Settings, *, lazy: bool = False, retry_config: RetryConfig | None = None
) -> Client:
    """A client for the configured server and namespace; `lazy` defers the connection to first use;
    `retry_config` bounds each call's retries (`REQUEST_RETRIES` for request handlers)."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings),
        interceptors=[ConnectionFreeCalls()],
        lazy=lazy,
        retry_config=retry_config,
        connect_timeout=REQUEST_CONNECT_TIMEOUT if retry_config is not None else None,
        tls=temporal_tls(settings),
        api_key=settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None,
    )


async def ensure_search_attributes(client: Client) -> list[str]:
    """Register Aftercare's search attributes in the client's namespace; returns the ones added.

    Servers without the list call (the time-skipping test server) get every attribute added.
    """
    wanted = {
        key.name: IndexedValueType.ValueType(int(key.indexed_value_type)) for key in ALL_SEARCH_ATTRIBUTES
    }
    try:
        existing = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
    except RPCError as error:
        if error.status != RPCStatusCode.UNIMPLEMENTED:
            raise
    else:
        known = set(existing.custom_attributes) | set(existing.system_attributes)
        wanted = {name: kind for name, kind in wanted.items() if name not in known}
    if not wanted:
        return []
    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=wanted)
        )
    except RPCError as error:
        if error.status != RPCStatusCode.ALREADY_EXISTS:
            raise
    return sorted(wanted)


def dev_server_search_attribute_args() -> list[str]:
    """`--search-attribute Name=Type` arguments for `temporal server start-dev`."""
    args: list[str] = []
    for key in ALL_SEARCH_ATTRIBUTES:
        args += ["--search-attribute", f"{key.name}={_CLI_TYPE_NAMES[key.indexed_value_type]}"]
    return args
