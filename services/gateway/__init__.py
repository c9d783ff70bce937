"""The HTTP/JSON gateway: SyncService and the RosterService reads over HTTP, routes from the protos."""
