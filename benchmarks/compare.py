"""Sluiceway against the bare loop (the limit) and Ray Data, on data generated for the run.

``./benchmarks/run.sh [flags]`` installs what the contenders need and runs this module; see
``benchmarks/README.md`` for what each workload measures. It prints a Markdown report (machine,
versions, date, the tables and the targets); ``--write-results`` also writes it to
``benchmarks/RESULTS.md``. Exit status 1 when a contender failed or the outputs disagree.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import shutil
import sys
import tempfile
import time
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path

from benchmarks import report
from benchmarks.datasets import (
    MODELS,
    InputFolder,
    describe,
    rows_for_size,
    train_model,
    write_folder,
)
from benchmarks.latency import FirstResults, SubmitResult, first_results, submit_burst
from benchmarks.sluiceway_server import Bench, profiled, running_server
from benchmarks.throughput import BARE, CONTENDERS, Settings, WorkloadRun, run_workload

THROUGHPUT = ("medium", "tiny", "large")
LATENCY = ("first", "submit")
WORKLOADS = THROUGHPUT + LATENCY
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
# Sluiceway on Ray starts a Ray cluster per workload and model: asked for by name
# (benchmarks/RESULTS-ray.md holds such a run).
DEFAULT_CONTENDERS = ("bare", "limit", "sluiceway", "ray")
SIZE_FLAGS = ("files", "rows", "tiny_files", "large_files", "large_mb", "submit", "clients")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="benchmarks/run.sh", description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--workloads", default=",".join(WORKLOADS), help=f"comma-separated: {','.join(WORKLOADS)}")
    add(
        "--contenders",
        default=",".join(DEFAULT_CONTENDERS),
        help=f"comma-separated: {','.join(CONTENDERS)}",
    )
    add("--models", default=",".join(MODELS), help=f"comma-separated: {','.join(MODELS)}")
    add("--workers", type=int, default=os.cpu_count() or 1, help="workers of every contender")
    add("--mini-batch-size", type=int, default=10, help="of the Sluiceway deployment (medium)")
    add("--tiny-mini-batch-size", type=int, default=100, help="tiny: files per mini-batch")
    add("--large-mini-batch-size", type=int, default=1, help="large: files per mini-batch")
    add("--files", type=int, default=200, help="medium: files")
    add("--rows", type=int, default=5000, help="medium: rows per file")
    add("--tiny-files", type=int, default=20_000, help="tiny files: files of one row")
    add("--large-files", type=int, default=8, help="large input: files")
    add("--large-mb", type=float, default=25.0, help="large input: MB per file")
    add("--submit", type=int, default=500, help="submit: invocations")
    add("--clients", type=int, default=50, help="submit: concurrent clients")
    add(
        "--bare-on-tiny",
        action="store_true",
        help="run the bare loop on the tiny files too (about 6 min per model at 20,000 files)",
    )
    add("--first-repeats", type=int, default=5, help="first result: warm jobs timed")
    add("--ray-actor-cpus", type=float, default=0.5)
    add("--ray-object-store-mb", type=float, default=512.0)
    add("--interval", type=float, default=0.2, help="seconds between RSS samples")
    add("--poll", type=float, default=0.5, help="seconds between job polls")
    add("--timeout", type=float, default=3600.0, help="seconds a contender may take")
    add("--work", type=Path, default=None, help="where the scratch folder goes (default: $TMPDIR)")
    add("--keep", action="store_true", help="keep the scratch folder")
    add("--profile", type=Path, default=None, help="record py-spy profiles of the server here")
    add("--write-results", action="store_true", help=f"write the report to {RESULTS}")
    args = parser.parse_args(argv)
    args.smaller = lambda name: getattr(args, name) < parser.get_default(name)
    args.workloads = _choices(parser, "--workloads", args.workloads, WORKLOADS)
    chosen = _choices(parser, "--contenders", args.contenders, tuple(CONTENDERS))
    args.contenders = [CONTENDERS[name] for name in chosen]
    args.models = [
        MODELS[name] for name in _choices(parser, "--models", args.models, tuple(MODELS))
    ]
    counts = ["workers", "mini_batch_size", "tiny_mini_batch_size", "large_mini_batch_size"]
    counts += ["files", "rows", "tiny_files", "large_files"]
    counts += ["submit", "clients", "first_repeats"]
    for name in counts:
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} {getattr(args, name)}: use 1 or more")
    for name in (
        "large_mb",
        "ray_actor_cpus",
        "ray_object_store_mb",
        "interval",
        "poll",
        "timeout",
    ):
        if not getattr(args, name) > 0:
            parser.error(f"--{name.replace('_', '-')} {getattr(args, name)}: use a number above 0")
    return args


def _choices(
    parser: argparse.ArgumentParser, flag: str, value: str, accepted: tuple[str, ...]
) -> list[str]:
    chosen = [item.strip() for item in value.split(",") if item.strip()]
    wrong = [item for item in chosen if item not in accepted]
    if wrong or not chosen:
        parser.error(f"{flag} {value!r}: use a comma-separated list of {', '.join(accepted)}")
    return chosen


def main(argv: list[str]) -> int:
    args = parse(argv)
    started = time.perf_counter()
    header = report.machine()
    if args.work is not None:
        args.work.mkdir(parents=True, exist_ok=True)
    # A folder of its own, even inside --work, so that removing it removes nothing else.
    work = Path(tempfile.mkdtemp(prefix="sluiceway-bench-", dir=args.work)).resolve()
    data = work / "data"
    print(f"scratch folder {work}", flush=True)
    try:
        data.mkdir()
        models = {kind.name: train_model(data / f"model-{kind.name}", kind) for kind in args.models}
        runs, first, submit, sizes, failures = _run(args, work, data, models)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    text = report.render(
        command="benchmarks/run.sh " + shlex.join(argv),
        settings_lines=_settings_lines(args, sizes),
        header=header,
        runs=runs,
        first=first,
        submit=submit,
        failures=failures,
        took=time.perf_counter() - started,
    )
    print("\n" + text, flush=True)
    if args.write_results:
        RESULTS.write_text(text, encoding="utf-8")
        print(f"written to {RESULTS}")
    failed = any(
        r.error is not None or (r.agreement is not None and not r.agreement.ok)
        for run in runs
        for r in run.runs.values()
    )
    return 1 if failed or failures or (submit is not None and submit.lost) else 0


def _run(
    args: argparse.Namespace, work: Path, data: Path, models: dict[str, Path]
) -> tuple[list[WorkloadRun], FirstResults | None, SubmitResult | None, dict[str, str], list[str]]:
    settings = Settings(
        work=work,
        data_root=data,
        model_dir=next(iter(models.values())),
        model=args.models[0],
        workers=args.workers,
        mini_batch_size=args.mini_batch_size,
        contenders=args.contenders,
        interval=args.interval,
        poll=args.poll,
        timeout=args.timeout,
        ray_actor_cpus=args.ray_actor_cpus,
        ray_object_store_mb=args.ray_object_store_mb,
        profile=args.profile.resolve() if args.profile else None,
        bare_on_tiny=args.bare_on_tiny,
    )
    sizes: dict[str, str] = {}
    runs: list[WorkloadRun] = []
    for name in (w for w in THROUGHPUT if w in args.workloads):
        folder = _write_input(name, args, data)
        sizes[name] = describe(folder)
        print(f"{name}: {sizes[name]}", flush=True)
        size = {"tiny": args.tiny_mini_batch_size, "large": args.large_mini_batch_size}
        for kind in args.models:
            chosen = replace(
                settings,
                model=kind,
                model_dir=models[kind.name],
                mini_batch_size=size.get(name, args.mini_batch_size),
            )
            runs.append(run_workload(name, folder, chosen))
            shutil.rmtree(data / "out", ignore_errors=True)  # outputs of a large run take room
        if name != "medium":
            shutil.rmtree(folder.path, ignore_errors=True)
    first: FirstResults | None = None
    submit: SubmitResult | None = None
    failures: list[str] = []
    if any(w in args.workloads for w in LATENCY):
        try:
            first, submit = _latency(args, settings, sizes)
        except Exception as exc:  # the throughput figures are still reported
            failures.append(f"first result / submit: {type(exc).__name__}: {exc}")
            print(failures[-1], flush=True)
    return runs, first, submit, sizes, failures


def _write_input(name: str, args: argparse.Namespace, data: Path) -> InputFolder:
    if name == "medium":
        return write_folder(data / name, args.files, args.rows, seed=1)
    if name == "tiny":
        return write_folder(data / name, args.tiny_files, 1, seed=2)
    return write_folder(data / name, args.large_files, rows_for_size(args.large_mb), seed=3)


def _latency(
    args: argparse.Namespace, settings: Settings, sizes: dict[str, str]
) -> tuple[FirstResults | None, SubmitResult | None]:
    data = settings.data_root
    few = write_folder(data / "first", args.workers, args.rows, seed=4)
    one = write_folder(data / "submit", 1, 1, seed=5)
    home = settings.work / "homes" / "latency"
    first: FirstResults | None = None
    submit: SubmitResult | None = None
    with (
        running_server(home, settings.work / "latency-server.log", data) as server,
        server.client() as client,
    ):
        bench = Bench(client, data)
        bench.deploy(settings.model_dir, workers=args.workers, mini_batch_size=args.mini_batch_size)
        profile: AbstractContextManager[None] = contextlib.nullcontext()
        if settings.profile is not None:
            settings.profile.mkdir(parents=True, exist_ok=True)
            target = settings.profile / "latency-sluiceway.speedscope.json"
            profile = profiled(server.process.pid, target, settings.work / "py-spy.log")
        with profile:
            # The first job of the deployment is the cold case, and warms the server up.
            print("latency: the first job of the deployment ...", flush=True)
            repeats = args.first_repeats if "first" in args.workloads else 0
            timed = first_results(bench, few.path, repeats, settings.timeout)
            if "first" in args.workloads:
                first = timed
                sizes["first"] = f"{describe(few)}, MiniBatchSize 1"
                print(f"first result: cold {timed.cold}, warm {timed.warm}", flush=True)
            if "submit" in args.workloads:
                sizes["submit"] = f"{args.submit} invocations from {args.clients} clients, "
                sizes["submit"] += f"each over {describe(one)}"
                print(f"submit: {sizes['submit']} ...", flush=True)
                submit = submit_burst(server, bench, one.path, args.submit, args.clients)
                print(
                    f"submit: p50 {report.ms(submit.percentile(50))}, "
                    f"p99 {report.ms(submit.percentile(99))}, {submit.rate:.1f} jobs/s, "
                    f"{submit.lost} lost",
                    flush=True,
                )
    return first, submit


def _settings_lines(args: argparse.Namespace, sizes: dict[str, str]) -> list[str]:
    lines = [
        f"- Workers: {args.workers} for every contender (Sluiceway: one instance, "
        f"max_concurrency_per_instance {args.workers}, mini_batch_size {args.mini_batch_size} "
        f"(tiny {args.tiny_mini_batch_size}, large {args.large_mini_batch_size}); "
        f"Ray Data: ActorPoolStrategy(size={args.workers}), num_cpus={args.ray_actor_cpus:g} per "
        f"actor, ray.init(num_cpus={args.workers}), object store {args.ray_object_store_mb:g} MB)",
        "- Models: scikit-learn pipelines (one-hot encoding, then the classifier), each one "
        "MLflow model loaded by every contender: "
        + "; ".join(f"{kind.name}: {kind.label}" for kind in args.models),
        f"- RSS sampled every {args.interval:g} s, jobs polled every {args.poll:g} s",
    ]
    lines += [f"- {name}: {size}" for name, size in sizes.items()]
    if "tiny" in sizes and not args.bare_on_tiny and BARE in args.contenders:
        lines.append(
            "- tiny: without the bare loop (one `predict` per file, about 17 ms each: 6 minutes "
            "per model at 20,000 files; `--bare-on-tiny` runs it)"
        )
    if args.profile is not None:
        lines.append("- Profiled with py-spy: Sluiceway's figures include the profiler's cost.")
    smaller = [f"--{name.replace('_', '-')}" for name in SIZE_FLAGS if args.smaller(name)]
    if smaller:
        lines.append(
            f"- **A smoke run** ({', '.join(smaller)} below the defaults): start-up costs weigh "
            "far more than at the defaults, so the ratios and the targets do not stand for the "
            "benchmark's."
        )
    return lines


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
