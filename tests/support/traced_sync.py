"""``python -m tests.support.traced_sync FOLDER``: one sync through the in-process stack, traced.

Tracing instruments gRPC, httpx and SQLAlchemy for the rest of the process, so the tracing test
runs this in a process of its own. Spans go to an in-memory exporter; it prints them as JSON lines
(``name``, ``trace_id``, ``kind``), then the run's final state.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.common.tracing import configure_tracing


def main(folder: Path) -> None:
    """Trace one sync and print its spans."""
    exporter = InMemorySpanExporter()
    configure_tracing("ew-test", SimpleSpanProcessor(exporter))
    from tests.support.sync_stack import sync_stack  # after instrumenting, as a service's main() does

    with sync_stack(
        f"sqlite:///{folder / 'roster.db'}", f"sqlite:///{folder / 'sync.db'}", schools=3, teachers=20
    ) as stack:
        last = list(stack.client.sync_rosters(stack.district_id))[-1]
    for span in exporter.get_finished_spans():
        print(
            json.dumps(
                {"name": span.name, "trace_id": format(span.context.trace_id, "032x"), "kind": span.kind.name}
            )
        )
    print(json.dumps({"state": last.state}))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
