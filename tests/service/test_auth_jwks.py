"""Tokens from an identity provider: keys from its JWKS (rotation, unknown kid), the service key apart."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from ew.client.errors import UnauthenticatedError
from ew.client.roster import RosterClient
from jwt.algorithms import ECAlgorithm
from pydantic import SecretStr

from services.common.auth import AuthSettings, Role
from tests.support.roster import Roster, running_roster

pytestmark = pytest.mark.timeout(60)


class IdentityProvider:
    """A local JWKS endpoint whose published keys the test changes, as a provider rotating keys."""

    def __init__(self) -> None:
        self.keys: dict[str, ec.EllipticCurvePrivateKey] = {}
        self.published: list[str] = []
        self.fetches = 0
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                provider.fetches += 1
                body = json.dumps({"keys": [provider.jwk(kid) for kid in provider.published]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                """Quiet."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}/.well-known/jwks.json"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def jwk(self, kid: str) -> dict[str, Any]:
        public: dict[str, Any] = ECAlgorithm.to_jwk(self.keys[kid].public_key(), as_dict=True)
        return public | {"kid": kid, "use": "sig", "alg": "ES256"}

    def publish(self, *kids: str) -> None:
        """Publish exactly these keys (made on first use)."""
        for kid in kids:
            self.keys.setdefault(kid, ec.generate_private_key(ec.SECP256R1()))
        self.published = list(kids)

    def token(self, kid: str, *, role: Role = Role.DISTRICT_ADMIN, district: str = "d1") -> str:
        key = self.keys.setdefault(kid, ec.generate_private_key(ec.SECP256R1()))
        return sign(key, {"kid": kid}, role=role, district=district)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def sign(key: ec.EllipticCurvePrivateKey, headers: dict[str, str], *, role: Role, district: str) -> str:
    now = datetime.now(UTC)
    claims = {
        "sub": "admin@district.example",
        "district": district,
        "role": role.value,
        "plan": "district_premium",
        "iss": "ew-rostersync",
        "aud": "ew-rostersync",
        "iat": now,
        "exp": now + timedelta(minutes=5),
    }
    return jwt.encode(claims, key, algorithm="ES256", headers=headers)


def pem(key: ec.EllipticCurvePrivateKey) -> tuple[SecretStr, SecretStr]:
    """(public, private) PEM of the service identity's key."""
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return SecretStr(public.decode()), SecretStr(private.decode())


SERVICE_KEY = ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def provider() -> Iterator[IdentityProvider]:
    running = IdentityProvider()
    running.publish("k1")
    yield running
    running.close()


def roster_with_jwks(database_url: Callable[[str], str], provider: IdentityProvider, cooldown: float) -> Any:
    public, private = pem(SERVICE_KEY)
    auth = AuthSettings(
        algorithm="ES256",
        jwks_url=provider.url,
        jwks_refresh_cooldown_seconds=cooldown,
        public_key=public,
        private_key=private,
    )
    return running_roster(database_url("roster"), auth=auth)


def as_caller(roster: Roster, token: str) -> RosterClient:
    return RosterClient(roster.address, metadata=lambda: (("authorization", f"Bearer {token}"),))


def test_a_token_signed_by_a_rotated_key_is_accepted_once_the_jwks_publishes_it(
    database_url: Callable[[str], str], provider: IdentityProvider
) -> None:
    with roster_with_jwks(database_url, provider, cooldown=0) as roster:
        roster.client.create_district("d1", "District One")  # the service identity, PEM key
        with as_caller(roster, provider.token("k1")) as admin:
            assert admin.get_district("d1").display_name == "District One"

        provider.publish("k2")  # the provider rotates: k2 replaces k1
        with as_caller(roster, provider.token("k2")) as admin:
            assert admin.get_district("d1").display_name == "District One"
        assert provider.fetches == 2  # the new kid refetched the key set once


def test_an_unknown_kid_is_unauthenticated_and_refetches_at_most_once_per_cooldown(
    database_url: Callable[[str], str], provider: IdentityProvider
) -> None:
    with roster_with_jwks(database_url, provider, cooldown=30) as roster:
        roster.client.create_district("d1", "District One")
        with as_caller(roster, provider.token("k1")) as admin:
            admin.get_district("d1")
        fetched = provider.fetches

        for _ in range(3):
            with (
                as_caller(roster, provider.token("unknown")) as stranger,
                pytest.raises(UnauthenticatedError) as refused,
            ):
                stranger.get_district("d1")
            assert refused.value.reason == "TOKEN_INVALID"
            assert "does not publish" in str(refused.value)
        assert provider.fetches - fetched <= 1


def test_user_and_service_tokens_need_their_own_keys(
    database_url: Callable[[str], str], provider: IdentityProvider
) -> None:
    with roster_with_jwks(database_url, provider, cooldown=0) as roster:
        roster.client.create_district("d1", "District One")
        provider_service_token = provider.token("k1", role=Role.SERVICE, district="*")
        service_key_user_token = sign(SERVICE_KEY, {}, role=Role.DISTRICT_ADMIN, district="d1")
        for token in (provider_service_token, service_key_user_token):
            with (
                as_caller(roster, token) as caller,
                pytest.raises(UnauthenticatedError, match="role does not match"),
            ):
                caller.get_district("d1")
        assert roster.client.get_district("d1").display_name == "District One"  # the service identity
