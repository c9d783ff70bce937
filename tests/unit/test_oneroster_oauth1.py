"""OAuth 1.0a signing (client) and verification (sandbox) against RFC 5849 and independent HMACs."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import parse_qsl, quote, urlsplit

import httpx
import pytest
from oauthlib.oauth1.rfc5849 import signature, utils
from pydantic import SecretStr

from services.oneroster_sandbox.oauth1 import SignatureError, verify
from services.sync.oneroster import OAuth1Credentials
from services.sync.oneroster.auth import OAuth1Auth


def enc(value: str) -> str:
    """RFC 5849 section 3.6 percent-encoding: everything but unreserved characters."""
    return quote(value, safe="~")


def test_rfc5849_section_3_4_1_example_base_string() -> None:
    # The request and base string printed in RFC 5849 section 3.4.1.1.
    authorization = (
        'OAuth realm="Example", oauth_consumer_key="9djdj82h48djs9d2", oauth_token="kkk9d7dh3k39sjv7", '
        'oauth_signature_method="HMAC-SHA1", oauth_timestamp="137131201", oauth_nonce="7d8f3e4a", '
        'oauth_signature="bYT5CMsGcbgUdFHObYMEfcx6bsw%3D"'
    )
    params = signature.collect_parameters(
        uri_query="b5=%3D%253D&a3=a&c%40=&a2=r%20b",
        body="c2&a3=2+q",
        headers={"Authorization": authorization},
        exclude_oauth_signature=True,
    )
    base = signature.signature_base_string(
        "POST",
        signature.base_string_uri("http://example.com/request"),
        signature.normalize_parameters(params),
    )
    assert base == (
        "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q%26a3%3Da%26b5%3D%253D%25253D%26"
        "c%2540%3D%26c2%3D%26oauth_consumer_key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26"
        "oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk9d7dh3k39sjv7"
    )


def test_published_hmac_sha1_vector_matches_hand_built_hmac() -> None:
    # OAuth Core 1.0 appendix A.5 (photos.example.net): base string, key and published signature.
    base = (
        "GET&http%3A%2F%2Fphotos.example.net%2Fphotos&file%3Dvacation.jpg%26oauth_consumer_key%3Ddpf43f3p2l4k3l03"
        "%26oauth_nonce%3Dkllo9940pd9333jh%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D1191242096"
        "%26oauth_token%3Dnnch734d00sl2jdk%26oauth_version%3D1.0%26size%3Doriginal"
    )
    digest = hmac.new(b"kd94hf93k423kf44&pfkkdhi9sl3r4s00", base.encode(), hashlib.sha1).digest()
    assert base64.b64encode(digest).decode() == "tR3+Ty81lMeYAr/Fid0kMTYa/WM="


def sign(url: str, params: dict[str, str | int], secret: str = "s3cr3t/+=") -> httpx.Request:
    request = httpx.Request("GET", url, params=params)
    flow = OAuth1Auth(OAuth1Credentials("district-key", SecretStr(secret))).sync_auth_flow(request)
    return next(flow)


def test_client_signature_covers_query_and_filter_encoded_once() -> None:
    secret = "s3cr3t/+="
    request = sign(
        "https://district.example.com/ims/oneroster/v1p1/users",
        {"limit": 7, "offset": 14, "filter": "role='teacher' AND status='active'"},
        secret,
    )
    oauth = {
        k: utils.unescape(v) for k, v in utils.parse_authorization_header(request.headers["Authorization"])
    }
    assert oauth["oauth_signature_method"] == "HMAC-SHA256"
    assert oauth["oauth_consumer_key"] == "district-key"
    assert "oauth_token" not in oauth

    # Independent RFC 5849 base string: decode the query exactly as sent, encode each pair once.
    query = parse_qsl(urlsplit(str(request.url)).query, keep_blank_values=True)
    pairs = sorted(
        [(enc(k), enc(v)) for k, v in query]
        + [(enc(k), enc(v)) for k, v in oauth.items() if k != "oauth_signature"]
    )
    normalized = "&".join(f"{k}={v}" for k, v in pairs)
    base = "&".join(["GET", enc("https://district.example.com/ims/oneroster/v1p1/users"), enc(normalized)])
    assert "filter%3Drole%253D%2527teacher%2527%2520AND%2520status%253D%2527active%2527" in base
    expected = base64.b64encode(
        hmac.new(f"{enc(secret)}&".encode(), base.encode(), hashlib.sha256).digest()
    ).decode()
    assert oauth["oauth_signature"] == expected


def test_sandbox_verifier_accepts_the_client_signature_and_rejects_tampering() -> None:
    request = sign(
        "http://127.0.0.1:8080/districts/1/ims/oneroster/v1p1/users", {"filter": "role='teacher'", "limit": 5}
    )
    url = str(request.url)
    base_url, query = url.split("?", 1)
    authorization = request.headers["Authorization"]
    assert verify("GET", base_url, query, authorization, {"district-key": "s3cr3t/+="}) == "district-key"
    with pytest.raises(SignatureError):
        verify(
            "GET", base_url, query.replace("teacher", "student"), authorization, {"district-key": "s3cr3t/+="}
        )
    with pytest.raises(SignatureError):
        verify("GET", base_url, query, authorization, {"district-key": "other-secret"})
    with pytest.raises(SignatureError):
        verify("GET", base_url, query, None, {"district-key": "s3cr3t/+="})


def test_credentials_never_print_the_secret() -> None:
    credentials = OAuth1Credentials("district-key", SecretStr("s3cr3t-value"))
    assert "s3cr3t-value" not in repr(credentials)
    assert "s3cr3t-value" not in str(credentials)
