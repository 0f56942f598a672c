"""The MLLP listener on its own: framing by the `hl7` package, group commit (messages arriving
together on several connections, or pipelined on one, go to the intake as one batch in arrival order,
each ACKed after its batch), TLS when configured, and no ACK when processing fails (so the sender
resends)."""

from __future__ import annotations

import asyncio
import datetime
import ssl
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hl7.mllp import open_hl7_connection

from aftercare.hl7v2.acks import build_ack
from aftercare.hl7v2.intake import Handled, patient_key
from aftercare.hl7v2.messages import V2Message
from aftercare.hl7v2.server import GATHER, MllpListener, tls_context
from tests.aftercare.hl7v2.samples import sample, with_control_id


class SlowIntake:
    """Answers AA after a pause per batch, recording each batch's control ids; fails the control ids
    it is told to."""

    def __init__(self, fail: Sequence[str] = ()) -> None:
        self.batches: list[list[str]] = []
        self.times: list[tuple[float, float]] = []  # each batch's start and end
        self.fail = set(fail)

    async def handle_batch(self, texts: Sequence[str]) -> list[Handled | Exception]:
        headers = [V2Message(text).header for text in texts]
        self.batches.append([header.control_id for header in headers])
        started = asyncio.get_running_loop().time()
        await asyncio.sleep(0.2)
        self.times.append((started, asyncio.get_running_loop().time()))
        return [
            ConnectionError("the database is down")
            if header.control_id in self.fail
            else Handled(build_ack(header, "AA"), "AA")
            for header in headers
        ]


async def listen(intake: SlowIntake, tls: ssl.SSLContext | None = None) -> Any:
    return await MllpListener(intake).start("127.0.0.1", 0, tls=tls)


async def exchange(port: int, *texts: str, tls: ssl.SSLContext | None = None) -> list[str]:
    """Send the messages back to back on one connection (pipelined), then read their ACKs' MSA."""
    reader, writer = await open_hl7_connection("127.0.0.1", port, ssl=tls)
    try:
        for text in texts:
            writer.writemessage(text)
        await writer.drain()
        answers = []
        for _ in texts:
            segment = (await reader.readmessage()).segment("MSA")
            answers.append(f"{segment[1]} {segment[2]}")
        return answers
    finally:
        writer.close()


def other_patient(text: str, control_id: str) -> str:
    return with_control_id(text.replace("MRN12345", "MRN55555").replace("999-12-3456", "000"), control_id)


async def test_one_patients_messages_wait_for_their_running_batch_and_go_together_in_order() -> None:
    intake = SlowIntake()
    server = await listen(intake)
    port = server.sockets[0].getsockname()[1]
    async with server:
        first = asyncio.create_task(exchange(port, with_control_id(sample("a01_admit"), "X0")))
        await asyncio.sleep(0.05)  # X0's batch is under way; X1 and X2 are about the same patient
        later = [
            exchange(port, with_control_id(sample("a01_admit"), "X1")),
            exchange(port, with_control_id(sample("a03_discharge"), "X2")),
        ]
        answers = await asyncio.gather(first, *later)

    assert answers == [["AA X0"], ["AA X1"], ["AA X2"]]
    assert intake.batches == [["X0"], ["X1", "X2"]]


async def test_messages_that_pile_up_go_in_a_second_batch_beside_the_running_one() -> None:
    intake = SlowIntake()
    server = await listen(intake)
    port = server.sockets[0].getsockname()[1]
    others = [
        other_patient(sample("a01_admit" if n % 2 else "a02_transfer"), f"Y{n}") for n in range(1, GATHER + 1)
    ]
    async with server:
        first = asyncio.create_task(exchange(port, with_control_id(sample("a01_admit"), "Y0")))
        await asyncio.sleep(0.05)
        answers = await exchange(port, *others)  # pipelined: GATHER waiting at once
        await first

    assert answers == [f"AA Y{n}" for n in range(1, GATHER + 1)]
    assert intake.batches == [["Y0"], [f"Y{n}" for n in range(1, GATHER + 1)]]
    (_, y0_ended), (others_started, _) = sorted(intake.times)
    assert others_started < y0_ended  # they did not wait for Y0


async def test_a_lone_message_waits_for_the_running_batch_and_goes_with_what_came_meanwhile() -> None:
    intake = SlowIntake()
    server = await listen(intake)
    port = server.sockets[0].getsockname()[1]
    async with server:
        first = asyncio.create_task(exchange(port, with_control_id(sample("a01_admit"), "W0")))
        await asyncio.sleep(0.05)
        lone = asyncio.create_task(exchange(port, other_patient(sample("a01_admit"), "W1")))
        await asyncio.sleep(0.05)
        answers = await asyncio.gather(
            first, lone, exchange(port, with_control_id(sample("a08_update"), "W2"))
        )

    assert answers == [["AA W0"], ["AA W1"], ["AA W2"]]
    assert intake.batches == [["W0"], ["W1", "W2"]]


async def test_a_merge_runs_alone_and_what_follows_waits_for_it() -> None:
    intake = SlowIntake()
    server = await listen(intake)
    port = server.sockets[0].getsockname()[1]
    async with server:
        first = asyncio.create_task(exchange(port, other_patient(sample("a01_admit"), "Z0")))
        await asyncio.sleep(0.05)
        merge = asyncio.create_task(exchange(port, with_control_id(sample("a40_merge"), "Z1")))
        await asyncio.sleep(0.05)
        after = exchange(port, with_control_id(sample("a04_register"), "Z2"))
        await asyncio.gather(first, merge, after)

    assert intake.batches == [["Z0"], ["Z1"], ["Z2"]]
    (_, z0_ended), (z1_started, z1_ended), (z2_started, _) = intake.times
    assert z1_started >= z0_ended
    assert z2_started >= z1_ended


async def test_a_pipelining_sender_gets_its_acks_in_the_order_of_its_messages() -> None:
    intake = SlowIntake()
    server = await listen(intake)
    port = server.sockets[0].getsockname()[1]
    texts = [with_control_id(sample("a08_update"), f"P{n}") for n in range(6)]
    async with server:
        answers = await exchange(port, *texts)

    assert answers == [f"AA P{n}" for n in range(6)]
    assert [control for batch in intake.batches for control in batch] == [f"P{n}" for n in range(6)]
    assert len(intake.batches) < 6  # the messages that waited were committed together


async def test_a_failure_closes_the_connection_without_an_ack() -> None:
    server = await listen(SlowIntake(fail=["MSG0001"]))
    port = server.sockets[0].getsockname()[1]
    async with server:
        with pytest.raises((asyncio.IncompleteReadError, ConnectionError)):
            await exchange(port, sample("a01_admit"))


async def test_a_failed_message_in_a_batch_leaves_the_others_answered() -> None:
    intake = SlowIntake(fail=["F1"])
    server = await listen(intake)
    port = server.sockets[0].getsockname()[1]
    async with server:
        first = asyncio.create_task(exchange(port, other_patient(sample("a08_update"), "F0")))
        await asyncio.sleep(0.05)
        failing, healthy = await asyncio.gather(
            exchange(port, other_patient(sample("a01_admit"), "F1")),
            exchange(port, other_patient(sample("a03_discharge"), "F2")),
            return_exceptions=True,
        )
        await first

    assert isinstance(failing, (asyncio.IncompleteReadError, ConnectionError))
    assert healthy == ["AA F2"]
    assert intake.batches[1] == ["F1", "F2"]


async def test_senders_waiting_for_their_acks_on_several_connections_go_in_one_batch() -> None:
    """Idle, the listener gives the other open connections a moment to send theirs: the message of
    the first connection waits for the second's instead of going alone; once every open connection
    has sent one, the batch goes without waiting any longer."""
    intake = SlowIntake()
    server = await MllpListener(intake, gather_wait=0.5).start("127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        idle = await open_hl7_connection("127.0.0.1", port)  # open, sending nothing
        first = asyncio.create_task(exchange(port, other_patient(sample("a01_admit"), "G1")))
        await asyncio.sleep(0.1)
        second = asyncio.create_task(exchange(port, with_control_id(sample("a01_admit"), "G2")))
        answers = await asyncio.gather(first, second)
        idle[1].close()
        await asyncio.sleep(0.1)  # the listener sees the connections close
        started = asyncio.get_running_loop().time()
        alone = await exchange(port, with_control_id(sample("a08_update"), "G3"))  # the only connection
        took = asyncio.get_running_loop().time() - started

    assert answers == [["AA G1"], ["AA G2"]]
    assert intake.batches == [["G1", "G2"], ["G3"]]
    assert alone == ["AA G3"]
    assert took < 0.5  # one connection open: nobody to wait for


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


def test_the_patient_key_is_the_first_patient_identifier_and_its_authority() -> None:
    assert patient_key(V2Message(sample("a03_discharge"))) == "MRN12345|GENHOSP"
    assert patient_key(V2Message("MSH|^~\\&|A|B|C|D|20260101||ADT^A01|1|P|2.5.1\r")) == ""


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
