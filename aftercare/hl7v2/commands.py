"""`aftercare mllp` (serve), `aftercare mllp parked` (list) and `aftercare mllp retry ID`."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aftercare.settings import Settings

DEFAULT_PORT = 2575  # the port IANA registered for HL7


def add_mllp_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `mllp` command and its two operator subcommands."""
    mllp = commands.add_parser("mllp", help="receive HL7 v2 ADT messages over MLLP (TCP)")
    mllp.add_argument("--host", default="0.0.0.0", help="interface to listen on")  # noqa: S104
    mllp.add_argument("--port", type=int, default=DEFAULT_PORT, help="the registered HL7 port is 2575")
    mllp.add_argument("--tls-cert", help="PEM certificate (chain): MLLP over TLS")
    mllp.add_argument("--tls-key", help="PEM private key of --tls-cert")
    mllp.add_argument(
        "--processes",
        type=int,
        default=1,
        help="listener processes sharing the port (SO_REUSEPORT); each patient's messages stay in order",
    )
    mllp.add_argument("--share-port", action="store_true", help=argparse.SUPPRESS)  # one of --processes
    actions = mllp.add_subparsers(dest="mllp_command", metavar="{parked,retry}")
    actions.add_parser("parked", help="list messages answered AE or AR, with their reasons")
    retry = actions.add_parser("retry", help="process a parked message again")
    retry.add_argument("message_id", type=int)


async def run_mllp_command(settings: Settings, arguments: argparse.Namespace) -> int:
    """Serve, list or retry; the exit status."""
    from aftercare.hl7v2.server import adt_intake, run_mllp, tls_context
    from aftercare.store.adt_messages import parked_adt_messages

    if arguments.mllp_command is None:
        if bool(arguments.tls_cert) != bool(arguments.tls_key):
            print("aftercare mllp: --tls-cert and --tls-key go together", file=sys.stderr)
            return 2
        if arguments.processes < 1:
            print("aftercare mllp: --processes is at least 1", file=sys.stderr)
            return 2
        tls = tls_context(arguments.tls_cert, arguments.tls_key) if arguments.tls_cert else None
        tls_arguments = ["--tls-cert", arguments.tls_cert, "--tls-key", arguments.tls_key] if tls else []
        return await run_mllp(
            settings,
            arguments.host,
            arguments.port,
            tls=tls,
            processes=1 if arguments.share_port else arguments.processes,
            share_port=arguments.share_port,
            tls_arguments=tls_arguments,
        )
    async with adt_intake(settings) as intake:
        if arguments.mllp_command == "parked":
            async with intake.sessions.begin() as session:
                rows = await parked_adt_messages(session)
                for row in rows:
                    fields = [
                        row.id,
                        f"{row.received_at:%Y-%m-%dT%H:%M:%S}",
                        row.sending_facility,
                        row.control_id,
                        row.message_type,
                        row.ack_code,
                        row.error_location,
                        row.reason,
                    ]
                    print("\t".join("" if field is None else str(field) for field in fields))
            return 0
        handled = await intake.retry(arguments.message_id)
        if handled is None:
            print(f"message {arguments.message_id} is not parked (or its raw text was not kept)")
            return 1
        print(f"message {arguments.message_id}: {handled.code}")
        return 0 if handled.code == "AA" else 1
