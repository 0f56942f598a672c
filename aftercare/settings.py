"""The one settings class: every process reads its configuration from the environment through it.

Workflow code never imports this module: workflows receive everything they need in their input.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from aftercare.guardrails.policy import FrequencyCap, GuardrailPolicy, parse_quiet_hours
from aftercare.identity.rules import parse_rules
from aftercare.risk.bands import Bands, parse_bands
from aftercare.secret_files import SecretFilesSource

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/aftercare"


class Settings(BaseSettings):
    """Aftercare's configuration, read from the environment (and `.env` when present)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", secrets_dir=None)

    # `production` (the default) refuses to start without authentication and payload encryption set up;
    # `aftercare dev` and the tests run as `development`. See README "Security".
    aftercare_env: str = Field(default="production", pattern="^(development|production)$")

    # Authentication. The development key (all roles) is accepted only in development.
    aftercare_dev_api_key: SecretStr | None = None
    # OAuth 2.0 bearer JWTs: the issuer (`iss`), the accepted audiences (comma-separated), the JWKS
    # (discovered from `{issuer}/.well-known/openid-configuration` when unset), the clock skew allowed,
    # the claim holding the roles (a dotted path such as `realm_access.roles`; `scope` is split on spaces).
    auth_jwt_issuer: str | None = None
    auth_jwt_audience: str | None = None
    auth_jwt_jwks_url: str | None = None
    auth_jwt_leeway_seconds: int = Field(default=30, ge=0, le=600)
    auth_jwt_roles_claim: str = "roles"
    # The claim naming the facilities (subtrees) a user reaches; absent: the whole group.
    auth_jwt_facilities_claim: str = "facilities"
    auth_jwt_subject_claim: str = "sub"
    auth_jwt_algorithms: list[str] = Field(default=["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"])
    # How long an API key lookup is cached in a process (revocation reaches other processes within it).
    auth_api_key_cache_seconds: float = Field(default=5.0, ge=0, le=60)
    # The console signs a user out after this long without a request.
    console_idle_minutes: int = Field(default=30, ge=1, le=720)
    # The console's sign-in through the identity provider (`AUTH_JWT_ISSUER`): the client registered
    # there (authorization code with PKCE; a secret only for a confidential client) and its scopes.
    console_oidc_client_id: str | None = None
    console_oidc_client_secret: SecretStr | None = None
    console_oidc_scopes: str = "openid profile"

    # Temporal payload encryption: `kid:base64key,kid2:base64key` (AES-256); the first encrypts, all decrypt.
    # `AFTERCARE_CODEC_KEYS_FILE` names a file holding the same (one key per line or comma-separated).
    aftercare_codec_keys: SecretStr | None = None
    # Browser origins of the Temporal Web UI allowed to call `/codec/*` (CORS).
    temporal_ui_origins: list[str] = Field(default=[])

    # Hardening: request body limits (a larger one for `POST /v1/fhir/import`), requests per second and
    # burst per caller on the trigger and notification endpoints (0: no limit), browser origins allowed
    # on the API (none by default), proxies whose `X-Forwarded-For` / `X-Forwarded-Proto` are believed.
    max_request_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_import_request_bytes: int = Field(default=100 * 1024 * 1024, ge=1024)
    rate_limit_per_second: float = Field(default=50.0, ge=0)
    rate_limit_burst: int = Field(default=100, ge=1)
    cors_origins: list[str] = Field(default=[])
    trusted_proxies: list[str] = Field(default=[])

    database_url: str = DEFAULT_DATABASE_URL
    database_pool_size: int = 10
    # Admission control (api/middleware/admission.py): requests doing work at once in one API process
    # (0: twice DATABASE_POOL_SIZE, the pool with its overflow), and how long one may wait to start
    # before it is refused with 503 and Retry-After.
    api_max_in_flight: int = Field(default=0, ge=0)
    api_admission_wait_seconds: float = Field(default=2.0, gt=0)

    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    temporal_task_queue: str = "aftercare"
    # A Temporal cluster behind TLS: mutual TLS with a client certificate and key (PEM files, e.g. a
    # Kubernetes secret mounted as files), the CA that signed the server's certificate (the system's
    # roots when unset), the name to check it against; or Temporal Cloud's API key (TLS implied).
    temporal_tls: bool = False
    temporal_tls_cert_file: str | None = None
    temporal_tls_key_file: str | None = None
    temporal_tls_ca_file: str | None = None
    temporal_tls_server_name: str | None = None
    temporal_api_key: SecretStr | None = None

    # The default FHIR source ("default"): the server journeys `fetch` from, id-only notifications are
    # read from, and polling and bulk export run against. More sources: `POST /v1/fhir/sources`.
    fhir_base_url: str | None = None
    # Write outreach back to the default source: each message a Communication (FHIR_WRITE_BACK=true).
    fhir_write_back: bool = False
    fhir_auth: str = Field(default="none", pattern="^(none|bearer|client_credentials|smart_backend)$")
    fhir_bearer_token: SecretStr | None = None
    fhir_client_id: str | None = None
    fhir_client_secret: SecretStr | None = None
    # SMART Backend Services: the private key (PEM) signing the JWT client assertion, its `kid`, RS384
    # or ES384; the token endpoint (discovered from .well-known/smart-configuration when unset).
    fhir_private_key: SecretStr | None = None
    fhir_private_key_file: str | None = None
    fhir_key_id: str | None = None
    fhir_signing_algorithm: str = Field(default="RS384", pattern="^(RS384|ES384)$")
    fhir_token_url: str | None = None
    fhir_scope: str = "system/*.rs"
    fhir_verify_tls: bool = True
    fhir_ca_bundle: str | None = None
    fhir_client_cert: str | None = None
    fhir_client_key: str | None = None
    fhir_timeout_seconds: float = Field(default=30.0, gt=0)
    # Polling fallback for servers without subscriptions: seconds between polls (0: no polling).
    fhir_poll_seconds: int = Field(default=0, ge=0)
    fhir_watched_types: list[str] = Field(
        default=[
            "Patient",
            "Encounter",
            "AllergyIntolerance",
            "EpisodeOfCare",
            "Observation",
            "Condition",
            "Procedure",
            "MedicationRequest",
            "Appointment",
            "Immunization",
        ]
    )
    phone_default_region: str = Field(default="US", min_length=2, max_length=2)
    hospital_timezone: str = "America/New_York"

    # Guardrails (aftercare/guardrails): quiet hours in the patient's zone (empty: none), purposes that
    # may send in them, frequency caps per patient over every journey, the age under which a patient
    # needs a guardian contact (0: no age rule), and purposes that need an explicit opt-in.
    quiet_hours_start: str = Field(default="21:00", pattern=r"^(([01]\d|2[0-3]):[0-5]\d)?$")
    quiet_hours_end: str = Field(default="08:00", pattern=r"^(([01]\d|2[0-3]):[0-5]\d)?$")
    urgent_purposes: list[str] = Field(default=[])
    frequency_caps: list[FrequencyCap] = Field(default=[])
    minor_age: int = Field(default=18, ge=0)
    opt_in_purposes: list[str] = Field(default=["marketing"])

    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_from_number: str | None = None
    twilio_base_url: str | None = None
    # The secret of a Twilio webhook signing key, for webhooks signed with HMAC-SHA256 (the header
    # X-Twilio-Webhooks-Signature-Settings says so); other webhooks are signed with the auth token.
    twilio_webhook_signing_key: SecretStr | None = None
    # Answer HELP ourselves; turn off when Twilio's Advanced Opt-Out answers it.
    sms_help_reply: bool = True

    sendgrid_api_key: SecretStr | None = None
    sendgrid_from_email: str | None = None
    sendgrid_base_url: str | None = None
    sendgrid_webhook_public_key: str | None = None

    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    smtp_from_email: str | None = None

    vapid_private_key: SecretStr | None = None
    vapid_public_key: str | None = None
    vapid_subject: str = "mailto:outreach@hospital.example"

    # Messages per second each provider may take, shared by every worker; 0 means no limit.
    twilio_max_per_second: float = Field(default=0.0, ge=0)
    sendgrid_max_per_second: float = Field(default=0.0, ge=0)
    smtp_max_per_second: float = Field(default=0.0, ge=0)
    push_max_per_second: float = Field(default=0.0, ge=0)

    public_base_url: str | None = None
    webhook_max_age_seconds: int = 300
    # Signs event check-in codes and self-service links; set it in production (any long random string).
    event_link_secret: SecretStr | None = None
    # Patients' links in messages (unsubscribe, preference centre, surveys): how long they work, and the
    # mailbox a `mailto:` List-Unsubscribe writes to (none: only the https one-click link).
    patient_link_days: int = Field(default=90, ge=1, le=730)
    unsubscribe_mailto: str | None = None
    # How long a freed seat stays offered to the next on an event's waitlist.
    event_offer_hours: float = Field(default=24.0, gt=0)

    # Threads for the (blocking) provider SDK calls a worker makes at once.
    provider_threads: int = Field(default=32, ge=1, le=512)
    # Campaigns: batch activities a run sends at once, and provider calls a batch has in flight.
    campaign_parallel_batches: int = Field(default=2, ge=1, le=16)
    campaign_delivery_concurrency: int = Field(default=16, ge=1, le=256)
    # Analytics CSV exports: counts from 1 up to this one less are shown as "<N" (the small-cell rule).
    analytics_small_cell: int = Field(default=11, ge=1, le=1000)
    # Seconds between two folds of the analytics deltas into the rollups (the worker's loop; 0: none).
    analytics_fold_seconds: float = Field(default=1.0, ge=0, le=3600)

    hospital_name: str = "Aftercare General Hospital"
    hospital_address: str = "1 Hospital Way\nSpringfield, MA 01101"
    hospital_phone: str | None = None

    worker_metrics_port: int | None = None
    worker_max_cached_workflows: int = Field(default=1000, ge=0)
    worker_workflow_task_pollers: int = Field(default=20, ge=2)
    # Temporal's workflow sandbox in the worker: runtime checks that workflow code reads no clock,
    # randomness or I/O, at about a quarter of the worker's CPU per journey task. The test suite always
    # runs workflows and replays recorded histories in the sandbox; turn it on while writing code journeys.
    workflow_sandbox: bool = False

    # Identity resolution (aftercare/identity): rules in order of precedence, `fields[:auto|review]`.
    # `identifier` (same identifier system and value) always merges; the others propose a candidate for
    # review (`GET /v1/identity/candidates`) unless marked `:auto`. Fields: phone, email, name, birth_date.
    identity_rules: list[str] = Field(
        default=["identifier", "phone+birth_date", "email+birth_date", "name+birth_date"]
    )

    # HL7 v2 feeds: the identifier system (URI) each assigning authority of PID-3 and MRG-1 stands for,
    # e.g. {"NORTH_MRN": "http://north-hospital.example/mrn"}, so ADT and FHIR records of one person match.
    hl7v2_authority_systems: dict[str, str] = Field(default={})
    # Readmission risk bands: `score:moderate_from:high_from`, comma-separated, over the defaults
    # (LACE 0-4 low, 5-9 moderate, 10+ high; HOSPITAL 0-4 low, 5-6 moderate, 7+ high).
    risk_bands: str = ""
    # Transitional Care Management: the channels on which a patient's reply counts as an interactive
    # contact (a call task's `reached` always does).
    tcm_interactive_channels: list[str] = Field(default=["sms", "email", "voice", "whatsapp"])

    log_level: str = "INFO"
    log_format: str = Field(default="json", pattern="^(json|text)$")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Secrets also come from files: `TWILIO_AUTH_TOKEN_FILE=/run/secrets/twilio` and so on."""
        return init_settings, env_settings, SecretFilesSource(settings_cls), dotenv_settings

    @field_validator("identity_rules")
    @classmethod
    def _valid_identity_rules(cls, rules: list[str]) -> list[str]:
        parse_rules(rules)
        return rules

    @field_validator("hl7v2_authority_systems")
    @classmethod
    def _uri_systems(cls, systems: dict[str, str]) -> dict[str, str]:
        for authority, system in systems.items():
            if not system.startswith(("http://", "https://", "urn:")):
                raise ValueError(f"the system of authority {authority!r} must be a URI (http(s):// or urn:)")
        return systems

    @field_validator("risk_bands")
    @classmethod
    def _valid_risk_bands(cls, text: str) -> str:
        parse_bands(text)
        return text

    @property
    def bands(self) -> dict[str, Bands]:
        """The risk bands per score these settings describe."""
        return parse_bands(self.risk_bands)

    @property
    def guardrails(self) -> GuardrailPolicy:
        """The guardrail policy these settings describe."""
        quiet = None
        if self.quiet_hours_start and self.quiet_hours_end:
            quiet = parse_quiet_hours(f"{self.quiet_hours_start}-{self.quiet_hours_end}")
        return GuardrailPolicy(
            hospital_timezone=self.hospital_timezone,
            quiet_hours=quiet,
            urgent_purposes=frozenset(self.urgent_purposes),
            caps=tuple(self.frequency_caps),
            minor_age=self.minor_age,
            opt_in_purposes=frozenset(self.opt_in_purposes),
        )

    @property
    def sendgrid_configured(self) -> bool:
        """True when the SendGrid email provider can be used."""
        return bool(self.sendgrid_api_key and self.sendgrid_from_email)

    @property
    def smtp_configured(self) -> bool:
        """True when email can go through an SMTP relay."""
        return bool(self.smtp_host and self.smtp_from_email)

    @property
    def push_configured(self) -> bool:
        """True when a Web Push (VAPID) private key is set (the public key is derived from it)."""
        return bool(self.vapid_private_key)

    @property
    def development(self) -> bool:
        """True under `aftercare dev` and in the tests (`AFTERCARE_ENV=development`)."""
        return self.aftercare_env == "development"

    @property
    def jwt_audiences(self) -> list[str]:
        """The accepted JWT audiences."""
        return [part.strip() for part in (self.auth_jwt_audience or "").split(",") if part.strip()]

    @property
    def writes_back(self) -> bool:
        """True when outreach is written back to the default FHIR source (FHIR_WRITE_BACK with a URL)."""
        return self.fhir_write_back and self.fhir_base_url is not None

    @property
    def write_back_queue(self) -> str | None:
        """The task queue of write-back workflows when outreach is written back, else None."""
        return self.temporal_task_queue if self.writes_back else None

    @property
    def twilio_configured(self) -> bool:
        """True when every setting the Twilio SMS provider needs is present."""
        return bool(self.twilio_account_sid and self.twilio_auth_token and self.twilio_from_number)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()


def event_link_secret(settings: Settings) -> bytes:
    """The key of check-in codes and self-service links: `EVENT_LINK_SECRET`, else (development) one
    derived from the database URL, so every process of one stack agrees."""
    if settings.event_link_secret is not None:
        return settings.event_link_secret.get_secret_value().encode()
    return hashlib.sha256(f"aftercare-event-links:{settings.database_url}".encode()).digest()
