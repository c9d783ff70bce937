"""``python -m services.oneroster_sandbox``: run the sandbox until SIGTERM/SIGINT.

The first line on stdout is one JSON object with everything a client needs (URLs, credentials,
tokens, tenants); nothing else is written to stdout.
"""

from __future__ import annotations

import argparse
import json
import secrets
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import uvicorn

from services.oneroster_sandbox.app import create_app
from services.oneroster_sandbox.csv_loader import district_from_csv
from services.oneroster_sandbox.faults import Fault
from services.oneroster_sandbox.generator import generate_district
from services.oneroster_sandbox.model import District
from services.oneroster_sandbox.state import VERSION_PATHS, Sandbox, Settings

AUTH_MODES = ("oauth1", "bearer", "oauth2")
# Named server behaviours: flag values a profile sets unless the flag is given explicitly.
PROFILES: dict[str, dict[str, Any]] = {
    "slow": {"request_delay": 0.15, "page_cap": 1000, "rate_limit": 10},
}


def _auth_modes(value: str) -> frozenset[str]:
    modes = frozenset(part.strip() for part in value.split(",") if part.strip())
    if not modes or modes - set(AUTH_MODES):
        raise argparse.ArgumentTypeError(f"auth must be a comma list of {', '.join(AUTH_MODES)}")
    return modes


def _faults(value: str) -> list[dict[str, Any]]:
    try:
        specs = json.loads(value)
        for spec in specs:
            Fault.from_json(dict(spec))
    except (ValueError, TypeError) as exc:
        raise argparse.ArgumentTypeError(f"--faults must be a JSON list of faults: {exc}") from exc
    return list(specs)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line: host and port, the generated districts' sizes, server behaviour and faults."""
    parser = argparse.ArgumentParser(prog="python -m services.oneroster_sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--tenants", type=int, default=1, help="districts served, each with its own credentials"
    )
    parser.add_argument("--schools", type=int, default=40, help="schools per district")
    parser.add_argument("--teachers", type=int, default=1200, help="teachers per district")
    parser.add_argument(
        "--students", type=int, default=None, help="students per district (default teachers/2)"
    )
    parser.add_argument("--administrators", type=int, default=None, help="default teachers/50")
    parser.add_argument("--staff", type=int, default=0, help="aides and proctors per district (each)")
    parser.add_argument(
        "--staff-twins",
        action="store_true",
        help="add two administrators with a teacher's email: one with that teacher's name, one not",
    )
    parser.add_argument(
        "--split-rows",
        action="store_true",
        help="one user row per teacher and school, as Ed-Fi's server sends (same person, new sourcedIds)",
    )
    parser.add_argument("--oneroster-version", choices=sorted(VERSION_PATHS), default="1.1")
    parser.add_argument(
        "--auth",
        type=_auth_modes,
        default=None,
        help="accepted auth: comma list of oauth1,bearer,oauth2 (default oauth1,bearer for 1.1, "
        "oauth2 for 1.2)",
    )
    parser.add_argument("--client-id", help="first district's client id (default derived from the seed)")
    parser.add_argument("--client-secret", help="first district's client secret")
    parser.add_argument("--bearer-token", help="first district's proxy bearer token")
    parser.add_argument("--partner-token", default=None, help="partner API bearer token")
    parser.add_argument("--sso-client-id", default="ew-sandbox-sso")
    parser.add_argument("--sso-client-secret", default=None)
    parser.add_argument(
        "--token-lifetime", type=int, default=3600, help="OAuth2 access token lifetime, seconds"
    )
    parser.add_argument("--page-cap", type=int, default=None, help="largest page the server returns")
    parser.add_argument(
        "--request-delay", type=float, default=None, help="seconds added to every OneRoster request"
    )
    parser.add_argument(
        "--rate-limit", type=int, default=None, help="OneRoster requests per second before 429 + Retry-After"
    )
    parser.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default=None,
        help="slow: a remote server (+150 ms per request, pages of at most 1,000, 429 above 10/s); "
        "explicit flags win over the profile's values",
    )
    parser.add_argument("--omit-total", action="store_true", help="send no X-Total-Count (Link headers only)")
    parser.add_argument("--omit-links", action="store_true", help="send no Link header")
    parser.add_argument(
        "--token-redirect",
        action="store_true",
        help="POST /oauth/token answers 307 to /oauth/issuer/token (the real token endpoint)",
    )
    parser.add_argument("--quirks", action="store_true", help="send what real ClassLink servers send")
    parser.add_argument(
        "--disable-endpoint",
        action="append",
        default=[],
        choices=("schools", "teachers"),
        help="answer 404 for this convenience endpoint (repeatable)",
    )
    parser.add_argument("--faults", type=_faults, default=[], help="JSON list of faults (see faults.py)")
    parser.add_argument("--csv", type=Path, help="serve this OneRoster CSV bundle as the first district")
    parser.add_argument("--admin-token", default=None, help="admin API token (default random)")
    parser.add_argument("--no-admin", action="store_true", help="do not serve the /_sandbox admin API")
    args = parser.parse_args(argv)
    if args.tenants < 1 or args.schools < 0 or args.teachers < 0 or args.staff < 0:
        parser.error("--tenants must be at least 1; --schools, --teachers and --staff must not be negative")
    for name, value in PROFILES.get(args.profile or "", {}).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.page_cap is not None and args.page_cap < 1:
        parser.error("--page-cap must be at least 1")
    if args.rate_limit is not None and args.rate_limit < 1:
        parser.error("--rate-limit must be at least 1")
    if args.request_delay is not None and args.request_delay < 0:
        parser.error("--request-delay must not be negative")
    return args


def build(args: argparse.Namespace) -> tuple[Sandbox, list[dict[str, object]]]:
    """The sandbox the arguments describe, and the problems found loading any CSV bundle."""
    districts: dict[str, District] = {}
    for index in range(args.tenants):
        district = generate_district(
            seed=args.seed,
            tenant_index=index,
            schools=args.schools,
            teachers=args.teachers,
            students=args.students,
            administrators=args.administrators,
            staff=args.staff,
            staff_twins=args.staff_twins,
            split_rows=args.split_rows,
        )
        districts[district.tenant_id] = district
    first = next(iter(districts.values()))
    first.client_id = args.client_id or first.client_id
    first.client_secret = args.client_secret or first.client_secret
    first.bearer_token = args.bearer_token or first.bearer_token
    problems: list[dict[str, object]] = []
    if args.csv is not None:
        loaded, csv_problems = district_from_csv(args.csv, first)
        districts[first.tenant_id] = loaded
        problems = [p.to_json() for p in csv_problems]
    auth = args.auth or (
        frozenset({"oauth2"}) if args.oneroster_version == "1.2" else frozenset({"oauth1", "bearer"})
    )
    settings = Settings(
        version=args.oneroster_version,
        auth_modes=auth,
        page_cap=args.page_cap,
        omit_total=args.omit_total,
        omit_links=args.omit_links,
        token_redirect=args.token_redirect,
        quirks=args.quirks,
        disabled_endpoints=frozenset(args.disable_endpoint),
        admin_token=None if args.no_admin else (args.admin_token or secrets.token_urlsafe(16)),
        partner_token=args.partner_token or secrets.token_urlsafe(24),
        sso_client_id=args.sso_client_id,
        sso_client_secret=args.sso_client_secret or secrets.token_urlsafe(24),
        token_lifetime=args.token_lifetime,
        request_delay=args.request_delay or 0.0,
        rate_limit=args.rate_limit,
    )
    sandbox = Sandbox(settings=settings, districts=districts)
    sandbox.faults.replace(args.faults)
    return sandbox, problems


def describe(sandbox: Sandbox, csv_problems: list[dict[str, object]]) -> dict[str, Any]:
    """The JSON object printed as stdout's first line: URLs, credentials, tokens and tenants."""
    settings = sandbox.settings
    tenants = [
        {
            "tenant_id": d.tenant_id,
            "name": d.name,
            "server_url": sandbox.server_url(d.tenant_id),
            "oneroster_url": sandbox.oneroster_url(d.tenant_id),
            "client_id": d.client_id,
            "client_secret": d.client_secret,
            "bearer_token": d.bearer_token,
            "application_id": d.application_id,
            "logins": {"admin": f"admin@{d.tenant_id}", "teacher": f"teacher@{d.tenant_id}"},
        }
        for d in sandbox.districts.values()
    ]
    first = tenants[0]
    return {
        "base_url": sandbox.public_url,
        "server_url": first["server_url"],
        "oneroster_url": first["oneroster_url"],
        "version": settings.version,
        "auth": sorted(settings.auth_modes),
        "client_id": first["client_id"],
        "client_secret": first["client_secret"],
        "bearer_token": first["bearer_token"],
        "token_url": f"{sandbox.public_url}/oauth/token",
        "issuer_token_url": f"{sandbox.public_url}/oauth/issuer/token",
        "partner_token": settings.partner_token,
        "sso": {
            "client_id": settings.sso_client_id,
            "client_secret": settings.sso_client_secret,
            "launchpad_url": sandbox.public_url,
            "nodeapi_url": sandbox.public_url,
        },
        "proxy_url": sandbox.public_url,
        "admin_url": None if settings.admin_token is None else f"{sandbox.public_url}/_sandbox",
        "admin_token": settings.admin_token,
        "tenants": tenants,
        "csv_problems": csv_problems,
    }


def _exit_cleanly(signum: int, frame: object) -> None:
    sys.exit(0)


def main(argv: list[str] | None = None) -> None:
    """Serves the sandbox on the requested address until SIGTERM or SIGINT."""
    args = parse_args(argv)
    sandbox, csv_problems = build(args)
    listener = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Without TCP_NODELAY, Nagle plus the client's delayed ACK adds ~40 ms to every keep-alive response.
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    listener.bind((args.host, args.port))
    listener.listen(2048)
    host, port = listener.getsockname()[:2]
    # Stop cleanly (exit 0) on SIGTERM/SIGINT, also before uvicorn installs its own handlers and when
    # uvicorn re-raises the signal after its graceful shutdown.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _exit_cleanly)
    sandbox.start(f"http://{f'[{host}]' if ':' in host else host}:{port}")
    sys.stdout.write(json.dumps(describe(sandbox, csv_problems)) + "\n")
    sys.stdout.flush()
    config = uvicorn.Config(create_app(sandbox), log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[listener])


if __name__ == "__main__":
    main()
