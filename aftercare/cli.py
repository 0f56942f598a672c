"""The `aftercare` command: `dev`, `worker`, `api`, `migrate`, `api-keys`, `import`, `export`."""

from __future__ import annotations

import argparse
import os
import pkgutil
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import NoReturn

import httpx

from aftercare import __version__
from aftercare.hl7v2.commands import add_mllp_parser
from aftercare.logs import configure_logging
from aftercare.settings import Settings, get_settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aftercare", description="Durable post-discharge patient outreach.")
    parser.add_argument("--version", action="version", version=f"aftercare {__version__}")
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
    dev.add_argument(
        "--mllp-port", type=int, default=2575, help="the HL7 v2 MLLP listener's port (0 turns it off)"
    )
    dev.add_argument("--mllp-processes", type=int, default=1, help="MLLP listener processes sharing the port")
    dev_commands = dev.add_subparsers(dest="dev_command", metavar="{sms-reply}")
    sms_reply = dev_commands.add_parser(
        "sms-reply", help="text the running dev stack as a patient (a signed Twilio inbound webhook)"
    )
    sender = sms_reply.add_mutually_exclusive_group(required=True)
    sender.add_argument("--patient", help="the patient id (their phone number is looked up)")
    sender.add_argument("--from", dest="from_number", help="the sender's number (E.164)")
    sms_reply.add_argument("--body", required=True, help="the text: YES, STOP, START, HELP, ...")
    sms_reply.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS, help="the dev stack's data")

    commands.add_parser("worker", help="run a worker against TEMPORAL_ADDRESS and DATABASE_URL")
    add_mllp_parser(commands)

    api = commands.add_parser("api", help="run the API alone")
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", type=int, default=8000)

    commands.add_parser("migrate", help="apply database migrations to DATABASE_URL")

    analytics = commands.add_parser(
        "analytics", help="compare the analytics rollups with the facts, rebuild them, or fold deltas"
    )
    analytics.add_argument("analytics_action", choices=["check", "rebuild", "fold"])

    keys = commands.add_parser("api-keys", help="make, list and revoke API keys in DATABASE_URL")
    key_commands = keys.add_subparsers(dest="api_keys_command", required=True)
    create = key_commands.add_parser("create", help="make a key and print it (shown this once)")
    create.add_argument("--name", required=True, help="who or what the key is for")
    create.add_argument(
        "--role", dest="roles", action="append", required=True, help="a role (repeat for more)"
    )
    create.add_argument("--scope", dest="scopes", action="append", default=[], help="narrow to a permission")
    create.add_argument(
        "--expires-at", help="when the key stops working (ISO-8601, in the future; UTC if no zone)"
    )
    key_commands.add_parser("list", help="list the keys that are not revoked")
    revoke = key_commands.add_parser("revoke", help="revoke a key")
    revoke.add_argument("key_id")
    commands.add_parser("vapid-keys", help="print the settings of a new Web Push (VAPID) key pair")

    bulk_import = commands.add_parser(
        "import", help="import NDJSON and Bundle files (or directories of them) into DATABASE_URL, in-process"
    )
    bulk_import.add_argument("paths", nargs="*", type=Path, metavar="FILE_OR_DIR")
    bulk_import.add_argument(
        "--triggers", action="store_true", help="new versions fire journeys (off by default)"
    )
    bulk_import.add_argument("--resume", metavar="ID", help="carry on an interrupted import")
    bulk_import.add_argument("--batch", type=int, default=500, help="resources per transaction")
    bulk_import.add_argument("--validate", action="store_true", help="validate each resource (slower)")

    export = commands.add_parser("export", help="run a FHIR Bulk Data $export from a source (a workflow)")
    export.add_argument("--source", default="default", help="the FHIR source key")
    since = export.add_mutually_exclusive_group()
    since.add_argument(
        "--since", type=datetime.fromisoformat, help="_since (default: the last export's time)"
    )
    since.add_argument("--full", action="store_true", help="export everything, not only what changed")
    export.add_argument("--type", dest="types", help="resource types, comma-separated (_type)")
    export.add_argument("--triggers", action="store_true", help="new versions fire journeys (off by default)")
    export.add_argument("--wait", action="store_true", help="wait for the export to finish")

    subscribe = commands.add_parser(
        "subscribe", help="register Subscriptions on a FHIR source for the journeys' FHIR entries"
    )
    subscribe.add_argument("--source", default="default", help="the FHIR source key")
    subscribe.add_argument(
        "--endpoint", help="where the server notifies (default: PUBLIC_BASE_URL's notification endpoint)"
    )
    subscribe.add_argument("--style", choices=["rest-hook", "backport"], default="rest-hook")
    subscribe.add_argument(
        "--content", choices=["full-resource", "id-only", "empty"], default="full-resource"
    )
    subscribe.add_argument("--topic", help="the SubscriptionTopic canonical URL (backport)")
    subscribe.add_argument(
        "--type", dest="types", help="resource types, comma-separated (default: journeys')"
    )
    return parser


def _subscribe(arguments: argparse.Namespace, settings: Settings) -> int:
    import uvloop

    from aftercare.fhir_sync.commands import run_subscribe
    from aftercare.fhir_sync.subscriptions import notification_endpoint

    endpoint = arguments.endpoint
    if not endpoint:
        if not settings.public_base_url:
            print("aftercare subscribe: error: give --endpoint or set PUBLIC_BASE_URL", file=sys.stderr)
            return 2
        endpoint = notification_endpoint(settings.public_base_url, arguments.source)
    types = [name.strip() for name in arguments.types.split(",") if name.strip()] if arguments.types else None
    return uvloop.run(
        run_subscribe(
            settings,
            source=arguments.source,
            endpoint=endpoint,
            style=arguments.style,
            content=arguments.content,
            topic=arguments.topic,
            types=types,
        )
    )


def _bulk(arguments: argparse.Namespace, settings: Settings) -> int:
    import uvloop

    from aftercare.bulk.commands import run_export, run_import

    if arguments.command == "import":
        if not arguments.paths and not arguments.resume:
            print("aftercare import: error: name files or directories, or --resume ID", file=sys.stderr)
            return 2
        return uvloop.run(
            run_import(
                settings,
                arguments.paths,
                triggers=arguments.triggers,
                resume=arguments.resume,
                batch_size=arguments.batch,
                validate=arguments.validate,
            )
        )
    types = [name.strip() for name in arguments.types.split(",") if name.strip()] if arguments.types else None
    return uvloop.run(
        run_export(
            settings,
            source=arguments.source,
            since=arguments.since,
            full=arguments.full,
            types=types,
            triggers=arguments.triggers,
            wait=arguments.wait,
        )
    )


# The processes the command starts are composition roots above every layer: it names them, as uvicorn
# is given the API's factory, and loads them when run, so the domain package imports none of them.
WORKER_ENTRY_POINT = "worker:main"
API_FACTORY = "api.app:create_served_app"


def _serve_api(arguments: argparse.Namespace, settings: Settings) -> None:
    import uvicorn

    from aftercare.security.startup import StartupRefused, configuration_problems, refuse_if

    try:
        refuse_if(configuration_problems(settings), "the API")
    except StartupRefused as error:
        print(f"aftercare api: error: {error}", file=sys.stderr)
        sys.exit(1)
    uvicorn.run(
        API_FACTORY,
        factory=True,
        host=arguments.host,
        port=arguments.port,
        log_config=None,
        access_log=False,
        proxy_headers=False,  # TRUSTED_PROXIES decides whose forwarding headers are believed
    )


# Commands that read or write the database (`dev` brings its own).
_DATABASE_COMMANDS = frozenset(
    {"worker", "api", "migrate", "api-keys", "import", "export", "subscribe", "mllp", "analytics"}
)


def _fail(command: str, message: str) -> NoReturn:
    print(f"aftercare {command}: error: {message}", file=sys.stderr)
    sys.exit(1)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `aftercare` console command."""
    arguments = _parser().parse_args(argv)
    if arguments.command == "vapid-keys":
        from aftercare.push_keys import main as print_vapid_keys

        print_vapid_keys()
        return
    if arguments.command == "dev":
        os.environ.setdefault("LOG_FORMAT", "text")  # a terminal, not a log shipper
        os.environ["AFTERCARE_ENV"] = "development"
    elif arguments.command in _DATABASE_COMMANDS:
        from aftercare.command_database import DevStackNotRunning, use_dev_stack

        try:
            use_dev_stack()
        except DevStackNotRunning as error:
            _fail(arguments.command, str(error))
    settings = get_settings()
    configure_logging(settings)
    try:
        _run(arguments, settings)
    except Exception as error:
        from aftercare.command_database import database_trouble

        trouble = database_trouble(error, settings) if arguments.command in _DATABASE_COMMANDS else None
        if trouble is None:
            raise
        _fail(arguments.command, trouble)


def _sms_reply(arguments: argparse.Namespace, settings: Settings) -> None:
    from aftercare.devstack.sms_reply import SmsReplyError, send_sms_reply

    try:
        sent = send_sms_reply(
            arguments.data_dir,
            settings,
            body=arguments.body,
            patient_id=arguments.patient,
            from_number=arguments.from_number,
        )
    except (SmsReplyError, httpx.HTTPError) as error:
        _fail("dev sms-reply", str(error))
    print(f"texted {arguments.body!r} from {sent.from_number}")
    if sent.answer:
        print(f"answered: {sent.answer}")


def _run(arguments: argparse.Namespace, settings: Settings) -> None:
    if arguments.command == "dev" and arguments.dev_command == "sms-reply":
        _sms_reply(arguments, settings)
    elif arguments.command == "dev":
        from aftercare.devstack.ports import PortTakenError
        from aftercare.devstack.stack import DevOptions, DevStack, DevStackError

        options = DevOptions(
            host=arguments.host,
            api_port=arguments.api_port,
            temporal_port=arguments.temporal_port,
            ui_port=arguments.ui_port,
            data_dir=arguments.data_dir,
            demo=arguments.demo,
            mllp_port=arguments.mllp_port,
            mllp_processes=arguments.mllp_processes,
        )
        try:
            sys.exit(DevStack(options, settings).run())
        except (PortTakenError, DevStackError) as error:
            _fail("dev", str(error))
    elif arguments.command == "worker":
        run_worker: Callable[[], None] = pkgutil.resolve_name(WORKER_ENTRY_POINT)
        run_worker()
    elif arguments.command == "api":
        _serve_api(arguments, settings)
    elif arguments.command == "api-keys":
        import uvloop

        from aftercare.security.commands import run_api_keys

        sys.exit(uvloop.run(run_api_keys(settings, arguments)))
    elif arguments.command in ("import", "export"):
        sys.exit(_bulk(arguments, settings))
    elif arguments.command == "subscribe":
        sys.exit(_subscribe(arguments, settings))
    elif arguments.command == "mllp":
        import uvloop

        from aftercare.hl7v2.commands import run_mllp_command

        sys.exit(uvloop.run(run_mllp_command(settings, arguments)))
    elif arguments.command == "analytics":
        import uvloop

        from aftercare.analytics.commands import run_analytics

        sys.exit(uvloop.run(run_analytics(settings, arguments.analytics_action)))
    elif arguments.command == "migrate":
        from aftercare.db.migrate import create_database_if_missing, upgrade

        create_database_if_missing(settings.database_url)
        upgrade(settings.database_url)
        print("migrations applied")
