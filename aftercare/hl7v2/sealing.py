"""Raw HL7 text at rest: sealed with AES-256-GCM under the codec keys that encrypt Temporal payloads
(`AFTERCARE_CODEC_KEYS`), the key id bound in as associated data; rotation works the same way."""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from aftercare.security.codec import CodecKey, PayloadDecryptionError

_NONCE_BYTES = 12
_CONTEXT = b"aftercare:hl7v2:"


@dataclass(frozen=True)
class Sealed:
    """Ciphertext (nonce first) and the id of the key that sealed it."""

    key_id: str
    data: bytes


class RawSealer:
    """Seals with the first key; opens with any listed one."""

    def __init__(self, keys: list[CodecKey], context: bytes = _CONTEXT) -> None:
        self._context = context
        self._keys = {key.key_id: AESGCM(key.key) for key in keys}
        self._current = keys[0].key_id if keys else None

    def seal(self, text: str) -> Sealed | None:
        """The text sealed; None when no key is configured (then the raw text is not kept)."""
        if self._current is None:
            return None
        nonce = os.urandom(_NONCE_BYTES)
        cipher = self._keys[self._current]
        return Sealed(
            self._current,
            nonce + cipher.encrypt(nonce, text.encode(), self._context + self._current.encode()),
        )

    def open(self, sealed: Sealed) -> str:
        """The text again; `PayloadDecryptionError` for an unknown key or altered ciphertext."""
        cipher = self._keys.get(sealed.key_id)
        if cipher is None:
            raise PayloadDecryptionError(f"the message is sealed with unknown key {sealed.key_id!r}")
        try:
            plain = cipher.decrypt(
                sealed.data[:_NONCE_BYTES], sealed.data[_NONCE_BYTES:], self._context + sealed.key_id.encode()
            )
        except Exception as error:
            raise PayloadDecryptionError("the sealed message was altered or is corrupt") from error
        return plain.decode()
