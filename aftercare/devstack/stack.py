"""`aftercare dev`: Temporal dev server, PostgreSQL, migrations, worker and API, in the foreground.

Children run in their own process groups, so Ctrl+C reaches only this supervisor, which stops them in
order: API, worker, Temporal, then the embedded database. If any child dies, the rest are stopped and
the command exits non-zero.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import httpx
from sqlalchemy.engine import make_url

from aftercare.db.migrate import create_database_if_missing, upgrade
from aftercare.devstack.ports import ensure_ports_free, port_is_free
from aftercare.devstack.postgres import Database, embedded_database
from aftercare.devstack.state import StackState, remove_state, write_state
from aftercare.devstack.temporal_server import dev_server_command, start_dev_server
from aftercare.security.dev_keys import (
    codec_ui_token,
    dev_api_key,
    dev_codec_keys_file,
    dev_twilio_auth_token,
)
from aftercare.settings import Settings
from aftercare.temporal.client import connect_temporal

_STOP_GRACE_SECONDS = 15


class DevStackError(RuntimeError):
    """The stack could not start; the message says what to do."""


@dataclass(frozen=True)
class DevOptions:
    """Where the stack listens and keeps its data."""

    host: str = "127.0.0.1"
    api_port: int = 8000
    temporal_port: int = 7233
    ui_port: int = 8233
    data_dir: Path = Path(".aftercare")
    demo: bool = True
    mllp_port: int = 2575  # 0: no HL7 v2 listener
    mllp_processes: int = 1


@dataclass
class _Child:
    name: str
    process: subprocess.Popen[bytes]


class DevStack:
    """Starts, watches and stops the development stack."""

    def __init__(self, options: DevOptions, settings: Settings) -> None:
        self.options = options
        self.settings = settings
        self._children: list[_Child] = []
        self._database: Database | None = None
        self._stopping = False
        self._dev_key = ""
        self._twilio_token: str | None = None

    def run(self) -> int:
        """Run until SIGINT/SIGTERM (0) or until a child dies (1)."""
        options = self.options
        ports = {"api": options.api_port, "temporal": options.temporal_port, "ui": options.ui_port}
        if options.mllp_port:
            ports["mllp"] = options.mllp_port
        ensure_ports_free(options.host, ports)
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._request_stop)
        try:
            self._start()
            return self._watch()
        finally:
            self._stop()

    # --- start ----------------------------------------------------------------------------------

    def _start(self) -> None:
        options = self.options
        data_dir = options.data_dir.resolve()
        (data_dir / "logs").mkdir(parents=True, exist_ok=True)
        self._database = self._prepare_database(data_dir)
        _say("Database ready, migrations applied")
        self._dev_key = dev_api_key(data_dir, os.environ.get("AFTERCARE_DEV_API_KEY"))

        command = dev_server_command(
            db_file=data_dir / "temporal.db",
            host=options.host,
            port=options.temporal_port,
            ui_port=options.ui_port,
            namespace=self.settings.temporal_namespace,
            # The UI decodes payloads through the API; its path credential opens the codec only.
            codec_endpoint=f"{self._api_url}/codec/ui/{codec_ui_token(self._dev_key)}",
        )
        self._spawn("temporal", command, log_file=data_dir / "logs" / "temporal.log")
        self._wait_for_temporal(data_dir / "logs" / "temporal.log")
        _say("Temporal dev server ready")

        environment = {
            **os.environ,
            "AFTERCARE_ENV": "development",
            "AFTERCARE_DEV_API_KEY": self._dev_key,
            "DATABASE_URL": self._database.url,
            "TEMPORAL_ADDRESS": self._temporal_address,
            "TEMPORAL_NAMESPACE": self.settings.temporal_namespace,
            "TEMPORAL_TASK_QUEUE": self.settings.temporal_task_queue,
            "TEMPORAL_UI_ORIGINS": json.dumps(self._ui_origins),
        }
        if not (os.environ.get("AFTERCARE_CODEC_KEYS") or os.environ.get("AFTERCARE_CODEC_KEYS_FILE")):
            environment["AFTERCARE_CODEC_KEYS_FILE"] = str(dev_codec_keys_file(data_dir))
        if self.settings.twilio_auth_token is None:  # two-way SMS in dev: signed replies, texts in the outbox
            self._twilio_token = dev_twilio_auth_token(data_dir)
            environment["TWILIO_AUTH_TOKEN"] = self._twilio_token
        python = sys.executable
        self._spawn("worker", [python, "-m", "aftercare", "worker"], environment=environment)
        self._spawn(
            "api",
            [python, "-m", "aftercare", "api", "--host", options.host, "--port", str(options.api_port)],
            environment=environment,
        )
        self._wait_for_api()
        if options.mllp_port:
            self._spawn(
                "mllp",
                [
                    *(python, "-m", "aftercare", "mllp", "--host", options.host),
                    *("--port", str(options.mllp_port), "--processes", str(options.mllp_processes)),
                ],
                environment=environment,
            )
            self._wait_for_mllp()
        # The other commands (`aftercare api-keys`, `migrate`, ...) run here find this stack's database.
        write_state(
            data_dir,
            StackState(
                pid=os.getpid(),
                database_url=self._database.url,
                api_url=self._api_url,
                temporal_address=self._temporal_address,
                temporal_namespace=self.settings.temporal_namespace,
            ),
        )
        if options.demo:
            self._load_demo()
        self._print_banner()

    def _prepare_database(self, data_dir: Path) -> Database:
        url = os.environ.get("DATABASE_URL")
        database = Database(url) if url else embedded_database(data_dir)
        try:
            create_database_if_missing(database.url)
            upgrade(database.url)
        except Exception as error:
            database.stop()
            raise DevStackError(
                f"the database at {_safe_url(database.url)} is not usable: {error}"
            ) from error
        return database

    def _spawn(
        self,
        name: str,
        command: list[str],
        *,
        log_file: Path | None = None,
        environment: dict[str, str] | None = None,
    ) -> None:
        if log_file is not None:
            process = start_dev_server(command, log_file)
        else:
            process = subprocess.Popen(command, env=environment, start_new_session=True)
        self._children.append(_Child(name, process))

    @property
    def _temporal_address(self) -> str:
        return f"{self.options.host}:{self.options.temporal_port}"

    def _wait_for_temporal(self, log_file: Path, timeout: float = 60.0) -> None:
        settings = self.settings.model_copy(update={"temporal_address": self._temporal_address})

        async def healthy() -> bool:
            try:
                client = await connect_temporal(settings)
                return bool(await client.service_client.check_health())
            except Exception:  # not up yet
                return False

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._fail_if_dead(log_file)
            if asyncio.run(healthy()):
                return
            time.sleep(0.5)
        raise DevStackError(f"Temporal did not become ready in {timeout:.0f}s; see {log_file}")

    def _wait_for_api(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        url = f"{self._api_url}/healthz"
        while time.monotonic() < deadline:
            self._fail_if_dead()
            try:
                if httpx.get(url, timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise DevStackError(f"the API did not become healthy in {timeout:.0f}s at {url}")

    def _wait_for_mllp(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._fail_if_dead()
            if not port_is_free(self.options.host, self.options.mllp_port):
                return
            time.sleep(0.3)
        raise DevStackError(
            f"the MLLP listener did not start in {timeout:.0f}s on port {self.options.mllp_port}"
        )

    def _fail_if_dead(self, log_file: Path | None = None) -> None:
        if self._stopping:
            raise DevStackError("interrupted while starting")
        for child in self._children:
            code = child.process.poll()
            if code is not None:
                hint = f"; see {log_file}" if log_file is not None and child.name == "temporal" else ""
                raise DevStackError(f"{child.name} exited with code {code} while starting{hint}")

    def _load_demo(self) -> None:
        from aftercare.demo.loader import load_demo

        summary = load_demo(self._api_url, api_key=self._dev_key)
        loaded = f"Demo loaded: {len(summary.patients)} Synthea patients, journey `{summary.journey}`; "
        if summary.triggered:
            _say(
                f"{loaded}{summary.observation} (HbA1c 9.6%) started {summary.triggered} enrollment(s) "
                f"for patient {summary.patients[0]}"
            )
        else:
            _say(f"{loaded}{summary.observation} was already there, so nothing was sent again")

    @property
    def _ui_origins(self) -> list[str]:
        """The Temporal UI's browser origins, allowed to call the codec endpoints."""
        hosts = (
            {self.options.host, "127.0.0.1", "localhost"}
            if self.options.host in ("127.0.0.1", "localhost")
            else {self.options.host}
        )
        return sorted(
            f"http://{f'[{host}]' if ':' in host else host}:{self.options.ui_port}" for host in hosts
        )

    @property
    def _api_url(self) -> str:
        host = f"[{self.options.host}]" if ":" in self.options.host else self.options.host
        return f"http://{host}:{self.options.api_port}"

    def _print_banner(self) -> None:
        options = self.options
        host = f"[{options.host}]" if ":" in options.host else options.host
        assert self._database is not None
        lines = [
            "",
            "Aftercare is running",
            f"  API          {self._api_url}   (OpenAPI docs: {self._api_url}/docs)",
            f"  Console      {self._api_url}/console   (sign in with the API key below)",
            f"  Temporal UI  http://{host}:{options.ui_port}   (payloads decoded by {self._api_url}/codec)",
            f"  Temporal     {self._temporal_address}   (namespace {self.settings.temporal_namespace})",
            f"  Database     {_safe_url(self._database.url)}"
            + ("   (embedded)" if self._database.embedded else ""),
            f"  Data         {options.data_dir.resolve()}",
            f"  API key      {self._dev_key}   (all roles: send it as X-API-Key)",
            f"  Messages     curl -H 'X-API-Key: {self._dev_key}' {self._api_url}/v1/messages",
        ]
        if options.mllp_port:
            lines.append(f"  HL7 MLLP     {host}:{options.mllp_port}   (ADT feed; aftercare mllp parked)")
        if self._twilio_token is not None:
            lines.append(
                f"  Twilio token {self._twilio_token}   (development: signs inbound SMS; "
                "aftercare dev sms-reply --patient ID --body YES)"
            )
        lines += [
            "Press Ctrl+C to stop.",
            "",
        ]
        print("\n".join(lines), flush=True)

    # --- watch and stop -------------------------------------------------------------------------

    def _request_stop(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True

    def _watch(self) -> int:
        while not self._stopping:
            for child in self._children:
                code = child.process.poll()
                if code is not None:
                    _say(f"{child.name} exited unexpectedly with code {code}; stopping the stack", error=True)
                    return 1
            time.sleep(0.2)
        _say("Stopping")
        return 0

    def _stop(self) -> None:
        remove_state(self.options.data_dir.resolve(), os.getpid())
        for child in reversed(self._children):
            _terminate(child)
        self._children.clear()
        if self._database is not None:
            self._database.stop()
            self._database = None


def _terminate(child: _Child) -> None:
    process = child.process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=_STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            _say(f"{child.name} did not stop in {_STOP_GRACE_SECONDS}s; killing it", error=True)
            process.kill()
            process.wait()


def _safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _say(message: str, *, error: bool = False) -> None:
    print(f"aftercare dev: {message}", file=sys.stderr if error else sys.stdout, flush=True)
