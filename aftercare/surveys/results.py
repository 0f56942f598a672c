"""Survey results: response rate and, per question, how often each answer was given. Free-text
answers never leave here: their questions count answers, not their words."""

from __future__ import annotations

import csv
import io
from collections import Counter
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.surveys.form import questions
from aftercare.surveys.questionnaires import QuestionnaireError, versions_of
from models.survey_tables import Survey, SurveyResponse
from models.surveys import SurveyResults

FREE_TEXT = frozenset({"string", "text", "date"})


async def survey_results(session: AsyncSession, url: str) -> SurveyResults:
    """The results of every survey of the Questionnaire `url` the caller may see."""
    versions = await versions_of(session, url)
    if not versions:
        raise QuestionnaireError([("url", f"no Questionnaire {url}")], 404)
    by_status = await session.execute(
        select(Survey.status, func.count()).where(Survey.questionnaire_url == url).group_by(Survey.status)
    )
    statuses: dict[str, int] = {str(name): int(count) for name, count in by_status.all()}
    answer_sets = await session.scalars(
        select(SurveyResponse.answers)
        .join(Survey, Survey.id == SurveyResponse.survey_id)
        .where(Survey.questionnaire_url == url)
    )
    counts: dict[str, Counter[str]] = {}
    answered: Counter[str] = Counter()
    for answers in answer_sets:
        for link_id, values in (answers or {}).items():
            answered[link_id] += 1
            counts.setdefault(link_id, Counter()).update(_label(value) for value in values)
    rows: list[dict[str, Any]] = []
    for question in questions(versions[0].resource):
        if not question.answerable:
            continue
        row: dict[str, Any] = {
            "link_id": question.link_id,
            "text": question.text,
            "type": question.type,
            "answered": answered[question.link_id],
        }
        if question.type not in FREE_TEXT:
            row["answers"] = dict(sorted(counts.get(question.link_id, Counter()).items()))
        rows.append(row)
    sent = sum(statuses.values())
    completed = int(statuses.get("completed", 0))
    return SurveyResults(
        questionnaire=url,
        sent=sent,
        completed=completed,
        expired=int(statuses.get("expired", 0)),
        response_rate=round(completed / sent, 4) if sent else None,
        questions=rows,
    )


def _label(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def results_csv(results: SurveyResults) -> str:
    """The answer distributions as CSV: one row per question and answer (free text: its count only)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["questionnaire", "link_id", "question", "answer", "count", "sent", "completed", "response_rate"]
    )
    totals = [results.sent, results.completed, "" if results.response_rate is None else results.response_rate]
    for row in results.questions:
        answers: Any = row.get("answers")
        if answers is None:
            writer.writerow(
                [results.questionnaire, row["link_id"], row["text"], "(free text)", row["answered"], *totals]
            )
            continue
        for answer, count in answers.items():
            writer.writerow([results.questionnaire, row["link_id"], row["text"], answer, count, *totals])
    return out.getvalue()
