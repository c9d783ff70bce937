r"""Mint a token for local development, signed with the public development key only.

    EW_JWT_ALLOW_DEV_KEY=true python -m services.common.devtoken --district d1 \
        --role district_admin --plan district_premium

Exits with status 2 when the configuration signs with anything but the development key, so it
can never produce a token a production server would accept.
"""

from __future__ import annotations

import argparse
import sys

from pydantic import ValidationError

from services.common.auth import ALL_DISTRICTS, AuthSettings, Role, mint_token


class DevKeyRequired(Exception):
    """The settings do not use the development key."""


def mint_dev_token(
    settings: AuthSettings,
    *,
    district_id: str,
    role: Role,
    plan: str,
    ttl_seconds: int = 3600,
    subject: str | None = None,
) -> str:
    """A token for ``district_id`` signed with the development key."""
    if not settings.uses_dev_key:
        raise DevKeyRequired(
            "dev tokens are signed with the development key only; unset EW_JWT_SECRET, set "
            "EW_JWT_ALGORITHM=HS256 and EW_JWT_ALLOW_DEV_KEY=true"
        )
    name = subject or f"dev-{role.value}@{'all' if district_id == ALL_DISTRICTS else district_id}"
    return mint_token(settings, name, district_id, role, plan, ttl_seconds)


def main(argv: list[str] | None = None) -> int:
    """Print one dev token; 2 when the configuration does not allow it."""
    parser = argparse.ArgumentParser(
        prog="python -m services.common.devtoken", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--district", required=True, help="district id the token acts for ('*': service only)"
    )
    parser.add_argument("--role", required=True, choices=[role.value for role in Role])
    parser.add_argument("--plan", required=True, help="e.g. district_premium, basic")
    parser.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (default 3600)")
    parser.add_argument("--subject", help="the sub claim (default dev-<role>@<district>)")
    args = parser.parse_args(argv)
    try:
        settings = AuthSettings()
        token = mint_dev_token(
            settings,
            district_id=args.district,
            role=Role(args.role),
            plan=args.plan,
            ttl_seconds=args.ttl,
            subject=args.subject,
        )
    except ValidationError as error:
        print(f"dev-token: invalid EW_JWT_* settings: {error.errors()[0]['msg']}", file=sys.stderr)
        return 2
    except (DevKeyRequired, ValueError) as error:
        print(f"dev-token: {error}", file=sys.stderr)
        return 2
    print(token)
    return 0


if __name__ == "__main__":
    sys.exit(main())
