"""SyncService: the setup, run, AutoSync and record (audit, teacher history) RPCs over one container."""

from __future__ import annotations

from ew.client.roster import AsyncRosterClient
from ew.sync.v1 import sync_service_pb2_grpc

from services.common.pagetokens import SyncPageTokens
from services.sync.api.autosync_rpcs import AutoSyncRpcs
from services.sync.api.history_rpcs import HistoryRpcs
from services.sync.api.run_rpcs import RunRpcs
from services.sync.api.setup_rpcs import SetupRpcs
from services.sync.app import App
from services.sync.autosync.usecases import AutoSyncs
from services.sync.runs.revert import Reverts
from services.sync.runs.teacher_history import TeacherHistories
from services.sync.runs.usecases import Runs
from services.sync.setup.audit_trail import AuditTrail
from services.sync.setup.connections import Connections
from services.sync.setup.mapping import SchoolMappings
from services.sync.setup.preview import Previews
from services.sync.setup.school_merge import SchoolMerges


class SyncServicer(SetupRpcs, RunRpcs, AutoSyncRpcs, HistoryRpcs, sync_service_pb2_grpc.SyncServiceServicer):
    """Every SyncService RPC; ``roster`` is the server's RosterService client (its event loop's)."""

    def __init__(self, app: App, roster: AsyncRosterClient) -> None:
        self.app = app
        self.roster = roster
        tokens = SyncPageTokens(app.settings.page_token_key.get_secret_value().encode())
        self.connections = Connections(app)
        self.school_mappings = SchoolMappings(app, tokens)
        self.school_merges = SchoolMerges(app)
        self.previews = Previews(app, tokens)
        self.runs = Runs(app, tokens)
        self.autosyncs = AutoSyncs(app)
        self.reverts = Reverts(app)
        self.audit_trail = AuditTrail(app, tokens)
        self.teacher_histories = TeacherHistories(app, tokens)
