"""SyncService: the setup RPCs and the run RPCs over one container."""

from __future__ import annotations

from ew.client.roster import AsyncRosterClient
from ew.sync.v1 import sync_service_pb2_grpc

from services.sync.app import App
from services.sync.connections import Connections
from services.sync.mapping import SchoolMappings
from services.sync.pagetokens import PageTokens
from services.sync.preview import Previews
from services.sync.servicer_runs import RunRpcs
from services.sync.servicer_setup import SetupRpcs


class SyncServicer(SetupRpcs, RunRpcs, sync_service_pb2_grpc.SyncServiceServicer):
    """Every SyncService RPC; ``roster`` is the server's RosterService client (its event loop's)."""

    def __init__(self, app: App, roster: AsyncRosterClient) -> None:
        self.app = app
        self.roster = roster
        tokens = PageTokens(app.settings.page_token_key.get_secret_value().encode())
        self.connections = Connections(app)
        self.school_mappings = SchoolMappings(app, tokens)
        self.previews = Previews(app, tokens)
