"""Bearer tokens: who is calling, on behalf of which district, with which role and plan.

Both services verify a JWT on every call (``services.common.auth_interceptor`` does it once per
server). Claims: ``sub``, ``district``, ``role``, ``plan``, plus the registered ``exp``, ``iss``
and ``aud``, which are all required. HS256 with a shared secret suits embedded and dev runs;
production verifies RS256/ES256 with a public key. The sync service mints its own short-lived
service tokens (``ServiceTokenProvider``) to call the roster service.

The development HS256 key is public (it is in this file), so tokens signed with it are accepted
only when ``EW_JWT_ALLOW_DEV_KEY=true``; any other configuration that would use it refuses to start.

Tokens from an identity provider: with ``EW_JWT_JWKS_URL`` (RS256/ES256) a token whose header names a
``kid`` is verified with that key from the provider's JWKS (PyJWT's ``PyJWKClient``: the key set is
cached for ``EW_JWT_JWKS_CACHE_SECONDS``, and a ``kid`` it does not know refetches it, at most once per
``EW_JWT_JWKS_REFRESH_COOLDOWN_SECONDS``, so a rotated key is picked up at once). The PEM public key
stays for the sync service's own identity: with a JWKS, ``role: service`` tokens are accepted only
when signed by the PEM key, and people's tokens only from the JWKS, so neither key can mint the other
kind.
"""

from __future__ import annotations

import enum
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Self

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key
from jwt import PyJWKClient, PyJWKClientConnectionError, PyJWKClientError
from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.errors import Unauthenticated, Unavailable

DEV_JWT_SECRET = "ew-rostersync-development-key-not-for-production-use"
"""Signs development tokens. Public by design: accepted only with ``EW_JWT_ALLOW_DEV_KEY=true``."""

ALL_DISTRICTS = "*"
"""District claim of a service identity that may act for every district."""

MIN_HMAC_SECRET_BYTES = 32

Algorithm = Literal["HS256", "RS256", "ES256"]
Metadata = tuple[tuple[str, str], ...]


class Role(enum.StrEnum):
    """What the caller is in Education Walkthrough; the ``role`` claim carries the value."""

    DISTRICT_ADMIN = "district_admin"
    SCHOOL_ADMIN = "school_admin"
    TEACHER = "teacher"
    SERVICE = "service"


PREMIUM_PLAN = "district_premium"
SERVICE_PLAN = "service"


@dataclass(frozen=True)
class Principal:
    """The verified caller of one RPC."""

    subject: str
    district_id: str
    role: Role
    plan: str

    def __post_init__(self) -> None:
        if self.district_id == ALL_DISTRICTS and self.role is not Role.SERVICE:
            raise ValueError("only the service identity may act for all districts")

    @property
    def is_service(self) -> bool:
        """True for another ew-rostersync service, not a person."""
        return self.role is Role.SERVICE


class AuthSettings(BaseSettings):
    """Token keys and checks, from ``EW_JWT_*`` variables."""

    model_config = SettingsConfigDict(env_prefix="EW_JWT_", extra="ignore")

    algorithm: Algorithm = "HS256"
    secret: SecretStr | None = None
    allow_dev_key: bool = False
    public_key: SecretStr | None = None
    public_key_file: Path | None = None
    private_key: SecretStr | None = None
    private_key_file: Path | None = None
    jwks_url: str | None = None
    jwks_cache_seconds: float = 300.0
    jwks_refresh_cooldown_seconds: float = 30.0
    jwks_timeout_seconds: float = 5.0
    issuer: str = "ew-rostersync"
    audience: str = "ew-rostersync"
    leeway_seconds: float = 30.0
    service_token_ttl_seconds: int = 300
    service_subject: str = "ew-sync"

    @model_validator(mode="after")
    def _check_consistent(self) -> Self:
        if self.service_token_ttl_seconds < 30:
            raise ValueError("EW_JWT_SERVICE_TOKEN_TTL_SECONDS must be at least 30")
        if self.leeway_seconds < 0:
            raise ValueError("EW_JWT_LEEWAY_SECONDS must not be negative")
        if self.algorithm == "HS256":
            if self.jwks_url:
                raise ValueError("EW_JWT_JWKS_URL needs EW_JWT_ALGORITHM=RS256 or ES256")
            self._check_hmac()
        else:
            self._check_asymmetric()
        return self

    def _check_hmac(self) -> None:
        if self.public_key or self.public_key_file or self.private_key or self.private_key_file:
            raise ValueError(
                "EW_JWT_PUBLIC_KEY*/EW_JWT_PRIVATE_KEY* are for RS256/ES256; "
                "with EW_JWT_ALGORITHM=HS256 set EW_JWT_SECRET only"
            )
        if self.secret is None:
            if not self.allow_dev_key:
                raise ValueError(
                    "EW_JWT_SECRET is not set: set it to a random secret of at least "
                    f"{MIN_HMAC_SECRET_BYTES} bytes (or EW_JWT_ALLOW_DEV_KEY=true for local development)"
                )
            return
        value = self.secret.get_secret_value()
        if value == DEV_JWT_SECRET and not self.allow_dev_key:
            raise ValueError(
                "EW_JWT_SECRET is the public development key; set your own secret "
                "(or EW_JWT_ALLOW_DEV_KEY=true for local development)"
            )
        if len(value.encode()) < MIN_HMAC_SECRET_BYTES:
            raise ValueError(f"EW_JWT_SECRET must be at least {MIN_HMAC_SECRET_BYTES} bytes long")

    def _check_asymmetric(self) -> None:
        if self.secret is not None:
            raise ValueError(f"EW_JWT_SECRET is for HS256; with EW_JWT_ALGORITHM={self.algorithm} use keys")
        if self.public_key and self.public_key_file:
            raise ValueError("set only one of EW_JWT_PUBLIC_KEY and EW_JWT_PUBLIC_KEY_FILE")
        if self.private_key and self.private_key_file:
            raise ValueError("set only one of EW_JWT_PRIVATE_KEY and EW_JWT_PRIVATE_KEY_FILE")
        if self.has_public_key:
            self.verification_key()
        elif not self.jwks_url:
            raise ValueError(
                f"EW_JWT_ALGORITHM={self.algorithm} needs EW_JWT_PUBLIC_KEY_FILE (or EW_JWT_PUBLIC_KEY) "
                "or EW_JWT_JWKS_URL to verify tokens"
            )
        if self.private_key or self.private_key_file:
            self.signing_key()

    @property
    def has_public_key(self) -> bool:
        """True when a PEM public key (the service identity's, or every token's) is configured."""
        return bool(self.public_key or self.public_key_file)

    @property
    def uses_dev_key(self) -> bool:
        """True when tokens are signed and verified with the public development key."""
        return self.algorithm == "HS256" and (
            self.secret is None or self.secret.get_secret_value() == DEV_JWT_SECRET
        )

    def verification_key(self) -> Any:
        """The key ``jwt.decode`` checks signatures with."""
        if self.algorithm == "HS256":
            return self._hmac_secret()
        pem = _pem(self.public_key, self.public_key_file, "EW_JWT_PUBLIC_KEY")
        try:
            key = load_pem_public_key(pem)
        except ValueError as error:
            raise ValueError("EW_JWT_PUBLIC_KEY(_FILE) is not a PEM public key") from error
        self._check_key_type(key, "EW_JWT_PUBLIC_KEY(_FILE)")
        return key

    def signing_key(self) -> Any:
        """The key ``mint_token`` signs with; RS256/ES256 need ``EW_JWT_PRIVATE_KEY(_FILE)``."""
        if self.algorithm == "HS256":
            return self._hmac_secret()
        if not (self.private_key or self.private_key_file):
            raise ValueError(f"minting {self.algorithm} tokens needs EW_JWT_PRIVATE_KEY_FILE")
        pem = _pem(self.private_key, self.private_key_file, "EW_JWT_PRIVATE_KEY")
        try:
            key = load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as error:
            raise ValueError("EW_JWT_PRIVATE_KEY(_FILE) is not an unencrypted PEM private key") from error
        self._check_key_type(key, "EW_JWT_PRIVATE_KEY(_FILE)")
        return key

    def _hmac_secret(self) -> bytes:
        return (self.secret.get_secret_value() if self.secret else DEV_JWT_SECRET).encode()

    def _check_key_type(self, key: object, variable: str) -> None:
        if self.algorithm == "RS256":
            if not isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
                raise ValueError(f"{variable} must be an RSA key for RS256")
            if key.key_size < 2048:
                raise ValueError(f"{variable} must be an RSA key of at least 2048 bits")
        elif not (
            isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey)
            and isinstance(key.curve, ec.SECP256R1)
        ):
            raise ValueError(f"{variable} must be a P-256 EC key for ES256")


def _pem(inline: SecretStr | None, path: Path | None, variable: str) -> bytes:
    if inline is not None:
        return inline.get_secret_value().encode()
    if path is None:
        raise ValueError(f"{variable}_FILE is not set")
    try:
        return path.read_bytes()
    except OSError as error:
        raise ValueError(f"{variable}_FILE cannot be read: {error.strerror}") from error


def parse_bearer(authorization: list[str]) -> str:
    """The token from the ``authorization`` metadata values of one call."""
    if not authorization:
        raise Unauthenticated("missing bearer token", reason="MISSING_TOKEN")
    malformed = Unauthenticated(
        "malformed authorization header: expected one 'Bearer <token>'", reason="MALFORMED_AUTHORIZATION"
    )
    if len(authorization) > 1:
        raise malformed
    scheme, _, token = authorization[0].strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise malformed
    return token


class TokenVerifier:
    """Checks a token's signature and claims and returns who it names."""

    def __init__(self, settings: AuthSettings) -> None:
        self._settings = settings
        self._key = (
            settings.verification_key() if settings.algorithm == "HS256" or settings.has_public_key else None
        )
        self._jwks = (
            PyJWKClient(
                settings.jwks_url,
                lifespan=settings.jwks_cache_seconds,
                timeout=settings.jwks_timeout_seconds,
                cooldown_duration=settings.jwks_refresh_cooldown_seconds,
            )
            if settings.jwks_url
            else None
        )

    def _key_for(self, token: str) -> tuple[Any, bool]:
        """The key to check ``token`` with, and whether it came from the identity provider's JWKS."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.DecodeError as error:
            raise _invalid("token is not a well-formed JWT") from error
        if self._jwks is not None and kid:
            try:
                return self._jwks.get_signing_key(str(kid)).key, True
            except PyJWKClientConnectionError as error:
                raise Unavailable(
                    "The identity provider's signing keys could not be fetched; try again shortly.",
                    reason="JWKS_UNAVAILABLE",
                ) from error
            except PyJWKClientError as error:
                raise _invalid("token is signed by a key the identity provider does not publish") from error
        if self._key is None:
            raise _invalid("token names no key id (kid) of the identity provider")
        return self._key, False

    def verify(self, token: str) -> Principal:
        """The caller a valid token names; ``Unauthenticated`` with a safe message otherwise."""
        key, from_identity_provider = self._key_for(token)
        principal = self._decode(token, key)
        if self._jwks is not None and principal.is_service == from_identity_provider:
            raise _invalid(
                "token role does not match its key: the service identity's key signs service tokens, "
                "the identity provider signs people's"
            )
        return principal

    def _decode(self, token: str, key: Any) -> Principal:
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[self._settings.algorithm],
                audience=self._settings.audience,
                issuer=self._settings.issuer,
                leeway=self._settings.leeway_seconds,
                options={"require": ["exp", "iss", "aud", "sub", "district", "role", "plan"]},
            )
        except jwt.ExpiredSignatureError as error:
            raise _invalid("token expired", "TOKEN_EXPIRED") from error
        except jwt.InvalidSignatureError as error:
            raise _invalid("token signature is invalid") from error
        except jwt.InvalidAudienceError as error:
            raise _invalid("token audience is wrong") from error
        except jwt.InvalidIssuerError as error:
            raise _invalid("token issuer is wrong") from error
        except jwt.MissingRequiredClaimError as error:
            raise _invalid(f"token lacks the required claim '{error.claim}'") from error
        except jwt.InvalidAlgorithmError as error:
            raise _invalid(f"token algorithm is not {self._settings.algorithm}") from error
        except jwt.ImmatureSignatureError as error:
            raise _invalid("token is not valid yet") from error
        except jwt.DecodeError as error:
            raise _invalid("token is not a well-formed JWT") from error
        except jwt.InvalidTokenError as error:
            raise _invalid("token is invalid") from error
        return _principal(claims)


def _invalid(message: str, reason: str = "TOKEN_INVALID") -> Unauthenticated:
    return Unauthenticated(message, reason=reason)


def _principal(claims: dict[str, Any]) -> Principal:
    values: dict[str, str] = {}
    for claim in ("sub", "district", "role", "plan"):
        value = claims[claim]
        if not isinstance(value, str) or not value.strip():
            raise _invalid(f"token claim '{claim}' must be a non-empty string")
        values[claim] = value
    try:
        role = Role(values["role"])
    except ValueError as error:
        raise _invalid("token claim 'role' names an unknown role") from error
    if values["district"] == ALL_DISTRICTS and role is not Role.SERVICE:
        raise _invalid("token claim 'district' may be '*' only for the service role")
    return Principal(subject=values["sub"], district_id=values["district"], role=role, plan=values["plan"])


def mint_token(
    settings: AuthSettings,
    subject: str,
    district_id: str,
    role: Role,
    plan: str,
    ttl_seconds: int,
    *,
    issued_at: datetime | None = None,
) -> str:
    """Sign a token with the configured signing key; it expires ``ttl_seconds`` after issue."""
    if ttl_seconds <= 0:
        raise ValueError("ttl_seconds must be positive")
    Principal(subject=subject, district_id=district_id, role=role, plan=plan)
    now = issued_at or datetime.now(UTC)
    claims = {
        "sub": subject,
        "district": district_id,
        "role": role.value,
        "plan": plan,
        "iss": settings.issuer,
        "aud": settings.audience,
        "iat": now,
        "exp": now + timedelta(seconds=ttl_seconds),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, settings.signing_key(), algorithm=settings.algorithm)


class ServiceTokenProvider:
    """The sync service's own identity for calls to the roster service.

    Caches one short-lived token for every district and mints the next one when less than a fifth
    of its lifetime (at most a minute) is left, so a call never leaves with a token about to expire.
    """

    def __init__(self, settings: AuthSettings, *, clock: Callable[[], float] = time.time) -> None:
        settings.signing_key()  # fail at startup, not on the first roster call
        self._settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._token = ""
        self._renew_at = 0.0

    def token(self) -> str:
        """A valid service token."""
        with self._lock:
            now = self._clock()
            if not self._token or now >= self._renew_at:
                ttl = self._settings.service_token_ttl_seconds
                self._token = mint_token(
                    self._settings,
                    self._settings.service_subject,
                    ALL_DISTRICTS,
                    Role.SERVICE,
                    SERVICE_PLAN,
                    ttl,
                    issued_at=datetime.fromtimestamp(now, UTC),
                )
                self._renew_at = now + ttl - min(60.0, ttl / 5)
            return self._token

    def metadata(self) -> Metadata:
        """Call metadata carrying the service token: pass as ``metadata=`` on each roster call."""
        return (("authorization", f"Bearer {self.token()}"),)
