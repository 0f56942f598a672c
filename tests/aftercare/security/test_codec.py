"""The payload codec: AES-256-GCM per payload, key ids, rotation, and loud failures."""

from __future__ import annotations

import base64

import pytest
from temporalio.api.common.v1 import Payload

from aftercare.security.codec import (
    ENCODING,
    KEY_ID_METADATA,
    CodecKeyError,
    EncryptionCodec,
    PayloadDecryptionError,
    new_codec_key,
    parse_codec_keys,
)

PLAIN = Payload(metadata={"encoding": b"json/plain"}, data=b'{"given": "Abdul", "phone": "+15559784581"}')


def codec(*keys: str) -> EncryptionCodec:
    return EncryptionCodec(parse_codec_keys(",".join(keys)))


async def test_a_payload_is_encrypted_under_the_current_key_and_decrypts_to_itself() -> None:
    subject = codec(new_codec_key("k1"))

    [sealed] = await subject.encode([PLAIN])
    [opened] = await subject.decode([sealed])

    assert sealed.metadata["encoding"] == ENCODING
    assert sealed.metadata[KEY_ID_METADATA] == b"k1"
    assert b"Abdul" not in sealed.data
    assert b"json/plain" not in sealed.data
    assert opened == PLAIN


async def test_the_same_payload_encrypts_differently_each_time() -> None:
    subject = codec(new_codec_key("k1"))
    first, second = await subject.encode([PLAIN, PLAIN])
    assert first.data != second.data


async def test_rotation_encrypts_with_the_first_key_and_still_decrypts_with_the_old_ones() -> None:
    old, new = new_codec_key("old"), new_codec_key("new")
    [written_before] = await codec(old).encode([PLAIN])
    rotated = codec(new, old)

    [written_after] = await rotated.encode([PLAIN])

    assert written_after.metadata[KEY_ID_METADATA] == b"new"
    assert await rotated.decode([written_before, written_after]) == [PLAIN, PLAIN]


async def test_a_payload_under_a_key_no_longer_configured_fails_loudly() -> None:
    [sealed] = await codec(new_codec_key("gone")).encode([PLAIN])
    with pytest.raises(PayloadDecryptionError, match="unknown key 'gone'"):
        await codec(new_codec_key("k2")).decode([sealed])


@pytest.mark.parametrize("position", [0, 5, 20, -1])
async def test_tampered_ciphertext_fails_loudly(position: int) -> None:
    subject = codec(new_codec_key("k1"))
    [sealed] = await subject.encode([PLAIN])
    data = bytearray(sealed.data)
    data[position] ^= 0x01
    tampered = Payload(metadata=dict(sealed.metadata), data=bytes(data))

    with pytest.raises(PayloadDecryptionError, match="altered or is corrupt"):
        await subject.decode([tampered])


async def test_a_payload_moved_to_another_key_id_fails_even_with_the_same_key_bytes() -> None:
    key = new_codec_key("a").partition(":")[2]
    subject = codec(f"a:{key}", f"b:{key}")
    [sealed] = await subject.encode([PLAIN])
    relabelled = Payload(metadata={**sealed.metadata, KEY_ID_METADATA: b"b"}, data=sealed.data)

    with pytest.raises(PayloadDecryptionError):
        await subject.decode([relabelled])


async def test_a_truncated_payload_fails_loudly() -> None:
    subject = codec(new_codec_key("k1"))
    truncated = Payload(metadata={"encoding": ENCODING, KEY_ID_METADATA: b"k1"}, data=b"short")
    with pytest.raises(PayloadDecryptionError, match="truncated"):
        await subject.decode([truncated])


async def test_payloads_written_before_encryption_pass_through_unchanged() -> None:
    assert await codec(new_codec_key("k1")).decode([PLAIN]) == [PLAIN]


def test_keys_are_read_from_commas_or_lines() -> None:
    keys = parse_codec_keys(f"{new_codec_key('one')}\n{new_codec_key('two')}, {new_codec_key('three')}\n")
    assert [key.key_id for key in keys] == ["one", "two", "three"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no codec key"),
        ("k1", "id:base64key"),
        ("bad id:" + base64.b64encode(bytes(32)).decode(), "id:base64key"),
        ("k1:not-base64!", "not base64"),
        ("k1:" + base64.b64encode(bytes(16)).decode(), "16 bytes; AES-256 needs 32"),
        (f"k1:{base64.b64encode(bytes(32)).decode()},k1:{base64.b64encode(bytes(32)).decode()}", "twice"),
    ],
)
def test_bad_keys_are_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(CodecKeyError, match=message):
        parse_codec_keys(text)
