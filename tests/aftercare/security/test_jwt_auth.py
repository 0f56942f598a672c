"""Bearer JWTs against the issuer's JWKS: signature, issuer, audience, expiry with clock skew, roles
from a configurable claim, and the JWKS cached and fetched again only for an unknown key id."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from aftercare.security.jwt_auth import InvalidToken, JwksUnavailable, JwtConfig, JwtVerifier
from aftercare.security.principal import PrincipalKind
from models.roles import Role
from tests.aftercare.security.issuer import Issuer, running_issuer


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    with running_issuer() as running:
        yield running


def config(issuer: Issuer, **changes: object) -> JwtConfig:
    values: dict[str, object] = {
        "issuer": issuer.url,
        "audiences": ("aftercare",),
        "jwks_url": None,
        "leeway_seconds": 30,
        "roles_claim": "roles",
        "subject_claim": "sub",
        "algorithms": ("RS256",),
    }
    return JwtConfig(**{**values, **changes})  # type: ignore[arg-type]


@pytest.fixture
async def verifier(issuer: Issuer) -> AsyncIterator[JwtVerifier]:
    verifying = JwtVerifier(config(issuer))
    yield verifying
    await verifying.aclose()


async def test_a_valid_token_names_its_subject_and_roles(issuer: Issuer, verifier: JwtVerifier) -> None:
    principal = await verifier.verify(issuer.token(roles=["healthcare", "no-such-role"]))
    assert principal.kind is PrincipalKind.JWT
    assert principal.subject == "jwt:nurse-1"
    assert principal.roles == {Role.HEALTHCARE}


async def test_roles_come_from_a_nested_claim_or_the_scope(issuer: Issuer) -> None:
    nested = JwtVerifier(config(issuer, roles_claim="realm_access.roles"))
    scoped = JwtVerifier(config(issuer, roles_claim="scope"))
    assert (await nested.verify(issuer.token(realm_access={"roles": ["operator"]}))).roles == {Role.OPERATOR}
    assert (await scoped.verify(issuer.token(scope="openid trigger"))).roles == {Role.TRIGGER}


async def test_an_expired_token_is_refused(issuer: Issuer, verifier: JwtVerifier) -> None:
    with pytest.raises(InvalidToken, match="expired"):
        await verifier.verify(issuer.token(expires_in=-120))


async def test_a_token_expired_within_the_clock_skew_is_accepted(
    issuer: Issuer, verifier: JwtVerifier
) -> None:
    assert (await verifier.verify(issuer.token(expires_in=-10))).subject == "jwt:nurse-1"


async def test_a_token_for_another_audience_is_refused(issuer: Issuer, verifier: JwtVerifier) -> None:
    with pytest.raises(InvalidToken, match="audience"):
        await verifier.verify(issuer.token(audience="another-api"))


async def test_a_token_from_another_issuer_is_refused(issuer: Issuer, verifier: JwtVerifier) -> None:
    with pytest.raises(InvalidToken, match="another issuer"):
        await verifier.verify(issuer.token(issuer="https://evil.example"))


async def test_a_token_signed_with_a_foreign_key_is_refused(issuer: Issuer, verifier: JwtVerifier) -> None:
    foreign = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(InvalidToken, match="invalid"):
        await verifier.verify(issuer.token(key=foreign))


async def test_an_unsigned_or_symmetric_token_is_refused(issuer: Issuer, verifier: JwtVerifier) -> None:
    import jwt

    unsigned = jwt.encode(
        {"iss": issuer.url, "aud": "aftercare", "sub": "x", "exp": 9999999999}, None, "none"
    )
    symmetric = jwt.encode(
        {"iss": issuer.url, "aud": "aftercare", "sub": "x", "exp": 9999999999}, "k" * 32, "HS256"
    )
    for token in (unsigned, symmetric):
        with pytest.raises(InvalidToken, match="algorithm"):
            await verifier.verify(token)


async def test_garbage_is_not_a_token(verifier: JwtVerifier) -> None:
    with pytest.raises(InvalidToken, match="not a JWT"):
        await verifier.verify("not.a.jwt")


async def test_the_jwks_is_cached_and_fetched_again_once_for_a_new_key(
    issuer: Issuer, verifier: JwtVerifier
) -> None:
    for _ in range(5):
        await verifier.verify(issuer.token())
    assert issuer.jwks_fetches == 1

    verifier._fetched -= 60  # the unknown-kid refetch is allowed once every 10 s
    issuer.rotate()
    await verifier.verify(issuer.token())
    assert issuer.jwks_fetches == 2

    with pytest.raises(InvalidToken, match="no signing key"):
        await verifier.verify(issuer.token(kid="unknown", key=issuer.keys[next(iter(issuer.keys))]))
    assert issuer.jwks_fetches == 2  # no refetch storm for unknown key ids


async def test_an_unreachable_issuer_is_unavailable_not_invalid() -> None:
    verifying = JwtVerifier(
        JwtConfig("http://127.0.0.1:1", ("aftercare",), None, 30, "roles", "sub", ("RS256",))
    )
    issuer = Issuer(url="http://127.0.0.1:1")
    issuer.rotate()
    with pytest.raises(JwksUnavailable):
        await verifying.verify(issuer.token())
    await verifying.aclose()
