"""EW's rostering services: the roster service, the sync service and the OneRoster sandbox."""
