"""Reaching a Temporal cluster over mutual TLS, as a production cluster or Temporal Cloud asks. The dev
server speaks plain gRPC, so a TLS proxy of this test (Python's `ssl`, requiring a client certificate
signed by the test's CA) stands in front of it: the client's TLS is real, the server behind is real."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from temporalio.service import TLSConfig
from temporalio.testing import WorkflowEnvironment

from aftercare.settings import Settings
from aftercare.temporal.client import TemporalTLSError, connect_temporal, temporal_tls


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[str, ec.EllipticCurvePrivateKey] | None,
    *,
    usage: x509.ObjectIdentifier | None = None,
) -> x509.Certificate:
    issuer_name, issuer_key = issuer or (subject, key)
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if usage == ExtendedKeyUsageOID.SERVER_AUTH:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> tuple[Path, Path]:
    cert_file, key_file = path.with_suffix(".crt"), path.with_suffix(".key")
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Path]:
    """A CA, a server certificate for `temporal.hospital.test` and a client certificate it signed."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("Aftercare test CA", ca_key, None)
    server_key, client_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    server = _certificate(
        "temporal.hospital.test",
        server_key,
        ("Aftercare test CA", ca_key),
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
    )
    client = _certificate(
        "aftercare-worker", client_key, ("Aftercare test CA", ca_key), usage=ExtendedKeyUsageOID.CLIENT_AUTH
    )
    ca_file, _ = _write(tmp_path / "ca", ca, ca_key)
    server_cert, server_key_file = _write(tmp_path / "server", server, server_key)
    client_cert, client_key_file = _write(tmp_path / "client", client, client_key)
    return {
        "ca": ca_file,
        "server_cert": server_cert,
        "server_key": server_key_file,
        "client_cert": client_cert,
        "client_key": client_key_file,
    }


@contextlib.asynccontextmanager
async def tls_proxy(upstream: str, pki: dict[str, Path]) -> AsyncIterator[str]:
    """A TLS endpoint that asks for a client certificate of the CA and relays to `upstream`."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki["ca"]))
    context.load_cert_chain(pki["server_cert"], pki["server_key"])
    context.verify_mode = ssl.CERT_REQUIRED
    context.set_alpn_protocols(["h2"])
    host, port = upstream.rsplit(":", 1)

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def relay(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection(host, int(port))
        await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))

    server = await asyncio.start_server(relay, "127.0.0.1", 0, ssl=context)
    try:
        yield f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()


def _settings(address: str, **tls: str) -> Settings:
    return Settings(temporal_address=address, _env_file=None, **tls)  # type: ignore[call-arg]


async def test_a_client_with_its_certificate_reaches_temporal_through_mutual_tls(
    dev_server: WorkflowEnvironment, pki: dict[str, Path]
) -> None:
    async with tls_proxy(dev_server.client.service_client.config.target_host, pki) as address:
        settings = _settings(
            address,
            temporal_tls_cert_file=str(pki["client_cert"]),
            temporal_tls_key_file=str(pki["client_key"]),
            temporal_tls_ca_file=str(pki["ca"]),
            temporal_tls_server_name="temporal.hospital.test",
        )
        client = await connect_temporal(settings)
        assert await client.service_client.check_health()


async def test_a_client_without_a_certificate_is_turned_away(
    dev_server: WorkflowEnvironment, pki: dict[str, Path]
) -> None:
    async with tls_proxy(dev_server.client.service_client.config.target_host, pki) as address:
        settings = _settings(
            address, temporal_tls_ca_file=str(pki["ca"]), temporal_tls_server_name="temporal.hospital.test"
        )
        with pytest.raises(RuntimeError):
            await connect_temporal(settings)


def test_plain_unless_tls_is_asked_for_and_tls_with_an_api_key() -> None:
    assert temporal_tls(_settings("localhost:7233")) is False
    assert temporal_tls(_settings("x.tmprl.cloud:7233", temporal_tls="true")) is True
    assert temporal_tls(_settings("x.tmprl.cloud:7233", temporal_api_key="key")) is True


def test_half_a_key_pair_or_an_unreadable_file_is_a_clear_error(pki: dict[str, Path]) -> None:
    with pytest.raises(TemporalTLSError, match="set together"):
        temporal_tls(_settings("t:7233", temporal_tls_cert_file=str(pki["client_cert"])))
    with pytest.raises(TemporalTLSError, match="TEMPORAL_TLS_CA_FILE names"):
        temporal_tls(_settings("t:7233", temporal_tls_ca_file="/nonexistent/ca.pem"))
    config = temporal_tls(_settings("t:7233", temporal_tls_ca_file=str(pki["ca"])))
    assert isinstance(config, TLSConfig)
    assert config.server_root_ca_cert == pki["ca"].read_bytes()
