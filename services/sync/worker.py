"""``python -m services.sync.worker``: the sync worker process (see ``services.sync.runs.worker``)."""

from services.sync.runs.worker import main

if __name__ == "__main__":
    main()
