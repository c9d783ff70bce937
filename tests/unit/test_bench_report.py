"""The bench's judgement of figures: ratios to floors, PASS/MISS, linearity and the written table."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import report
from benchmarks.report import MB, Check, HeadlineResult, SizeResult


def result(teachers: int, *, initial: float, no_change: float, backend: str = "sqlite") -> SizeResult:
    return SizeResult(
        backend=backend,
        teachers=teachers,
        schools=teachers // 50,
        download=1.0,
        write=2.0,
        read=0.5,
        initial=initial,
        no_change=no_change,
        changed=no_change * 1.3,
        preview=no_change * 0.5,
        longest_gap=2.5,
        events_per_second=4.0,
        peaks={"roster": 200 * MB, "sync": 400 * MB, "sandbox": 900 * MB},
    )


def verdicts(checks: list[Check]) -> dict[str, tuple[float, str]]:
    return {c.figure.split(": ", 1)[1]: (round(c.measured, 3), c.verdict) for c in checks}


def test_each_figure_is_a_ratio_to_its_own_floor_and_judged_against_its_target() -> None:
    got = verdicts(report.size_checks(result(1000, initial=6.0, no_change=2.4)))
    assert got["initial sync / (download + write)"] == (2.0, "PASS")
    assert got["no-change re-sync / (download + read)"] == (1.6, "MISS")
    assert got["1% changed, 0.5% removed / no-change"] == (1.3, "MISS")
    assert got["preview / no-change re-sync"] == (0.5, "PASS")
    assert got["longest gap between percent changes"] == (2.5, "MISS")
    assert got["progress events per second"] == (4.0, "PASS")


def test_memory_is_judged_for_the_product_processes_only() -> None:
    got = verdicts(report.size_checks(result(1000, initial=1, no_change=1)))
    assert got["peak RSS roster"] == (200.0, "PASS")
    assert got["peak RSS sync"] == (400.0, "MISS")
    assert got["peak RSS sandbox"] == (900.0, "info")


def test_linearity_compares_each_size_with_the_smallest_per_backend_and_operation() -> None:
    sizes = [
        result(20_000, initial=2.0, no_change=1.0),
        result(100_000, initial=10.0, no_change=6.0),
        result(20_000, initial=4.0, no_change=1.0, backend="postgresql"),
        result(250_000, initial=48.0, no_change=12.5, backend="postgresql"),
    ]
    checks = report.linearity_checks(sizes)
    assert [(round(c.measured, 3), c.verdict) for c in checks] == [
        (1.0, "PASS"),  # sqlite initial: 5x the time for 5x the teachers
        (1.2, "MISS"),  # sqlite no-change: 6x the time for 5x
        (0.96, "PASS"),
        (1.0, "PASS"),
    ]


def test_headline_checks_use_the_same_run_without_load_and_count_every_error() -> None:
    headline = HeadlineResult(
        backend="postgresql",
        teachers=100_000,
        list_idle_p99=0.010,
        list_busy_p99=0.030,
        slow_download=10.0,
        slow_initial=11.0,
        slow_no_change=12.0,
        load_run=20.0,
        load_baseline=10.0,
        load_watchers=50,
        load_list_calls=5000,
        load_errors=1,
        load_list_p50=0.05,
        load_list_p99=0.2,
    )
    assert [(round(c.measured, 3), c.verdict) for c in report.headline_checks(headline)] == [
        (3.0, "MISS"),
        (1.1, "PASS"),
        (1.2, "MISS"),
        (1.0, "MISS"),
        (2.0, "info"),
    ]


@pytest.mark.parametrize(
    ("measured", "at_least", "verdict"), [(1.0, False, "PASS"), (1.0, True, "PASS"), (0.99, True, "MISS")]
)
def test_a_figure_on_its_limit_meets_it(measured: float, at_least: bool, verdict: str) -> None:
    assert Check("x", measured, 1.0, at_least=at_least).verdict == verdict


def test_the_written_table_holds_every_size_and_every_verdict(tmp_path: Path) -> None:
    sizes = [result(20_000, initial=3.0, no_change=1.0), result(100_000, initial=15.0, no_change=5.0)]
    checks = report.all_checks(sizes, [])
    failure = "postgresql 250,000: the sync did not succeed: database is locked"
    table, picture = report.write_results(tmp_path, sizes, [], checks, [failure], "make bench")
    text = table.read_text()
    assert "| sqlite | 20,000 | 400 |" in text and "| sqlite | 100,000 | 2,000 |" in text
    assert "| 15.00 (5.00x) |" in text, "initial against download + write"
    assert text.count("| MISS |") == sum(c.verdict == "MISS" for c in checks) > 0
    assert f"- {failure}" in text
    assert picture.read_bytes().startswith(b"\x89PNG")
