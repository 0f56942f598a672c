"""The MLLP listener on its own: framing by the `hl7` package, one patient's messages in turn and
different patients' at once, TLS when configured, and no ACK when processing fails (so the sender
resends)."""

from __future__ import annotations

import asyncio
import datetime
import ssl
from pathlib import Path
from typing import Any, cast

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hl7.mllp import open_hl7_connection

from aftercare.hl7v2.acks import build_ack
from aftercare.hl7v2.intake import AdtIntake, Handled
from aftercare.hl7v2.messages import V2Message
from aftercare.hl7v2.server import MllpListener, ordering_key, tls_context
from tests.aftercare.hl7v2.samples import sample, with_control_id


class SlowIntake:
    """Answers AA after a pause, recording when each message started and ended."""

    def __init__(self, fail: bool = False) -> None:
        self.log: list[tuple[str, str]] = []
        self.fail = fail

    async def handle(self, text: str) -> Handled:
        control = V2Message(text).header.control_id
        self.log.append(("start", control))
        await asyncio.sleep(0.2)
        if self.fail:
            raise ConnectionError("the database is down")
        self.log.append(("end", control))
        return Handled(build_ack(V2Message(text).header, "AA"), "AA")


async def listen(intake: SlowIntake, tls: ssl.SSLContext | None = None) -> Any:
    return await MllpListener(cast(AdtIntake, intake)).start("127.0.0.1", 0, tls=tls)


async def exchange(port: int, text: str, tls: ssl.SSLContext | None = None) -> str:
    reader, writer = await open_hl7_connection("127.0.0.1", port, ssl=tls)
    try:
        writer.writemessage(text)
        await writer.drain()
        return str((await reader.readmessage()).segment("MSA")[1])
    finally:
        writer.close()


def other_patient(text: str, control_id: str) -> str:
    return with_control_id(text.replace("MRN12345", "MRN55555").replace("999-12-3456", "000"), control_id)


async def test_one_patients_messages_take_turns_across_connections() -> None:
    intake = SlowIntake()
    server = await listen(intake)
    port = server.sockets[0].getsockname()[1]
    async with server:
        await asyncio.gather(
            exchange(port, sample("a01_admit")),
            exchange(port, with_control_id(sample("a03_discharge"), "X2")),
        )

    assert [kind for kind, _ in intake.log] == ["start", "end", "start", "end"]


async def test_different_patients_are_processed_at_once() -> None:
    intake = SlowIntake()
    server = await listen(intake)
    port = server.sockets[0].getsockname()[1]
    async with server:
        await asyncio.gather(
            exchange(port, sample("a01_admit")), exchange(port, other_patient(sample("a01_admit"), "X3"))
        )

    assert [kind for kind, _ in intake.log][:2] == ["start", "start"]


async def test_a_failure_closes_the_connection_without_an_ack() -> None:
    server = await listen(SlowIntake(fail=True))
    port = server.sockets[0].getsockname()[1]
    async with server:
        with pytest.raises((asyncio.IncompleteReadError, ConnectionError)):
            await exchange(port, sample("a01_admit"))


async def test_mllp_over_tls(tmp_path: Path) -> None:
    certificate, key = self_signed(tmp_path)
    server = await listen(SlowIntake(), tls_context(str(certificate), str(key)))
    client = ssl.create_default_context(cafile=str(certificate))
    port = server.sockets[0].getsockname()[1]
    async with server:
        reader, writer = await open_hl7_connection("127.0.0.1", port, ssl=client, server_hostname="localhost")
        writer.writemessage(sample("a01_admit"))
        await writer.drain()
        ack = await reader.readmessage()
        writer.close()

    assert str(ack.segment("MSA")[1]) == "AA"


def test_the_ordering_key_is_the_first_patient_identifier_and_its_authority() -> None:
    assert ordering_key(sample("a03_discharge")) == "MRN12345|GENHOSP"
    assert ordering_key("not hl7") == ""


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certificate_file, key_file = directory / "cert.pem", directory / "key.pem"
    certificate_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return certificate_file, key_file
