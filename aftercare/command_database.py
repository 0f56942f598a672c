"""Which database the commands use, and what they say when they cannot use it.

Without an explicit `DATABASE_URL` (environment or `.env`), a command run beside a dev data directory
(`.aftercare/`) uses the database of the `aftercare dev` running there, with its Temporal and codec key
unless those are set too, and refuses in one line when none is running. A database that cannot be
reached, does not exist or has no tables is one line too, never a traceback."""

from __future__ import annotations

import os

import psycopg
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from aftercare.devstack.state import DEFAULT_DATA_DIR, running_stack
from aftercare.security.dev_keys import CODEC_KEYS_FILE
from aftercare.settings import Settings, get_settings


class DevStackNotRunning(RuntimeError):
    """There is a dev data directory here, but no stack runs in it."""


def use_dev_stack() -> None:
    """Point this process's settings at the dev stack of the data directory here, if there is one."""
    if not DEFAULT_DATA_DIR.is_dir():
        return
    explicit = Settings().model_fields_set
    if "database_url" in explicit:
        return
    stack = running_stack(DEFAULT_DATA_DIR)
    if stack is None:
        raise DevStackNotRunning(
            f"the dev stack in {DEFAULT_DATA_DIR}/ is not running: start it with `make dev` "
            "(or `aftercare dev`), or set DATABASE_URL"
        )
    os.environ["DATABASE_URL"] = stack.database_url
    if "temporal_address" not in explicit:
        os.environ["TEMPORAL_ADDRESS"] = stack.temporal_address
        os.environ["TEMPORAL_NAMESPACE"] = stack.temporal_namespace
    codec_keys = DEFAULT_DATA_DIR / CODEC_KEYS_FILE
    if "aftercare_codec_keys" not in explicit and codec_keys.exists():
        os.environ["AFTERCARE_CODEC_KEYS_FILE"] = str(codec_keys.resolve())
    get_settings.cache_clear()


def database_trouble(error: BaseException, settings: Settings) -> str | None:
    """One line on a database that cannot be used, or None when `error` is about something else."""
    cause = error.orig if isinstance(error, DBAPIError) else error
    where = make_url(settings.database_url).render_as_string(hide_password=True)
    if isinstance(cause, psycopg.errors.UndefinedTable):
        return f"the database at {where} has no Aftercare tables: run `aftercare migrate`"
    if not isinstance(cause, psycopg.OperationalError | ConnectionError):
        return None
    reason = " ".join(str(cause).split())
    hint = "" if "database_url" in settings.model_fields_set else " (set DATABASE_URL, or start `make dev`)"
    return f"cannot use the database at {where}: {reason}{hint}"
