"""The sync service: connects ClassLink, maps schools, previews and runs roster syncs."""
