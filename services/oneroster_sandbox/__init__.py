"""A stand-in ClassLink Roster Server (OneRoster 1.1/1.2) for demos, tests and benchmarks.

Run ``python -m services.oneroster_sandbox --port 0 --seed 7 --schools 40 --teachers 1200``. The
first stdout line is one JSON object, then the server runs until SIGTERM/SIGINT (exit code 0):

    {"base_url": "http://127.0.0.1:PORT",                # server root (SSO, partner API, admin)
     "server_url": ".../districts/4100",                 # first district's OneRoster server URL
     "oneroster_url": ".../districts/4100/ims/oneroster/v1p1",   # or .../rostering/v1p2
     "version": "1.1", "auth": ["bearer", "oauth1"],
     "client_id": ..., "client_secret": ..., "bearer_token": ...,  # first district
     "token_url": ".../oauth/token",                     # OAuth2 client credentials (1.2)
     "partner_token": ..., "proxy_url": base_url,        # partner API (/applications)
     "sso": {"client_id", "client_secret", "launchpad_url", "nodeapi_url"},
     "admin_url": ".../_sandbox", "admin_token": ...,
     "tenants": [{"tenant_id", "name", "server_url", "oneroster_url", "client_id", "client_secret",
                  "bearer_token", "application_id", "logins": {"admin", "teacher"}}, ...],
     "csv_problems": [{"file", "row", "reason", "skipped"}, ...]}

Districts (``--tenants N``) each live under ``/districts/{tenant_id}`` with their own credentials;
credentials of one district are refused (401) on another's path.

OneRoster: ``GET {oneroster_url}/orgs|schools|users|teachers|students``, ``/{collection}/{id}`` and
``/schools/{id}/teachers`` with ``limit`` (default 100, capped by ``--page-cap``), ``offset``,
``filter`` (``field op 'value'``, at most two joined by AND/OR; ops ``= != > >= < <= ~``; fields
role (1.2: roles.role), status, type, dateLastModified, sourcedId, email, givenName, familyName,
username, identifier, enabledUser), ``X-Total-Count`` (unless ``--omit-total``), ``X-Count`` and
``Link`` (first/last/next/prev; unless ``--omit-links``: with ``--page-cap`` and ``--omit-total`` the
server caps pages silently, as Ed-Fi's does). Auth per ``--auth``: OAuth 1.0a HMAC-SHA256/SHA1 signatures
(verified, query included), the district's static bearer token, or OAuth2 tokens from
``POST /oauth/token`` (grant_type=client_credentials, HTTP Basic client auth; with
``--token-redirect`` it answers 307 to ``/oauth/issuer/token``, which always issues tokens). Errors are imsx
status payloads (wrapped in ``statusInfoSet`` in ``--quirks`` mode).

ClassLink account side: ``GET /oauth2/v2/auth?client_id&redirect_uri&response_type=code&state``
(sandbox extra: ``login_hint=admin@{tenant}|teacher@{tenant}|deny``; default: first district's admin)
redirects with ``code`` and ``state``; ``POST /oauth2/v2/token`` (form: code, client_id,
client_secret; codes are single-use, 5 minutes); ``GET /v2/my/info`` (Bearer) returns TenantId,
Role ("Tenant Administrator" / "Teacher"), SourcedId, ...; ``GET /applications`` (Bearer partner
token) lists every district; ``GET /applications/{oneroster_application_id}/server`` returns
``{"server": {"client_id", "client_secret", "endpoint_url"}}``.

Admin API (header ``X-Sandbox-Admin-Token: <admin_token>``; absent with ``--no-admin``):

* ``GET /_sandbox/roster?tenant_id=`` -> ``{"tenant_id", "revision", "orgs": [{sourcedId, name, type,
  status, identifier, parent}], "users": [{sourcedId, status, enabledUser, givenName, familyName,
  email, role, orgs: [sourcedId], username, identifier}]}`` (the district's ground truth).
* ``POST /_sandbox/roster`` ``{"tenant_id": optional, "ops": [...]}`` applies all ops or none (400
  naming the failing op). Ops: ``{"op": "add_teacher"|"add_user", "givenName", "familyName",
  "orgs": [...], optional "sourcedId", "email", "role", "status", "enabledUser", "username",
  "identifier"}``; ``{"op": "update_user", "sourcedId", "set": {any of givenName, familyName,
  email (null clears), status, enabledUser, role, orgs, username, identifier}}``;
  ``{"op": "remove_user", "sourcedId"}``; ``{"op": "add_school", "name", optional "sourcedId",
  "identifier"}``; ``{"op": "update_school", "sourcedId", "set": {name, status, identifier}}``;
  ``{"op": "remove_school", "sourcedId"}``. Changed rows get a new dateLastModified. Returns
  ``{"tenant_id", "revision", "results": [{"op", "sourcedId"}]}``.
* ``GET|POST|DELETE /_sandbox/faults``: read, replace (``{"faults": [...]}``) or clear the faults
  (see :mod:`services.oneroster_sandbox.faults`); ``--faults JSON`` sets them at start.
* ``POST /_sandbox/revoke-tokens``: forget every OAuth2 access token (clients must fetch a new one).

Data flags: ``--staff N`` adds N aides and N proctors; ``--staff-twins`` adds two administrators
with a teacher's email (one under the teacher's name, one not); ``--split-rows`` sends one row per
teacher and school (new sourcedId each). ``--schools 0`` gives a district without schools.

Server profile: ``--profile slow`` behaves like a remote server under load: every OneRoster request
takes 150 ms more (``--request-delay``), pages hold at most 1,000 rows (``--page-cap``) and more than
10 requests within one second are answered 429 with ``Retry-After`` (``--rate-limit``).

``--csv FOLDER`` serves a OneRoster CSV bundle as the first district (see ``csv_loader``).
"""
