"""Judges the bench's figures against issue 12's and issue 15's targets and writes them down.

Every figure is a ratio to its floor (or to another run) next to its target and PASS or MISS. The
results go to stdout, to a Markdown file (machine facts, the time-against-size table, the targets
and the load check) and to a PNG chart of time against size per backend.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

MB = 1024 * 1024
# The processes of the product itself; the sandbox and the bench process are tools, shown for information.
PRODUCT_PROCESSES = ("roster", "sync", "worker")
RSS_LIMIT_MB = 300.0
LINEAR_LIMIT = 1.10
SIZE_COLUMNS = (
    "backend",
    "teachers",
    "schools",
    "download",
    "write",
    "read",
    "initial",
    "no-change",
    "1% changed",
    "preview",
    "longest gap",
    "events/s",
    "peak RSS",
)
HEADLINE_COLUMNS = (
    "backend",
    "teachers",
    "ListTeachers p99 idle / during a sync",
    "slow server: download / initial / no-change",
    "load: watchers / list calls / errors",
    "load: list p50 / p99",
    "load: run with / without",
)


@dataclass(frozen=True)
class SizeResult:
    """One backend at one size: the floors, the four timed operations and how the progress moved."""

    backend: str
    teachers: int
    schools: int
    download: float
    write: float
    read: float
    initial: float
    no_change: float
    changed: float
    preview: float
    longest_gap: float
    events_per_second: float
    peaks: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class HeadlineResult:
    """The figures measured at the headline size only: list latency, the slow server and the load check."""

    backend: str
    teachers: int
    list_idle_p99: float
    list_busy_p99: float
    slow_download: float
    slow_initial: float
    slow_no_change: float
    load_run: float
    load_baseline: float
    load_watchers: int
    load_list_calls: int
    load_errors: int
    load_list_p50: float
    load_list_p99: float


@dataclass(frozen=True)
class Check:
    """One figure against its target; ``limit`` None means a figure shown for information only."""

    figure: str
    measured: float
    limit: float | None
    unit: str = "x"
    at_least: bool = False

    @property
    def verdict(self) -> str:
        """PASS, MISS, or "info" for a figure without a target."""
        if self.limit is None:
            return "info"
        met = self.measured >= self.limit if self.at_least else self.measured <= self.limit
        return "PASS" if met else "MISS"

    @property
    def target(self) -> str:
        """``<= 2.00x``, ``>= 1.00/s`` or ``-``."""
        if self.limit is None:
            return "-"
        return f"{'>=' if self.at_least else '<='} {self.limit:.2f}{self.unit}"

    @property
    def value(self) -> str:
        """The measured figure with its unit."""
        return f"{self.measured:.2f}{self.unit}"


def size_checks(result: SizeResult) -> list[Check]:
    """The targets of one backend at one size."""
    where = f"{result.backend} {result.teachers:,}"
    checks = [
        Check(
            f"{where}: initial sync / (download + write)",
            result.initial / (result.download + result.write),
            2.0,
        ),
        Check(
            f"{where}: no-change re-sync / (download + read)",
            result.no_change / (result.download + result.read),
            1.5,
        ),
        Check(f"{where}: 1% changed, 0.5% removed / no-change", result.changed / result.no_change, 1.2),
        Check(f"{where}: preview / no-change re-sync", result.preview / result.no_change, 1.0),
        Check(f"{where}: longest gap between percent changes", result.longest_gap, 2.0, " s"),
        Check(f"{where}: progress events per second", result.events_per_second, 1.0, "/s", at_least=True),
    ]
    for name, peak in sorted(result.peaks.items()):
        limit = RSS_LIMIT_MB if name in PRODUCT_PROCESSES else None
        checks.append(Check(f"{where}: peak RSS {name}", peak / MB, limit, " MB"))
    return checks


def linearity_checks(results: Sequence[SizeResult]) -> list[Check]:
    """Per backend and operation: each size's time ratio to the smallest size over the size ratio."""
    checks = []
    for backend in dict.fromkeys(r.backend for r in results):
        sized = sorted((r for r in results if r.backend == backend), key=lambda r: r.teachers)
        base = sized[0]
        for other in sized[1:]:
            size_ratio = other.teachers / base.teachers
            for operation in ("initial", "no_change"):
                time_ratio = getattr(other, operation) / getattr(base, operation)
                label = operation.replace("_", "-")
                checks.append(
                    Check(
                        f"{backend}: {label} time ratio {time_ratio:.2f} for size ratio {size_ratio:.2f} "
                        f"({base.teachers:,} -> {other.teachers:,})",
                        time_ratio / size_ratio,
                        LINEAR_LIMIT,
                        "x linear",
                    )
                )
    return checks


def headline_checks(result: HeadlineResult) -> list[Check]:
    """The targets measured at the headline size."""
    where = f"{result.backend} {result.teachers:,}"
    return [
        Check(
            f"{where}: ListTeachers p99 during a sync / idle",
            result.list_busy_p99 / result.list_idle_p99,
            2.0,
        ),
        Check(
            f"{where}: slow server, initial sync / bare download",
            result.slow_initial / result.slow_download,
            1.15,
        ),
        Check(
            f"{where}: slow server, no-change re-sync / bare download",
            result.slow_no_change / result.slow_download,
            1.15,
        ),
        Check(f"{where}: load check errors", result.load_errors, 0, ""),
        Check(
            f"{where}: load check, run time / same run without load",
            result.load_run / result.load_baseline,
            None,
        ),
    ]


def all_checks(sizes: Sequence[SizeResult], headlines: Sequence[HeadlineResult]) -> list[Check]:
    """Every check of a bench run, in the order they are printed."""
    checks = [c for r in sizes for c in size_checks(r)] + linearity_checks(sizes)
    return checks + [c for h in headlines for c in headline_checks(h)]


def print_checks(checks: Sequence[Check]) -> None:
    """One line per figure: what, measured, target, verdict."""
    width = max((len(c.figure) for c in checks), default=0)
    for check in checks:
        print(f"{check.figure:<{width}}  {check.value:>14}  target {check.target:<16} {check.verdict}")


def machine_facts() -> dict[str, str]:
    """What the figures were measured on."""
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": str(os.cpu_count()),
        "RAM": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "python": platform.python_version(),
        "system": platform.platform(),
        # Other work on the machine skews every figure; a quiet machine shows well under the core count.
        "load average (1 min) at the end": f"{os.getloadavg()[0]:.1f}",
    }


def markdown(
    sizes: Sequence[SizeResult],
    headlines: Sequence[HeadlineResult],
    checks: Sequence[Check],
    failures: Sequence[str],
    facts: dict[str, str],
    command: str,
) -> str:
    """The results as Markdown: machine facts, the time-against-size table, load check, targets."""
    lines = [
        "# Benchmark results",
        "",
        f"Command: `{command}`",
        "",
        " · ".join(f"{name}: {value}" for name, value in facts.items()),
        "",
        "Sizes measured: "
        + ", ".join(f"{size:,}" for size in sorted({r.teachers for r in sizes}))
        + " teachers (one school per 50); the targets are set at 100,000.",
        "",
        "## Time against size",
        "",
        (
            "Seconds; in brackets the ratio to the figure's floor: initial to download + write, no-change to "
            "download + read, changed and preview to the no-change re-sync."
        ),
        "",
        _row(*SIZE_COLUMNS),
        _row(*(["---"] + ["---:"] * (len(SIZE_COLUMNS) - 1))),
    ]
    for r in sizes:
        product_peak = max((p for n, p in r.peaks.items() if n in PRODUCT_PROCESSES), default=0) / MB
        lines.append(
            _row(
                r.backend,
                f"{r.teachers:,}",
                f"{r.schools:,}",
                f"{r.download:.2f}",
                f"{r.write:.2f}",
                f"{r.read:.2f}",
                f"{r.initial:.2f} ({r.initial / (r.download + r.write):.2f}x)",
                f"{r.no_change:.2f} ({r.no_change / (r.download + r.read):.2f}x)",
                f"{r.changed:.2f} ({r.changed / r.no_change:.2f}x)",
                f"{r.preview:.2f} ({r.preview / r.no_change:.2f}x)",
                f"{r.longest_gap:.2f} s",
                f"{r.events_per_second:.1f}",
                f"{product_peak:.0f} MB",
            )
        )
    if headlines:
        lines += [
            "",
            "## At the headline size",
            "",
            _row(*HEADLINE_COLUMNS),
            _row(*(["---"] + ["---:"] * (len(HEADLINE_COLUMNS) - 1))),
        ]
        for h in headlines:
            lines.append(
                _row(
                    h.backend,
                    f"{h.teachers:,}",
                    f"{h.list_idle_p99 * 1000:.0f} / {h.list_busy_p99 * 1000:.0f} ms",
                    f"{h.slow_download:.2f} / {h.slow_initial:.2f} / {h.slow_no_change:.2f} s",
                    f"{h.load_watchers} / {h.load_list_calls:,} / {h.load_errors}",
                    f"{h.load_list_p50 * 1000:.0f} / {h.load_list_p99 * 1000:.0f} ms",
                    f"{h.load_run:.2f} / {h.load_baseline:.2f} s",
                )
            )
    lines += ["", "## Targets", "", "| figure | measured | target | result |", "| --- | ---: | ---: | --- |"]
    lines += [_row(c.figure, c.value, c.target, c.verdict) for c in checks]
    if failures:
        lines += ["", "## Failed", "", *(f"- {failure}" for failure in failures)]
    return "\n".join(lines) + "\n"


def _row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


def chart(sizes: Sequence[SizeResult], path: Path) -> None:
    """A PNG of seconds against teachers: initial, no-change and the download floor per backend."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(8, 5))
    for backend in dict.fromkeys(r.backend for r in sizes):
        sized = sorted((r for r in sizes if r.backend == backend), key=lambda r: r.teachers)
        teachers = [r.teachers for r in sized]
        axes.plot(teachers, [r.initial for r in sized], marker="o", label=f"{backend}: initial sync")
        axes.plot(
            teachers, [r.no_change for r in sized], marker="s", linestyle="--", label=f"{backend}: no-change"
        )
        axes.plot(
            teachers,
            [r.download for r in sized],
            marker=".",
            linestyle=":",
            label=f"{backend}: download floor",
        )
    if not sizes:
        axes.text(0.5, 0.5, "no run succeeded", ha="center", va="center", transform=axes.transAxes)
    axes.set_xlabel("teachers")
    axes.set_ylabel("seconds")
    axes.set_title("Sync time against district size")
    axes.grid(True, alpha=0.3)
    if sizes:
        axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    pyplot.close(figure)


def write_results(
    folder: Path,
    sizes: Sequence[SizeResult],
    headlines: Sequence[HeadlineResult],
    checks: Sequence[Check],
    failures: Sequence[str],
    command: str,
) -> tuple[Path, Path]:
    """Writes ``latest.md`` and ``latest.png`` under ``folder``; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    table, picture = folder / "latest.md", folder / "latest.png"
    table.write_text(markdown(sizes, headlines, checks, failures, machine_facts(), command))
    chart(sizes, picture)
    return table, picture
