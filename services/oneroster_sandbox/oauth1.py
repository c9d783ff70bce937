"""Server-side check of OAuth 1.0a HMAC signatures (RFC 5849 section 3.4); oauthlib builds the base string."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from oauthlib.oauth1.rfc5849 import signature, utils

# Requests older or newer than this are refused, as a replayed or badly clocked request.
MAX_CLOCK_SKEW_SECONDS = 600


class SignatureError(ValueError):
    """Why a request's OAuth 1.0a signature is refused (never includes the expected signature)."""


def verify(method: str, url: str, query: str, authorization: str | None, secrets: dict[str, str]) -> str:
    """Checks the request; returns the consumer key (client id) it was signed with.

    ``url`` is the request URL without its query; ``query`` is the raw query string as sent.
    """
    if not authorization or not authorization.lower().startswith("oauth "):
        raise SignatureError("missing OAuth 1.0a Authorization header")
    header_params = {k: utils.unescape(v) for k, v in utils.parse_authorization_header(authorization)}
    consumer_key = header_params.get("oauth_consumer_key")
    provided = header_params.get("oauth_signature")
    method_name = header_params.get("oauth_signature_method")
    if not consumer_key or not provided or consumer_key not in secrets:
        raise SignatureError("unknown consumer key or no signature")
    if method_name not in ("HMAC-SHA256", "HMAC-SHA1"):
        raise SignatureError(f"unsupported signature method {method_name!r}; use HMAC-SHA256")
    try:
        timestamp = int(header_params.get("oauth_timestamp", ""))
    except ValueError:
        raise SignatureError("oauth_timestamp is not a number") from None
    if abs(time.time() - timestamp) > MAX_CLOCK_SKEW_SECONDS:
        raise SignatureError("oauth_timestamp is too far from the server's clock")
    params = signature.collect_parameters(
        uri_query=query, headers={"Authorization": authorization}, exclude_oauth_signature=True
    )
    base = signature.signature_base_string(
        method.upper(), signature.base_string_uri(url), signature.normalize_parameters(params)
    )
    digest = hashlib.sha256 if method_name == "HMAC-SHA256" else hashlib.sha1
    key = f"{utils.escape(secrets[consumer_key])}&".encode()
    expected = base64.b64encode(hmac.new(key, base.encode(), digest).digest()).decode()
    if not hmac.compare_digest(expected, provided):
        raise SignatureError("signature does not match")
    return str(consumer_key)
