"""The report: the machine and versions, the tables of figures and ratios, and the targets.

Everything is rendered as Markdown, printed, and with ``--write-results`` written to
``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from benchmarks.datasets import describe
from benchmarks.latency import FirstResults, SubmitResult, percentile
from benchmarks.memory import MB
from benchmarks.throughput import LIMIT, RAY, SLUICEWAY, SLUICEWAY_RAY, WorkloadRun

PACKAGES = ("sluiceway", "mlflow-skinny", "scikit-learn", "pandas", "numpy", "pyarrow", "ray")

# The targets of issues 7 and 17.
VS_LIMIT = {  # Sluiceway's time at most this many times the limit's, by workload and model
    ("medium", "hgb"): 1.3,  # the "fast model"
    ("medium", "gb"): 1.1,  # the "slow model"
    ("tiny", "hgb"): 1.5,
    ("tiny", "gb"): 1.5,
    ("large", "hgb"): 1.2,
    ("large", "gb"): 1.2,
}
RAY_VS_LOCAL = 1.3  # the ray executor against the local one, on the medium workload
TINY_OVER_LIMIT_MS = 0.3  # per file, Sluiceway's time above the limit's
SUBMIT_P99_MS = 100.0
FIRST_RESULT_S = 1.0
PEAK_RSS_MB = 500.0


@dataclass(frozen=True)
class Target:
    what: str
    figure: str
    passed: bool | None  # None: not measured

    @property
    def verdict(self) -> str:
        return {True: "pass", False: "MISS", None: "n/a"}[self.passed]


def machine() -> list[str]:
    """Lines describing the machine, the software and the date."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = psutil.virtual_memory().total / (1 << 30)
    versions = ", ".join(f"{name} {_version(name)}" for name in PACKAGES)
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return [
        f"- Date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC",
        f"- Machine: {os.cpu_count()} CPUs ({model}), {ram:.1f} GiB RAM, "
        f"{platform.system()} {platform.release()}; load average at the start {load}",
        f"- Python {platform.python_version()}; {versions}",
        f"- Sluiceway source: {_git_revision()}",
    ]


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "(not installed)"


def _git(*args: str) -> str:
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _git_revision() -> str:
    try:
        revision = _git("rev-parse", "--short", "HEAD")
        changed = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"git {revision}" + (" with uncommitted changes" if changed else "")


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _ratio(value: float | None, base: float | None) -> str:
    if value is None or base is None or base <= 0:
        return "-"
    return f"{value / base:.2f}"


def _mb(value: int) -> str:
    return f"{value / MB:,.0f}" if value else "-"


def throughput_table(runs: list[WorkloadRun]) -> list[str]:
    lines = [
        "| workload | model | contender | time (s) | rows/s | x limit | x ideal | x Ray | "
        "peak RSS, largest process (MB) | peak RSS, all processes (MB) | output | notes |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for run in runs:
        ideal, limit, model = run.ideal, run.limit, run.model.name
        ray = run.seconds(RAY)
        size = describe(run.folder)
        for contender, result in run.runs.items():
            if result.error:
                lines.append(
                    f"| {run.name} | {model} | {contender} | failed | | | | | | | | "
                    f"{_cell(result.error)} |"
                )
                continue
            seconds = result.seconds
            rate = f"{result.rows / seconds:,.0f}" if seconds else "-"
            agreement = result.agreement
            output = "-" if agreement is None else ("agrees" if agreement.ok else "DIFFERS")
            notes = [f"{k} {v}" for k, v in result.notes.items()]
            if agreement is not None and not agreement.ok:
                notes.append(agreement.detail)
            lines.append(
                f"| {run.name} | {model} | {contender} | {_seconds(seconds)} | {rate} | "
                f"{_ratio(seconds, limit)} | {_ratio(seconds, ideal)} | {_ratio(seconds, ray)} | "
                f"{_mb(result.peaks.max_process)} | {_mb(result.peaks.total)} | {output} | "
                f"{_cell('; '.join(notes))} |"
            )
        if ideal is not None:
            lines.append(
                f"| {run.name} | {model} | ideal (bare loop / {run.workers}) | {_seconds(ideal)} | "
                f"{run.folder.rows / ideal:,.0f} | {_ratio(ideal, limit)} | 1.00 | "
                f"{_ratio(ideal, ray)} | | | | {size} |"
            )
    return lines


def _cell(text: str) -> str:
    return text.replace("|", "/").replace("\n", " ")[:300]


def ms(value: float | None) -> str:
    """Seconds shown as milliseconds."""
    return "-" if value is None else f"{value * 1000:.0f} ms"


def latency_lines(first: FirstResults | None, submit: SubmitResult | None) -> list[str]:
    lines = ["| workload | figure | value |", "|---|---|---:|"]
    if first is not None:
        warm = first.warm_first()
        dispatched = first.warm_dispatched()
        lines += [
            f"| first result | cold (first job of the deployment): dispatched / first result | "
            f"{ms(first.cold.dispatched)} / {ms(first.cold.first_result)} |",
            f"| first result | warm, {len(first.warm)} jobs: first result, median / max | "
            f"{ms(_median(warm))} / {ms(max(warm, default=None))} |",
            f"| first result | warm: dispatched, median / max | "
            f"{ms(_median(dispatched))} / {ms(max(dispatched, default=None))} |",
            f"| first result | warm: invoke to Completed, median | "
            f"{ms(_median([r.completed for r in first.warm]))} |",
        ]
    if submit is not None:
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(submit.statuses.items()))
        lines += [
            f"| submit | one client, {len(submit.single)} POSTs one after another: latency "
            f"p50 / p99 | {ms(percentile(submit.single, 50))} / "
            f"{ms(percentile(submit.single, 99))} |",
            f"| submit | {submit.accepted + len(submit.errors)} POSTs from {submit.clients} "
            f"clients: latency p50 / p99 / max | {ms(submit.percentile(50))} / "
            f"{ms(submit.percentile(99))} / {ms(max(submit.latencies, default=None))} |",
            f"| submit | jobs accepted per second | {submit.rate:,.1f} |",
            f"| submit | not accepted / not found afterwards (lost) | "
            f"{len(submit.errors)} / {len(submit.missing) + len(submit.single_missing)} |",
            f"| submit | statuses after the burst was canceled | {statuses} |",
        ]
    return lines


def _median(values: list[float]) -> float | None:
    return sorted(values)[len(values) // 2] if values else None


def targets(
    runs: list[WorkloadRun], first: FirstResults | None, submit: SubmitResult | None
) -> list[Target]:
    found: list[Target] = []
    for run in runs:
        found += _throughput_targets(run)
    if submit is not None:
        p99 = submit.percentile(99)
        found.append(
            Target(
                f"submit: p99 under {SUBMIT_P99_MS:g} ms",
                ms(p99),
                None if p99 is None else p99 * 1000 < SUBMIT_P99_MS,
            )
        )
        sent = submit.accepted + len(submit.errors) + len(submit.single)
        found.append(
            Target(
                "submit: no job lost",
                f"{submit.lost} lost of {sent}",
                submit.lost == 0,
            )
        )
    if first is not None:
        warm = _median(first.warm_first())
        found.append(
            Target(
                f"first result: under {FIRST_RESULT_S:g} s (warm, median)",
                ms(warm),
                None if warm is None else warm < FIRST_RESULT_S,
            )
        )
    return found


def _throughput_targets(run: WorkloadRun) -> list[Target]:
    """Sluiceway against the limit and Ray Data on one workload and model, its memory, and
    whether the outputs agree."""
    found: list[Target] = []
    what = f"{run.name}, {run.model.name} model"
    seconds, limit, ray = run.seconds(SLUICEWAY), run.limit, run.seconds(RAY)
    bound = VS_LIMIT.get((run.name, run.model.name))
    if bound is not None and LIMIT in run.runs and SLUICEWAY in run.runs:
        ratio = seconds / limit if seconds is not None and limit else None
        found.append(
            _measured(
                f"{what}: Sluiceway at most {bound:g} x the limit",
                ratio,
                "{:.2f} x",
                lambda value: value <= bound,
            )
        )
    if run.name == "tiny" and LIMIT in run.runs and SLUICEWAY in run.runs:
        over = _over_limit_per_file(run)
        found.append(
            _measured(
                f"{what}: under {TINY_OVER_LIMIT_MS:g} ms per file above the limit",
                None if over is None else over * 1000,
                "{:.2f} ms",
                lambda value: value < TINY_OVER_LIMIT_MS,
            )
        )
    if run.name == "medium":
        on_ray = run.seconds(SLUICEWAY_RAY)
        if on_ray is not None or SLUICEWAY_RAY in run.runs:
            versus_local = on_ray / seconds if on_ray is not None and seconds else None
            found.append(
                _measured(
                    f"{what}: Sluiceway on Ray at most {RAY_VS_LOCAL} x the local executor",
                    versus_local,
                    "{:.2f} x",
                    lambda value: value <= RAY_VS_LOCAL,
                )
            )
    if RAY in run.runs and SLUICEWAY in run.runs:
        versus = seconds / ray if seconds is not None and ray else None
        found.append(
            _measured(
                f"{what}: Sluiceway below Ray Data", versus, "{:.2f} x Ray", lambda v: v < 1.0
            )
        )
    if run.name == "large":
        result = run.runs.get(SLUICEWAY)
        if result is not None and result.error is None:
            server, worker = result.peaks.root, result.worker_peak
            figure = f"server {server / MB:.0f} MB, largest worker {worker / MB:.0f} MB"
            passed = max(server, worker) < PEAK_RSS_MB * MB
            found.append(
                Target(f"{what}: peak RSS under {PEAK_RSS_MB:g} MB per process", figure, passed)
            )
        else:
            found.append(Target(f"{what}: peak RSS under {PEAK_RSS_MB:g} MB", "-", None))
    checked = [r for r in run.runs.values() if r.agreement is not None]
    if len(checked) > 1:
        agree = all(r.agreement is not None and r.agreement.ok for r in checked)
        figure = ", ".join(
            f"{r.contender}: {r.agreement.detail}" for r in checked if r.agreement is not None
        )
        found.append(Target(f"{what}: outputs agree row for row", figure, agree))
    return found


def _measured(
    what: str, value: float | None, figure: str, passed: Callable[[float], bool]
) -> Target:
    """A target whose figure is ``value`` (None: not measured) shown with ``figure``."""
    if value is None:
        return Target(what, "-", None)
    return Target(what, figure.format(value), passed(value))


def _over_limit_per_file(run: WorkloadRun) -> float | None:
    """Seconds of Sluiceway's time above the limit's, per file of the workload."""
    sluiceway, limit = run.seconds(SLUICEWAY), run.limit
    if sluiceway is None or limit is None or not run.folder.files:
        return None
    return (sluiceway - limit) / run.folder.files


def render(
    *,
    command: str,
    settings_lines: list[str],
    header: list[str],
    runs: list[WorkloadRun],
    first: FirstResults | None,
    submit: SubmitResult | None,
    failures: list[str],
    took: float,
) -> str:
    lines = ["# Benchmark results", "", *header, f"- Command: `{command}`", *settings_lines]
    lines.append(f"- The whole run took {took / 60:.1f} min.")
    if runs:
        lines += ["", "## Throughput", "", *throughput_table(runs)]
    if first is not None or submit is not None:
        lines += ["", "## Latency (Sluiceway)", "", *latency_lines(first, submit)]
    if failures:
        lines += ["", "## Failures", "", *(f"- {_cell(failure)}" for failure in failures)]
    found = targets(runs, first, submit)
    if found:
        lines += ["", "## Targets", "", "| target | figure | result |", "|---|---|---|"]
        lines += [f"| {t.what} | {_cell(t.figure)} | {t.verdict} |" for t in found]
    return "\n".join(lines) + "\n"


__all__ = ["Target", "machine", "ms", "render", "targets"]
