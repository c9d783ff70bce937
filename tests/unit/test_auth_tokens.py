"""Token verification: every way a token can be wrong is refused with a specific, safe message."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import ValidationError

from services.common.auth import (
    ALL_DISTRICTS,
    DEV_JWT_SECRET,
    AuthSettings,
    Principal,
    Role,
    ServiceTokenProvider,
    TokenVerifier,
    mint_token,
    parse_bearer,
)
from services.common.errors import Unauthenticated

SECRET = "a-test-secret-that-is-long-enough-for-hs256"


def hs256(**overrides: object) -> AuthSettings:
    values: dict[str, object] = {"algorithm": "HS256", "secret": SECRET}
    values.update(overrides)
    return AuthSettings(**values)  # type: ignore[arg-type]


def token(settings: AuthSettings, **claims: object) -> str:
    base: dict[str, object] = {
        "sub": "alice",
        "district": "d1",
        "role": "district_admin",
        "plan": "district_premium",
        "iss": settings.issuer,
        "aud": settings.audience,
        "exp": datetime.now(UTC) + timedelta(minutes=5),
    }
    base.update(claims)
    payload = {key: value for key, value in base.items() if value is not None}
    return jwt.encode(payload, settings.signing_key(), algorithm=settings.algorithm)


def refused(settings: AuthSettings, raw: str) -> Unauthenticated:
    with pytest.raises(Unauthenticated) as caught:
        TokenVerifier(settings).verify(raw)
    assert raw not in caught.value.message
    return caught.value


def test_valid_token_names_the_caller() -> None:
    settings = hs256()
    raw = mint_token(settings, "alice", "d1", Role.DISTRICT_ADMIN, "district_premium", 60)
    assert TokenVerifier(settings).verify(raw) == Principal(
        "alice", "d1", Role.DISTRICT_ADMIN, "district_premium"
    )


def test_expired_token_is_refused_beyond_the_leeway() -> None:
    settings = hs256(leeway_seconds=30)
    two_minutes_ago = datetime.now(UTC) - timedelta(minutes=2)
    raw = mint_token(settings, "alice", "d1", Role.TEACHER, "basic", 60, issued_at=two_minutes_ago)
    error = refused(settings, raw)
    assert error.message == "token expired"
    assert error.reason == "TOKEN_EXPIRED"


def test_token_expired_within_the_leeway_is_accepted() -> None:
    settings = hs256(leeway_seconds=30)
    raw = token(settings, exp=datetime.now(UTC) - timedelta(seconds=5))
    assert TokenVerifier(settings).verify(raw).subject == "alice"


@pytest.mark.parametrize(
    ("raw_of", "message"),
    [
        (
            lambda s: token(hs256(secret="another-secret-that-is-also-long-enough!!")),
            "token signature is invalid",
        ),
        (lambda s: token(s, aud="someone-else"), "token audience is wrong"),
        (lambda s: token(s, iss="someone-else"), "token issuer is wrong"),
        (lambda s: token(s, exp=None), "token lacks the required claim 'exp'"),
        (lambda s: token(s, district=None), "token lacks the required claim 'district'"),
        (lambda s: token(s, plan=None), "token lacks the required claim 'plan'"),
        (lambda s: token(s, role="superuser"), "token claim 'role' names an unknown role"),
        (lambda s: token(s, sub=""), "token claim 'sub' must be a non-empty string"),
        (lambda s: token(s, district=7), "token claim 'district' must be a non-empty string"),
        (lambda s: token(s, district="*"), "token claim 'district' may be '*' only for the service role"),
        (lambda s: "not.a.jwt", "token is not a well-formed JWT"),
        (lambda s: jwt.encode({"sub": "x"}, key="", algorithm="none"), "token algorithm is not HS256"),
    ],
)
def test_bad_tokens_are_refused_with_a_specific_message(raw_of: object, message: str) -> None:
    settings = hs256()
    raw = raw_of(settings)  # type: ignore[operator]
    assert refused(settings, raw).message == message


def test_service_token_may_act_for_all_districts() -> None:
    settings = hs256()
    raw = mint_token(settings, "ew-sync", ALL_DISTRICTS, Role.SERVICE, "service", 60)
    principal = TokenVerifier(settings).verify(raw)
    assert principal.is_service
    assert principal.district_id == ALL_DISTRICTS


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([], "missing bearer token"),
        (["Basic dXNlcjpwYXNz"], "malformed authorization header"),
        (["Bearer"], "malformed authorization header"),
        (["Bearer a b"], "malformed authorization header"),
        (["Bearer a", "Bearer b"], "malformed authorization header"),
    ],
)
def test_authorization_header_must_be_one_bearer_token(values: list[str], message: str) -> None:
    with pytest.raises(Unauthenticated) as caught:
        parse_bearer(values)
    assert caught.value.message.startswith(message)


def test_bearer_scheme_is_case_insensitive() -> None:
    assert parse_bearer(["bearer abc.def.ghi"]) == "abc.def.ghi"


def rsa_pem_pair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return _pems(key)


def ec_pem_pair(curve: ec.EllipticCurve) -> tuple[str, str]:
    return _pems(ec.generate_private_key(curve))


def _pems(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> tuple[str, str]:
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
def test_asymmetric_tokens_verify_with_the_public_key_file(algorithm: str, tmp_path: Path) -> None:
    private, public = rsa_pem_pair() if algorithm == "RS256" else ec_pem_pair(ec.SECP256R1())
    (tmp_path / "public.pem").write_text(public)
    issuer = AuthSettings(algorithm=algorithm, public_key=public, private_key=private)  # type: ignore[arg-type]
    verifier_only = AuthSettings(algorithm=algorithm, public_key_file=tmp_path / "public.pem")  # type: ignore[arg-type]
    raw = mint_token(issuer, "bob", "d2", Role.SCHOOL_ADMIN, "basic", 60)

    assert TokenVerifier(verifier_only).verify(raw) == Principal("bob", "d2", Role.SCHOOL_ADMIN, "basic")

    other_private, other_public = rsa_pem_pair() if algorithm == "RS256" else ec_pem_pair(ec.SECP256R1())
    forged = mint_token(
        AuthSettings(algorithm=algorithm, public_key=other_public, private_key=other_private),  # type: ignore[arg-type]
        "bob",
        "d2",
        Role.DISTRICT_ADMIN,
        "district_premium",
        60,
    )
    assert refused(verifier_only, forged).message == "token signature is invalid"


def test_hs256_token_is_refused_by_an_rs256_verifier() -> None:
    """The algorithm is pinned: a token signed with HS256 using the public key as secret fails."""
    _, public = rsa_pem_pair()
    settings = AuthSettings(algorithm="RS256", public_key=public)  # type: ignore[arg-type]
    raw = jwt.encode({"sub": "x"}, SECRET, algorithm="HS256")
    assert refused(settings, raw).message == "token algorithm is not RS256"


def test_verifier_alone_cannot_mint() -> None:
    _, public = ec_pem_pair(ec.SECP256R1())
    settings = AuthSettings(algorithm="ES256", public_key=public)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="EW_JWT_PRIVATE_KEY_FILE"):
        mint_token(settings, "x", "d1", Role.TEACHER, "basic", 60)


def test_service_token_provider_reuses_then_renews_before_expiry() -> None:
    now = [time.time()]
    provider = ServiceTokenProvider(hs256(service_token_ttl_seconds=300), clock=lambda: now[0])
    first = provider.metadata()
    assert first[0][0] == "authorization"
    assert first[0][1].startswith("Bearer ")

    now[0] += 200
    assert provider.metadata() == first

    now[0] += 50  # 250 s in: less than a minute of the 300 s lifetime left
    renewed = provider.metadata()
    assert renewed != first
    claims = jwt.decode(
        renewed[0][1].removeprefix("Bearer "),
        SECRET,
        algorithms=["HS256"],
        audience="ew-rostersync",
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims["role"] == "service"
    assert claims["district"] == ALL_DISTRICTS
    assert claims["exp"] == int(now[0]) + 300


def test_service_tokens_verify() -> None:
    settings = hs256()
    raw = ServiceTokenProvider(settings).token()
    assert TokenVerifier(settings).verify(raw).is_service


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({}, "EW_JWT_SECRET is not set"),
        ({"EW_JWT_SECRET": DEV_JWT_SECRET}, "EW_JWT_SECRET is the public development key"),
        ({"EW_JWT_SECRET": "short"}, "EW_JWT_SECRET must be at least 32 bytes"),
        ({"EW_JWT_ALGORITHM": "RS256"}, "EW_JWT_PUBLIC_KEY_FILE"),
        ({"EW_JWT_ALGORITHM": "ES256", "EW_JWT_SECRET": SECRET}, "EW_JWT_SECRET is for HS256"),
        (
            {"EW_JWT_SECRET": SECRET, "EW_JWT_PUBLIC_KEY": "x"},
            "with EW_JWT_ALGORITHM=HS256 set EW_JWT_SECRET only",
        ),
        ({"EW_JWT_ALGORITHM": "RS256", "EW_JWT_PUBLIC_KEY": "junk"}, "EW_JWT_PUBLIC_KEY(_FILE) is not a PEM"),
        (
            {"EW_JWT_ALGORITHM": "RS256", "EW_JWT_PUBLIC_KEY_FILE": "/nonexistent.pem"},
            "EW_JWT_PUBLIC_KEY_FILE cannot",
        ),
        (
            {"EW_JWT_SECRET": SECRET, "EW_JWT_SERVICE_TOKEN_TTL_SECONDS": "5"},
            "EW_JWT_SERVICE_TOKEN_TTL_SECONDS",
        ),
    ],
)
def test_inconsistent_settings_fail_fast_naming_the_variable(
    env: dict[str, str], variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as caught:
        AuthSettings()
    assert variable in str(caught.value)
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    ("algorithm", "make_pair"),
    [
        ("ES256", lambda: rsa_pem_pair()),
        ("RS256", lambda: ec_pem_pair(ec.SECP256R1())),
        ("ES256", lambda: ec_pem_pair(ec.SECP384R1())),
    ],
)
def test_key_must_match_the_algorithm(algorithm: str, make_pair: object) -> None:
    _, public = make_pair()  # type: ignore[operator]
    with pytest.raises(ValidationError, match="EW_JWT_PUBLIC_KEY"):
        AuthSettings(algorithm=algorithm, public_key=public)  # type: ignore[arg-type]


def test_dev_key_is_used_only_when_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EW_JWT_ALLOW_DEV_KEY", "true")
    settings = AuthSettings()
    assert settings.uses_dev_key
    raw = mint_token(settings, "dev", "d1", Role.TEACHER, "basic", 60)
    assert jwt.decode(raw, DEV_JWT_SECRET, algorithms=["HS256"], audience="ew-rostersync")["sub"] == "dev"
    assert refused(hs256(), raw).message == "token signature is invalid"
