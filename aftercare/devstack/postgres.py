"""PostgreSQL for `aftercare dev`: `DATABASE_URL` when set, otherwise an embedded server (`pgserver`)
whose data lives under the data directory."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url

DATABASE_NAME = "aftercare"


@dataclass
class Database:
    """The database URL, and the embedded server to stop afterwards (if one was started)."""

    url: str
    embedded: Any | None = None

    def stop(self) -> None:
        """Stop the embedded server, if any."""
        if self.embedded is not None:
            self.embedded.cleanup()
            self.embedded = None


def embedded_database(data_dir: Path) -> Database:
    """Start (or reuse) a PostgreSQL 16 server in `data_dir/pg`, reachable through its socket only."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on servers
        import pgserver

        server = pgserver.get_server(data_dir / "pg", cleanup_mode="stop")  # type: ignore[attr-defined]
    uri = make_url(server.get_uri())
    socket_dir = uri.query.get("host")
    url = URL.create(
        "postgresql+psycopg",
        username=uri.username or "postgres",
        database=DATABASE_NAME,
        query={"host": socket_dir} if socket_dir else {},
    )
    return Database(url.render_as_string(hide_password=False), embedded=server)
