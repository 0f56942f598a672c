"""Voice calls: how fast the API answers Twilio's voice webhooks while calls are in progress, and how
soon a journey branches on the keys pressed.

    python bench/voice.py --start-stack --calls 50                 # its own `aftercare dev --no-demo`
    python bench/voice.py --api http://127.0.0.1:8000 --api-key ... --twilio-auth-token ...

Each of `--calls` patients is enrolled in a journey whose `call` step asks two keypad questions (the
calls go to the outbox: no Twilio account is needed, the TwiML is served all the same). Then, with
`--concurrency` calls at once, this script plays Twilio: the TwiML request, the two `<Gather>` answers
and the final status callback, each signed with the auth token as Twilio signs them. It reports the
latency of each webhook kind, webhooks per second, and the time from the last key pressed to the
journey's end (`voice.answered` delivered, the branch taken).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from twilio.request_validator import RequestValidator

if __package__ in (None, ""):  # run as `python bench/<name>.py`: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.stack import api_headers, dev_stack

JOURNEY: dict[str, Any] = {
    "key": "bench-voice",
    "version": 1,
    "name": "Voice bench: check call",
    "reentry": "always",
    "steps": [
        {
            "id": "check-call",
            "call": {
                "say": "Hello {{ patient.given }}, this is your care team.",
                "gather": [
                    {"id": "feeling", "prompt": "Press 1 if you feel well, 2 if worse.", "digits": "12"},
                    {"id": "medicines", "prompt": "Press 1 if you have your medicines.", "digits": "12"},
                ],
                "urgent": True,  # whatever the hour of the run, quiet hours do not defer it
            },
        },
        {
            "id": "await-call",
            "wait_for": {"event": "voice.answered", "timeout": "PT1H", "on_timeout": "done"},
        },
        {
            "id": "route",
            "branch": [{"when": "%event.data.answers.feeling = '2'", "goto": "worse"}, {"otherwise": "done"}],
        },
        {"id": "worse", "end": {"outcome": "worse"}},
        {"id": "done", "end": {"outcome": "completed"}},
    ],
}


def patients(run: str, count: int) -> dict[str, Any]:
    """A collection Bundle of `count` patients with distinct mobile numbers."""
    entries = [
        {
            "resource": {
                "resourceType": "Patient",
                "id": f"voice-{run}-{number}",
                "name": [{"given": [f"Caller{number}"], "family": "Bench"}],
                "telecom": [{"system": "phone", "value": f"+1555{number:07d}", "use": "mobile"}],
            }
        }
        for number in range(count)
    ]
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


class Twilio:
    """Plays Twilio's side of a call: signed form posts to the call's webhooks, timed."""

    def __init__(self, client: httpx.AsyncClient, api: str, token: str) -> None:
        self.client, self.api, self.validator = client, api, RequestValidator(token)
        self.latencies: dict[str, list[float]] = {}

    async def post(self, kind: str, message_id: str, params: dict[str, str], **query: str) -> httpx.Response:
        url = f"{self.api}/webhooks/twilio/voice/{kind}?{urlencode({'message_id': message_id, **query})}"
        headers = {"X-Twilio-Signature": self.validator.compute_signature(url, params)}
        started = time.perf_counter()
        answer = await self.client.post(url, data=params, headers=headers)
        self.latencies.setdefault(kind, []).append(time.perf_counter() - started)
        answer.raise_for_status()
        return answer


async def play(twilio: Twilio, message_id: str, feeling: str) -> float:
    """One answered call; the moment its last key was pressed."""
    sid = "CA" + uuid.uuid4().hex
    await twilio.post("twiml", message_id, {"CallSid": sid, "AnsweredBy": "human"})
    await twilio.post("gather", message_id, {"CallSid": sid, "Digits": feeling}, question="0", attempt="1")
    await twilio.post("gather", message_id, {"CallSid": sid, "Digits": "1"}, question="1", attempt="1")
    pressed = time.perf_counter()
    await twilio.post("status", message_id, {"CallSid": sid, "CallStatus": "completed", "CallDuration": "40"})
    return pressed


async def run(api: str, headers: dict[str, str], token: str, calls: int, concurrency: int) -> None:
    run_id = uuid.uuid4().hex[:8]
    async with httpx.AsyncClient(headers=headers, timeout=60) as client:
        journey = {**JOURNEY, "key": f"bench-voice-{run_id}"}
        (
            await client.post(
                f"{api}/v1/fhir/import", json=patients(run_id, calls), params={"triggers": "false"}
            )
        ).raise_for_status()
        (await client.post(f"{api}/v1/journeys", json=journey)).raise_for_status()
        ids = [{"patient_id": f"voice-{run_id}-{n}"} for n in range(calls)]
        (
            await client.post(f"{api}/v1/journeys/{journey['key']}/enrollments/batch", json={"patients": ids})
        ).raise_for_status()
        started = time.perf_counter()
        while True:
            items = (
                await client.get(f"{api}/v1/messages", params={"journey_key": journey["key"], "limit": 1000})
            ).json()["items"]
            if len(items) >= calls:
                break
            await asyncio.sleep(0.5)
        print(f"{calls} calls recorded by the journeys in {time.perf_counter() - started:.1f} s")

        twilio = Twilio(client, api, token)
        gate = asyncio.Semaphore(concurrency)

        async def one(item: dict[str, Any], number: int) -> float:
            async with gate:
                return await play(twilio, item["id"], "2" if number % 2 else "1")

        began = time.perf_counter()
        pressed = await asyncio.gather(*(one(item, n) for n, item in enumerate(items)))
        spent = time.perf_counter() - began
        webhooks = sum(len(values) for values in twilio.latencies.values())
        rate = webhooks / spent
        print(f"{webhooks} webhooks in {spent:.1f} s: {rate:.1f} per second ({concurrency} calls at once)")
        for kind, values in twilio.latencies.items():
            ordered = sorted(values)
            p95 = ordered[int(0.95 * (len(ordered) - 1))]
            print(f"  {kind:8s} p50 {statistics.median(ordered) * 1000:6.1f} ms   p95 {p95 * 1000:6.1f} ms")
        while True:
            listing = (
                await client.get(
                    f"{api}/v1/enrollments",
                    params={"journey_key": journey["key"], "status": "completed", "limit": 1000},
                )
            ).json()
            if len(listing["items"]) >= calls:
                break
            await asyncio.sleep(0.2)
        print(f"every journey branched {time.perf_counter() - max(pressed):.2f} s after the last key pressed")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--start-stack", action="store_true")
    parser.add_argument("--api-port", type=int, default=18300)
    parser.add_argument("--api", default="http://127.0.0.1:8000")
    parser.add_argument("--api-key")
    parser.add_argument("--twilio-auth-token", default=os.environ.get("TWILIO_AUTH_TOKEN"))
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=10)
    options = parser.parse_args()
    if options.start_stack:
        token = options.twilio_auth_token or secrets.token_hex(16)
        os.environ["TWILIO_AUTH_TOKEN"] = token  # the stack verifies the webhooks with it
        with dev_stack(options.api_port) as stack:
            asyncio.run(run(stack.api, api_headers(stack.api_key), token, options.calls, options.concurrency))
        return
    if not options.twilio_auth_token:
        raise SystemExit("--twilio-auth-token (or TWILIO_AUTH_TOKEN) is needed to sign the webhooks")
    asyncio.run(
        run(
            options.api,
            api_headers(options.api_key),
            options.twilio_auth_token,
            options.calls,
            options.concurrency,
        )
    )


if __name__ == "__main__":
    main()
