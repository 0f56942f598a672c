"""Development credentials for `aftercare dev`: the all-roles API key, the payload codec key and a Twilio
auth token (to sign inbound SMS), taken from the environment when set, otherwise generated once and
kept under the data directory (so a restart keeps them, and journeys encrypted before the restart still
decrypt)."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from aftercare.security.codec import new_codec_key

DEV_KEY_FILE = "dev-api-key"
CODEC_KEYS_FILE = "codec-keys"
TWILIO_TOKEN_FILE = "dev-twilio-auth-token"  # noqa: S105 (a file name)


def _kept(path: Path, make: str) -> str:
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(make + "\n")
    return make


def dev_api_key(data_dir: Path, configured: str | None = None) -> str:
    """`AFTERCARE_DEV_API_KEY` when set, else the key kept in the data directory (made on first use)."""
    return configured or _kept(data_dir / DEV_KEY_FILE, f"ak_dev_{secrets.token_urlsafe(32)}")


def dev_twilio_auth_token(data_dir: Path) -> str:
    """The development Twilio auth token kept in the data directory (made on first use). With a token and
    no account, webhooks verify signatures made with it while texts still go to the outbox."""
    return _kept(data_dir / TWILIO_TOKEN_FILE, secrets.token_hex(16))


def dev_codec_keys_file(data_dir: Path) -> Path:
    """The file holding the development codec key (made on first use)."""
    path = data_dir / CODEC_KEYS_FILE
    _kept(path, new_codec_key("dev1"))
    return path


def codec_ui_token(dev_key: str) -> str:
    """The path credential of the development Temporal UI's codec endpoint: derived from the development
    key, it grants the codec and nothing else (the UI cannot send headers to an http endpoint)."""
    return hmac.new(dev_key.encode(), b"aftercare codec ui", hashlib.sha256).hexdigest()[:40]
