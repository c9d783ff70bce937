"""OneRoster client for ClassLink Roster Servers (and any OneRoster 1.1/1.2 server).

``OneRosterClient(ServerConfig(...)).pull_roster()`` returns every school and teacher of a district
or raises a :mod:`services.sync.oneroster.errors` exception; there is no partial result.
"""

from services.sync.oneroster.client import CollectionResult, OneRosterClient
from services.sync.oneroster.config import (
    BearerToken,
    Credentials,
    OAuth1Credentials,
    OAuth2ClientCredentials,
    RetryPolicy,
    ServerConfig,
    Timeouts,
    Version,
)
from services.sync.oneroster.models import Org, Roster, RowProblem, Status, User

__all__ = [
    "BearerToken",
    "CollectionResult",
    "Credentials",
    "OAuth1Credentials",
    "OAuth2ClientCredentials",
    "OneRosterClient",
    "Org",
    "RetryPolicy",
    "Roster",
    "RowProblem",
    "ServerConfig",
    "Status",
    "Timeouts",
    "User",
    "Version",
]
