"""The signed JWT a SMART Backend Services client authenticates with (RFC 7523 client assertion)."""

from __future__ import annotations

import uuid
from typing import Literal

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from aftercare.fhir_client.errors import FhirConfigError

SigningAlgorithm = Literal["RS384", "ES384"]
SIGNING_ALGORITHMS: tuple[SigningAlgorithm, ...] = ("RS384", "ES384")
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# SMART asks for `exp` at most five minutes ahead; a minute less leaves room for clock skew.
ASSERTION_LIFETIME_SECONDS = 240

SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def load_signing_key(private_key_pem: str | bytes, algorithm: SigningAlgorithm) -> SigningKey:
    """The private key in the PEM, checked to suit the algorithm (RSA for RS384, EC P-384 for ES384)."""
    if algorithm not in SIGNING_ALGORITHMS:
        raise FhirConfigError(
            f"signing algorithm {algorithm!r} is not one of {', '.join(SIGNING_ALGORITHMS)}"
        )
    data = private_key_pem.encode() if isinstance(private_key_pem, str) else private_key_pem
    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as error:
        raise FhirConfigError("the SMART private key is not an unencrypted PEM private key") from error
    if algorithm == "RS384" and isinstance(key, rsa.RSAPrivateKey):
        return key
    if algorithm == "ES384" and isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp384r1":
        return key
    raise FhirConfigError(f"the SMART private key does not suit {algorithm} (RS384: RSA; ES384: EC P-384)")


def client_assertion(
    *,
    client_id: str,
    token_url: str,
    key: SigningKey,
    key_id: str,
    algorithm: SigningAlgorithm,
    now: float,
) -> str:
    """A compact JWT: `iss` = `sub` = client id, `aud` = token URL, short `exp`, unique `jti`, and the
    `kid` and `typ` headers the SMART Backend Services profile asks for."""
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": token_url,
        "exp": int(now) + ASSERTION_LIFETIME_SECONDS,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": key_id, "typ": "JWT"})
