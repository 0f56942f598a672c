"""Encryption of every Temporal payload (AES-256-GCM), so Temporal's database and histories hold no
readable PHI.

Each encrypted payload is the serialised original payload, encrypted under the current key with a fresh
96-bit nonce; its metadata says `encoding: binary/encrypted` and names the key (`encryption-key-id`).
The key id is authenticated too (associated data), so a payload cannot be moved to another key. Keys
rotate by putting a new one first: it encrypts from then on, and every listed key still decrypts.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
_NONCE_BYTES = 12
_KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class CodecKeyError(ValueError):
    """The configured keys cannot be used."""


class PayloadDecryptionError(ValueError):
    """A payload that does not decrypt: an unknown key, or ciphertext that was changed."""


@dataclass(frozen=True)
class CodecKey:
    """One AES-256 key and its id."""

    key_id: str
    key: bytes


def parse_codec_keys(text: str) -> list[CodecKey]:
    """`kid:base64key` items separated by commas or newlines, the encrypting key first."""
    keys: list[CodecKey] = []
    for item in re.split(r"[,\n]", text):
        item = item.strip()
        if not item:
            continue
        key_id, separator, encoded = item.partition(":")
        if not separator or not _KEY_ID.match(key_id):
            raise CodecKeyError(f"a codec key is `id:base64key` with an id of [A-Za-z0-9._-]; got {key_id!r}")
        try:
            key = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError) as error:
            raise CodecKeyError(f"codec key {key_id!r} is not base64") from error
        if len(key) != 32:
            raise CodecKeyError(f"codec key {key_id!r} has {len(key)} bytes; AES-256 needs 32")
        if any(existing.key_id == key_id for existing in keys):
            raise CodecKeyError(f"codec key id {key_id!r} is listed twice")
        keys.append(CodecKey(key_id, key))
    if not keys:
        raise CodecKeyError("no codec key is configured")
    return keys


def new_codec_key(key_id: str) -> str:
    """A fresh key in the settings format, `kid:base64key`."""
    return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM over whole payloads, with key ids and rotation."""

    def __init__(self, keys: Sequence[CodecKey]) -> None:
        if not keys:
            raise CodecKeyError("no codec key is configured")
        self._current = keys[0].key_id
        self._ciphers = {key.key_id: AESGCM(key.key) for key in keys}

    @property
    def current_key_id(self) -> str:
        """The key that encrypts."""
        return self._current

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Encrypt each payload under the current key."""
        return [self.encrypt(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Decrypt encrypted payloads; others (written before encryption was on) pass unchanged."""
        return [self.decrypt(payload) for payload in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        """One payload, encrypted."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._ciphers[self._current].encrypt(
            nonce, payload.SerializeToString(), self._current.encode()
        )
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID_METADATA: self._current.encode()}, data=nonce + sealed
        )

    def decrypt(self, payload: Payload) -> Payload:
        """One payload, decrypted; raises `PayloadDecryptionError` when it cannot be."""
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID_METADATA, b"").decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise PayloadDecryptionError(f"the payload is encrypted with unknown key {key_id!r}")
        if len(payload.data) <= _NONCE_BYTES:
            raise PayloadDecryptionError("the encrypted payload is truncated")
        try:
            plain = cipher.decrypt(payload.data[:_NONCE_BYTES], payload.data[_NONCE_BYTES:], key_id.encode())
        except InvalidTag as error:
            raise PayloadDecryptionError(
                f"the payload encrypted with key {key_id!r} was altered or is corrupt"
            ) from error
        decoded = Payload()
        decoded.ParseFromString(plain)
        return decoded
