"""Patient pages, the CPU they cost per message and per answer: the unsubscribe headers and the
preference-centre footer every email gets (two signed links), reading a link on a page, and checking a
survey's posted answers against the Questionnaire and building the validated QuestionnaireResponse.

    python bench/patient_pages.py [--rounds 2000]

In-process, no stack: the work the send activity and the pages add on top of what they did before.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/<name>.py`: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aftercare.fhir.resources import validation_problems
from aftercare.patient_links.tokens import PatientLinks
from aftercare.patient_links.unsubscribe import add_opt_out
from aftercare.surveys.form import parse_answers, questionnaire_response

REPO = Path(__file__).resolve().parents[1]
CHECK_IN = json.loads((REPO / "journeys" / "questionnaires" / "post-discharge-48h.json").read_text())
LINKS = PatientLinks(secret=b"bench-secret", base_url="https://care.hospital.example", ttl=timedelta(days=90))
ANSWERS = {
    "q.overall": ["2"],
    "q.pain-score": ["8"],
    "q.pain-where": ["left knee"],
    "q.medicines": ["false"],
    "q.medicines-problem": ["1"],
    "q.warning-signs": ["0", "2"],
    "q.anything-else": ["Please call after 3pm"],
}


def email_links() -> None:
    values = {"channel": "email", "status": "pending", "patient_id": "p-1", "purpose": "care_coordination"}
    add_opt_out(
        {**values, "body": "Hello", "html": "<p>Hello</p>", "locale": "es"}, LINKS, care_critical=False
    )


TOKEN, _ = LINKS.token("preferences", "p-1", "care_coordination")


def read_link() -> None:
    LINKS.read("preferences", TOKEN)


def survey_answer() -> None:
    parsed = parse_answers(CHECK_IN, ANSWERS)
    assert not parsed.errors
    response = questionnaire_response(
        CHECK_IN, parsed, response_id="r-1", patient_id="p-1", authored=datetime.now(UTC)
    )
    assert validation_problems(response) == []


def timed(work: Callable[[], None], rounds: int) -> tuple[float, float]:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=2000)
    arguments = parser.parse_args()
    CHECK_IN["version"] = "1"
    for name, work in (
        ("email headers + footer", email_links),
        ("read a link", read_link),
        ("survey answers", survey_answer),
    ):
        median, p99 = timed(work, arguments.rounds)
        print(f"{name:24} median {median:7.3f} ms   p99 {p99:7.3f} ms   ({arguments.rounds} rounds)")


if __name__ == "__main__":
    main()
