"""The sandbox's HTTP application: OneRoster per district, ClassLink's account side, the admin API.

The admin API (unless disabled) is what tests use to inject faults and change a district between syncs.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.types import ASGIApp

from services.oneroster_sandbox import admin_api, classlink_api, oneroster_api
from services.oneroster_sandbox.resets import ResetMiddleware
from services.oneroster_sandbox.state import Sandbox


def create_app(sandbox: Sandbox) -> ASGIApp:
    """The app serving the sandbox's routes; the admin API only when an admin token is set.

    ``ResetMiddleware`` wraps Starlette itself: it must hold the server's own ``send``.
    """
    routes = oneroster_api.routes(sandbox) + classlink_api.routes(sandbox)
    if sandbox.settings.admin_token is not None:
        routes += admin_api.routes(sandbox, sandbox.settings.admin_token)
    return ResetMiddleware(Starlette(routes=routes))
