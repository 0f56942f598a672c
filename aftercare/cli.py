"""The `aftercare` command: `dev`, `worker`, `api`, `migrate`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from aftercare.logs import configure_logging
from aftercare.settings import get_settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aftercare", description="Durable post-discharge patient outreach.")
    commands = parser.add_subparsers(dest="command", required=True)

    dev = commands.add_parser("dev", help="run the whole stack in the foreground")
    dev.add_argument("--host", default="127.0.0.1", help="interface every service listens on")
    dev.add_argument("--api-port", type=int, default=8000)
    dev.add_argument("--temporal-port", type=int, default=7233)
    dev.add_argument("--ui-port", type=int, default=8233)
    dev.add_argument(
        "--data-dir",
        type=Path,
        default=Path(".aftercare"),
        help="where the Temporal and embedded PostgreSQL data live",
    )
    dev.add_argument(
        "--demo",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="load three Synthea patients and a demo journey, and fire one trigger",
    )

    commands.add_parser("worker", help="run a worker against TEMPORAL_ADDRESS and DATABASE_URL")

    api = commands.add_parser("api", help="run the API alone")
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", type=int, default=8000)

    commands.add_parser("migrate", help="apply database migrations to DATABASE_URL")
    commands.add_parser("vapid-keys", help="print the settings of a new Web Push (VAPID) key pair")
    return parser


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `aftercare` console command."""
    arguments = _parser().parse_args(argv)
    if arguments.command == "vapid-keys":
        from aftercare.push_keys import main as print_vapid_keys

        print_vapid_keys()
        return
    if arguments.command == "dev":
        os.environ.setdefault("LOG_FORMAT", "text")  # a terminal, not a log shipper
    settings = get_settings()
    configure_logging(settings)
    if arguments.command == "dev":
        from aftercare.devstack.ports import PortTakenError
        from aftercare.devstack.stack import DevOptions, DevStack, DevStackError

        options = DevOptions(
            host=arguments.host,
            api_port=arguments.api_port,
            temporal_port=arguments.temporal_port,
            ui_port=arguments.ui_port,
            data_dir=arguments.data_dir,
            demo=arguments.demo,
        )
        try:
            sys.exit(DevStack(options, settings).run())
        except (PortTakenError, DevStackError) as error:
            print(f"aftercare dev: error: {error}", file=sys.stderr)
            sys.exit(1)
    elif arguments.command == "worker":
        import uvloop

        from worker import run_worker

        uvloop.run(run_worker(settings))
    elif arguments.command == "api":
        import uvicorn

        uvicorn.run(
            "api.app:create_app",
            factory=True,
            host=arguments.host,
            port=arguments.port,
            log_config=None,
            access_log=False,
        )
    elif arguments.command == "migrate":
        from aftercare.db.migrate import create_database_if_missing, upgrade

        create_database_if_missing(settings.database_url)
        upgrade(settings.database_url)
        print("migrations applied")
