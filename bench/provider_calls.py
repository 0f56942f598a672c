"""Provider calls: messages per second handed to Twilio and SendGrid (the real SDKs against Prism serving
each provider's spec), and the connections each path opens, which the machine's load does not distort.

    python bench/provider_calls.py                        # 400 messages a path, 16 calls in flight
    python bench/provider_calls.py --twilio-connections 10  # the pool requests keeps for http by default

Paths: Twilio SMS, one call a message (the connection pool kept as large as the calls in flight, or
`--twilio-connections`); SendGrid email one request a message; SendGrid email in batches of
`--batch` personalizations (one request for many recipients, each with its own custom argument).
It calls the providers directly: the database bookkeeping around a send is `bench/channels.py`'s.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

if __package__ in (None, ""):  # run as `python bench/<name>.py`: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from activities.messaging.providers import OutgoingMessage
from activities.messaging.sendgrid_email import SendGridEmailProvider
from activities.messaging.twilio_sms import TwilioSmsProvider
from tests.conftest import OPENAPI_SPECS
from tests.prism import prism_mock

TWILIO_ACCOUNT_SID = "AC" + "0" * 32


class _NewConnections(logging.Handler):
    """Counts urllib3's "Starting new HTTP connection" lines (the Twilio SDK's requests session)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("Starting new HTTP"):
            self.count += 1


def message(number: int, channel: str) -> OutgoingMessage:
    return OutgoingMessage(
        id=f"bench-{number}",
        patient_id=f"bench-patient-{number}",
        channel=channel,
        to=f"+1617555{number % 10000:04d}" if channel == "sms" else f"pat{number}@example.org",
        subject="Your flu shot" if channel == "email" else None,
        body=f"Hi Pat {number}, flu shots are in at Springfield General.",
        html=f"<p>Hi Pat {number}, flu shots are in.</p>" if channel == "email" else None,
        locale="en",
        created_at=datetime.now(UTC),
    )


async def timed(label: str, count: int, calls: list[Coroutine[Any, Any, Any]]) -> None:
    start = time.perf_counter()
    await asyncio.gather(*calls)
    elapsed = time.perf_counter() - start
    print(f"{label:48s} {count / elapsed:8.1f} msgs/s   ({count} in {elapsed:.2f} s)")


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=16, help="calls in flight (provider threads)")
    parser.add_argument("--batch", type=int, default=250, help="personalizations per SendGrid request")
    parser.add_argument(
        "--twilio-connections", type=int, help="the Twilio pool size (default: --concurrency)"
    )
    arguments = parser.parse_args()
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(arguments.concurrency))
    counter = _NewConnections()
    logging.getLogger("urllib3.connectionpool").addHandler(counter)
    logging.getLogger("urllib3.connectionpool").setLevel(logging.DEBUG)
    limit = asyncio.Semaphore(arguments.concurrency)
    count = arguments.messages

    with (
        tempfile.TemporaryDirectory() as logs,
        prism_mock(OPENAPI_SPECS / "twilio_api_v2010.json", Path(logs) / "twilio.log") as twilio_url,
        prism_mock(OPENAPI_SPECS / "tsg_mail_v3.json", Path(logs) / "sendgrid.log") as sendgrid_url,
    ):
        twilio = TwilioSmsProvider(
            TWILIO_ACCOUNT_SID,
            "token",
            "+15005550006",
            base_url=twilio_url,
            timeout_seconds=120.0,  # Prism answers slowly on a loaded machine
            connections=arguments.twilio_connections or arguments.concurrency,
        )
        sendgrid = SendGridEmailProvider(
            cast(Any, None),  # the database is for lookups after a crash, not used here
            "SG.key",
            "care@hospital.example",
            base_url=sendgrid_url,
            timeout_seconds=120.0,
        )

        async def one(send: Callable[[Any], Awaitable[Any]], item: Any) -> Any:
            async with limit:
                return await send(item)

        await asyncio.gather(*(one(twilio.send, message(n, "sms")) for n in range(8)))  # warm-up
        counter.count = 0
        await timed(
            f"Twilio SMS, pool of {arguments.twilio_connections or arguments.concurrency}",
            count,
            [one(twilio.send, message(n, "sms")) for n in range(count)],
        )
        print(f"  new connections opened: {counter.count}")
        await timed(
            "SendGrid email, one request a message",
            count,
            [one(sendgrid.send, message(n, "email")) for n in range(count)],
        )
        emails = [message(n, "email") for n in range(count)]
        batches = [emails[start : start + arguments.batch] for start in range(0, count, arguments.batch)]
        await timed(
            f"SendGrid email, {arguments.batch} personalizations a request",
            count,
            [one(sendgrid.send_batch, batch) for batch in batches],
        )
        print(f"  requests: {len(batches)} instead of {count}")


if __name__ == "__main__":
    asyncio.run(main())
