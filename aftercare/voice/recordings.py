"""Voicemails patients leave: the recording's URL at Twilio sealed with AES-GCM under the codec keys
(`AFTERCARE_CODEC_KEYS`), never stored or logged in the clear."""

from __future__ import annotations

from aftercare.hl7v2.sealing import RawSealer, Sealed
from aftercare.security.codec import parse_codec_keys
from aftercare.settings import Settings
from models.voice_tables import VoiceCall

_CONTEXT = b"aftercare:voicemail:"


def recording_sealer(settings: Settings) -> RawSealer:
    """The sealer for voicemails (no key configured: recordings are not kept)."""
    keys = settings.aftercare_codec_keys
    return RawSealer(parse_codec_keys(keys.get_secret_value()) if keys else [], context=_CONTEXT)


def seal_recording(settings: Settings, recording_url: str | None) -> Sealed | None:
    """The recording's URL sealed; None without one or without a key."""
    if not recording_url:
        return None
    return recording_sealer(settings).seal(recording_url)


def open_recording(settings: Settings, call: VoiceCall) -> str | None:
    """A kept recording's URL, for a nurse with the right to hear it."""
    if call.recording_sealed is None or call.recording_key_id is None:
        return None
    return recording_sealer(settings).open(Sealed(call.recording_key_id, call.recording_sealed))
