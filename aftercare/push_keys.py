"""VAPID keys (RFC 8292): read the configured private key, derive the browser's `applicationServerKey`,
and make a new pair.

`VAPID_PRIVATE_KEY` may be a PEM (PKCS#8 or SEC1 "EC PRIVATE KEY", with real or `\\n`-escaped line
breaks) or the (unpadded) base64url raw 32-byte scalar that `web-push generate-vapid-keys` and
`vapid --gen` print (a base64 DER key works too).

A new pair for a `.env` file: `python -m aftercare.push_keys`.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from models.push import decode_base64url, encode_base64url

_SCALAR_BYTES = 32
_STANDARD_TO_URLSAFE = str.maketrans("+/", "-_")


class VapidKeyError(ValueError):
    """The configured VAPID private key cannot be used (the message never repeats the key)."""


@dataclass(frozen=True)
class VapidKeyPair:
    """A new VAPID pair: the private scalar and the public point, both unpadded base64url."""

    private_key: str
    public_key: str

    def __repr__(self) -> str:
        return f"VapidKeyPair(public_key={self.public_key!r})"


def load_vapid_private_key(value: str) -> ec.EllipticCurvePrivateKey:
    """The P-256 private key from a PEM, a base64url DER, or a base64url raw 32-byte scalar."""
    text = value.strip().replace("\\n", "\n")
    try:
        if "-----BEGIN" in text:
            key = serialization.load_pem_private_key(text.encode("ascii"), password=None)
        else:
            raw = decode_base64url("".join(text.split()).translate(_STANDARD_TO_URLSAFE))
            if len(raw) == _SCALAR_BYTES:
                key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
            else:
                key = serialization.load_der_private_key(raw, password=None)
    except (ValueError, TypeError, UnicodeError) as error:
        raise VapidKeyError(
            "the VAPID private key is neither a PEM nor a base64url P-256 private key"
        ) from error
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise VapidKeyError("the VAPID private key must be an elliptic curve P-256 (prime256v1) key")
    return key


def application_server_key(private_key: ec.EllipticCurvePrivateKey | str) -> str:
    """The public key as browsers want it: the unpadded base64url uncompressed point (65 bytes)."""
    key = load_vapid_private_key(private_key) if isinstance(private_key, str) else private_key
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return encode_base64url(point)


def same_public_key(configured: str, derived: str) -> bool:
    """True when a configured public key (padded or not) is the one derived from the private key."""
    try:
        return decode_base64url(configured.strip()) == decode_base64url(derived)
    except ValueError:
        return False


def generate_vapid_keys() -> VapidKeyPair:
    """A new random P-256 pair."""
    key = ec.generate_private_key(ec.SECP256R1())
    scalar = key.private_numbers().private_value.to_bytes(_SCALAR_BYTES, "big")
    return VapidKeyPair(private_key=encode_base64url(scalar), public_key=application_server_key(key))


def env_lines(keys: VapidKeyPair, subject: str = "mailto:outreach@hospital.example") -> str:
    """The environment settings for a pair, ready for a `.env` file."""
    return (
        f"VAPID_PRIVATE_KEY={keys.private_key}\nVAPID_PUBLIC_KEY={keys.public_key}\nVAPID_SUBJECT={subject}\n"
    )


def main() -> None:
    """Print the settings of a new VAPID pair."""
    print(env_lines(generate_vapid_keys()), end="")


if __name__ == "__main__":
    main()
