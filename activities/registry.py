"""Builds every activity with its dependencies, for the worker."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from activities.enrollments import EnrollmentActivities, ReconcileActivities
from activities.messaging.outbox import OutboxProvider
from activities.messaging.providers import MessageProvider, ProviderRegistry
from activities.messaging.send import MessagingActivities
from activities.messaging.twilio_sms import TwilioSmsProvider
from activities.store import StoreActivities
from activities.tasks import TaskActivities
from aftercare.enrollment.starter import EnrollmentStarter
from aftercare.settings import Settings


def build_provider_registry(settings: Settings) -> ProviderRegistry:
    """Twilio for SMS when its settings are present; the outbox for everything else."""
    by_channel: dict[str, MessageProvider] = {}
    if settings.twilio_configured:
        assert settings.twilio_account_sid
        assert settings.twilio_auth_token
        assert settings.twilio_from_number
        by_channel["sms"] = TwilioSmsProvider(
            settings.twilio_account_sid,
            settings.twilio_auth_token.get_secret_value(),
            settings.twilio_from_number,
            base_url=settings.twilio_base_url,
        )
    return ProviderRegistry(by_channel, fallback=OutboxProvider())


def build_activities(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    temporal: Client,
    providers: ProviderRegistry | None = None,
) -> list[Callable[..., Any]]:
    """Every activity the worker runs."""
    store = StoreActivities(sessions, settings.hospital_timezone)
    messaging = MessagingActivities(
        sessions, providers or build_provider_registry(settings), settings.hospital_timezone
    )
    tasks = TaskActivities(sessions, settings.hospital_timezone)
    starter = EnrollmentStarter(sessions, temporal, settings.temporal_task_queue)
    enrollments = EnrollmentActivities(sessions, starter)
    reconcile = ReconcileActivities(sessions, starter, temporal)
    return [
        store.record_progress,
        store.evaluate_conditions,
        store.next_local_time,
        store.update_attributes,
        store.resolve_moment,
        messaging.send_message,
        tasks.create_task,
        enrollments.start_enrollment,
        reconcile.reconcile_enrollments,
    ]
