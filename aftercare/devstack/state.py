"""What a running `aftercare dev` leaves in its data directory for the other commands: the database, API
and Temporal it serves (`stack.json`, removed when it stops). `aftercare api-keys`, `migrate`, `import`
and the rest, run beside a data directory without `DATABASE_URL`, use that stack, or say it is not
running rather than trying whatever PostgreSQL answers on the default address."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

STATE_FILE = "stack.json"
DEFAULT_DATA_DIR = Path(".aftercare")


@dataclass(frozen=True)
class StackState:
    """Where a running dev stack serves, and the process that runs it."""

    pid: int
    database_url: str
    api_url: str
    temporal_address: str
    temporal_namespace: str


def write_state(data_dir: Path, state: StackState) -> None:
    """Record the running stack (readable by its owner only: the database URL may hold a password)."""
    path = data_dir / STATE_FILE
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(asdict(state), file)
    temporary.replace(path)


def remove_state(data_dir: Path, pid: int) -> None:
    """Forget the stack `pid` ran (a newer stack's record is left alone)."""
    state = read_state(data_dir)
    if state is not None and state.pid == pid:
        (data_dir / STATE_FILE).unlink(missing_ok=True)


def read_state(data_dir: Path) -> StackState | None:
    """The recorded stack, whether or not it still runs."""
    try:
        return StackState(**json.loads((data_dir / STATE_FILE).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def running_stack(data_dir: Path = DEFAULT_DATA_DIR) -> StackState | None:
    """The stack recorded in `data_dir`, if its process is still alive (a crash leaves a stale record)."""
    state = read_state(data_dir)
    if state is None:
        return None
    try:
        os.kill(state.pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # alive, another user's
        pass
    return state
