"""Builds every activity with its dependencies, for the worker."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from activities.bulk import BulkActivities
from activities.campaigns import CampaignActivities
from activities.enrollments import EnrollmentActivities, ReconcileActivities
from activities.events import EventActivities
from activities.fhir import FhirActivities
from activities.fhir_write_back import FhirWriteBackActivities
from activities.messaging.campaign_batch import CampaignBatchSender, InviteLinks
from activities.messaging.letters import LetterProvider
from activities.messaging.outbox import OutboxProvider
from activities.messaging.providers import MessageProvider, ProviderRegistry, RateLimit
from activities.messaging.send import MessagingActivities
from activities.messaging.sendgrid_email import SendGridEmailProvider
from activities.messaging.smtp_email import SmtpEmailProvider
from activities.messaging.twilio_sms import TwilioSmsProvider
from activities.messaging.twilio_voice import TwilioVoiceProvider
from activities.messaging.web_push import WebPushProvider
from activities.segments import SegmentActivities
from activities.store import StoreActivities
from activities.surveys import SurveyActivities
from activities.tasks import TaskActivities
from aftercare.enrollment.starter import EnrollmentStarter
from aftercare.patient_links.tokens import patient_links
from aftercare.segments.dynamic import SegmentDriver
from aftercare.settings import Settings, event_link_secret

TWILIO_STATUS_PATH = "/webhooks/twilio/status"


def provider_rate_limits(settings: Settings) -> dict[str, float]:
    """Messages per second for each provider that has a limit (`*_MAX_PER_SECOND` above 0)."""
    limits = {
        "twilio": settings.twilio_max_per_second,
        "sendgrid": settings.sendgrid_max_per_second,
        "smtp": settings.smtp_max_per_second,
        "webpush": settings.push_max_per_second,
    }
    return {provider: rate for provider, rate in limits.items() if rate > 0}


def delivery_queue(settings: Settings, provider: str) -> str:
    """The task queue a rate-limited provider's sends wait on."""
    return f"{settings.temporal_task_queue}.send.{provider}"


def build_provider_registry(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> ProviderRegistry:
    """The provider for each channel from the settings; the outbox for a channel with none configured.

    SMS: Twilio; calls (`voice`): Twilio too, when `PUBLIC_BASE_URL` is set. Email: SendGrid, else an
    SMTP relay. Letters: PDFs in the daily print batch (always).
    Push: Web Push when VAPID keys are set.
    """
    by_channel: dict[str, MessageProvider] = {"letter": LetterProvider(sessions, settings)}
    if settings.twilio_configured:
        assert settings.twilio_account_sid
        assert settings.twilio_auth_token
        assert settings.twilio_from_number
        by_channel["sms"] = TwilioSmsProvider(
            settings.twilio_account_sid,
            settings.twilio_auth_token.get_secret_value(),
            settings.twilio_from_number,
            base_url=settings.twilio_base_url,
            connections=settings.provider_threads,
            status_callback=(
                f"{settings.public_base_url.rstrip('/')}{TWILIO_STATUS_PATH}"
                if settings.public_base_url
                else None
            ),
        )
    if settings.twilio_configured and settings.public_base_url:
        # Calls need Twilio to reach Aftercare for their TwiML: only with a public base URL.
        assert settings.twilio_account_sid
        assert settings.twilio_auth_token
        assert settings.twilio_from_number
        by_channel["voice"] = TwilioVoiceProvider(
            sessions,
            settings.twilio_account_sid,
            settings.twilio_auth_token.get_secret_value(),
            settings.twilio_from_number,
            settings.public_base_url,
            base_url=settings.twilio_base_url,
        )
    if settings.sendgrid_configured:
        assert settings.sendgrid_api_key
        assert settings.sendgrid_from_email
        by_channel["email"] = SendGridEmailProvider(
            sessions,
            settings.sendgrid_api_key.get_secret_value(),
            settings.sendgrid_from_email,
            settings.hospital_name,
            base_url=settings.sendgrid_base_url,
        )
    elif settings.smtp_configured:
        assert settings.smtp_host
        assert settings.smtp_from_email
        by_channel["email"] = SmtpEmailProvider(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_from_email,
            settings.hospital_name,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            starttls=settings.smtp_starttls,
        )
    if settings.push_configured:
        assert settings.vapid_private_key
        by_channel["push"] = WebPushProvider(
            sessions,
            settings.vapid_private_key.get_secret_value(),
            settings.vapid_subject,
            default_title=settings.hospital_name,
        )
    limits = {
        provider: RateLimit(delivery_queue(settings, provider), per_second)
        for provider, per_second in provider_rate_limits(settings).items()
    }
    return ProviderRegistry(by_channel, fallback=OutboxProvider(), rate_limits=limits)


def build_activities(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    temporal: Client,
    providers: ProviderRegistry | None = None,
) -> list[Callable[..., Any]]:
    """Every activity the worker runs."""
    store = StoreActivities(sessions, settings.hospital_timezone)
    registry = providers or build_provider_registry(settings, sessions)
    write_back = settings.writes_back
    links = patient_links(settings)
    messaging = MessagingActivities(
        sessions,
        registry,
        settings.hospital_timezone,
        settings.guardrails,
        write_back=write_back,
        links=links,
        event_link_secret=event_link_secret(settings),
        organiser_email=settings.sendgrid_from_email,
    )
    campaigns = CampaignActivities(
        sessions,
        CampaignBatchSender(
            sessions,
            registry,
            settings.guardrails,
            delivery_concurrency=settings.campaign_delivery_concurrency,
            links=links,
            invite_links=InviteLinks(event_link_secret(settings), settings.public_base_url),
        ),
        settings.hospital_timezone,
        write_back=settings.writes_back,
    )
    tasks = TaskActivities(sessions, settings.hospital_timezone, write_back=write_back)
    starter = EnrollmentStarter(sessions, temporal, settings.temporal_task_queue)
    enrollments = EnrollmentActivities(sessions, starter)
    reconcile = ReconcileActivities(sessions, starter, temporal, settings.temporal_task_queue)
    fhir = FhirActivities(sessions, settings, starter, temporal)
    writer = FhirWriteBackActivities(sessions, settings)
    bulk = BulkActivities(sessions, settings, starter, temporal)
    segments = SegmentActivities(SegmentDriver(sessions, temporal, starter))
    surveys = SurveyActivities(sessions, links, write_back=write_back)
    events = EventActivities(
        sessions,
        temporal,
        starter,
        timedelta(hours=settings.event_offer_hours),
        link_secret=event_link_secret(settings),
        public_base_url=settings.public_base_url,
    )
    return [
        surveys.open_survey,
        surveys.expire_survey,
        events.expire_event_offer,
        events.deliver_event_notices,
        events.event_invite_link,
        store.record_progress,
        store.evaluate_conditions,
        store.next_local_time,
        store.facility_calendar,
        store.update_attributes,
        store.resolve_moment,
        messaging.send_message,
        messaging.deliver_message,
        tasks.create_task,
        enrollments.start_enrollment,
        reconcile.reconcile_enrollments,
        fhir.fetch_resources,
        fhir.process_notification,
        fhir.park_notification,
        fhir.source_types,
        fhir.poll_resource_type,
        writer.write_back,
        writer.write_back_message,
        writer.write_back_task,
        bulk.start_bulk_export,
        bulk.poll_bulk_export,
        bulk.import_bulk_file,
        bulk.finish_bulk_export,
        segments.refresh_segments,
        campaigns.freeze_campaign_audience,
        campaigns.campaign_windows,
        campaigns.send_campaign_batch,
        campaigns.record_campaign_run,
        campaigns.close_campaign_run,
    ]
