"""The throughput workloads (medium, tiny files, large input): every contender scores the same
folder with the same model, one after the other, and their outputs are checked against each
other.

Each contender runs in processes of its own, started fresh for the workload, and the peak RSS
of each of its processes is sampled while it scores:

- bare loop: :mod:`benchmarks.bare_loop`; its time is model load + loop + output.
- limit: :mod:`benchmarks.limit`, run twice (one process with the libraries' threads, and N
  processes of one thread each); the better time counts, both are in the notes.
- Sluiceway: a server with a new home, whose deployment ran a warm-up job first (its workers
  are warm); the time is from just before the invoke ``POST`` to the poll that sees the job
  ``Completed`` (the output commit included).
- Ray Data: :mod:`benchmarks.ray_data`; the time is the pipeline (actors and model loads
  included); ``ray.init`` is timed apart.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

import pandas as pd

from benchmarks.agreement import (
    Agreement,
    compare,
    read_bare_loop,
    read_csv_folder,
    read_ray,
    read_sluiceway,
)
from benchmarks.datasets import MODELS, InputFolder, ModelKind, write_folder
from benchmarks.memory import MemoryPeaks, MemorySampler
from benchmarks.sluiceway_server import ROWS_FILE, Bench, profiled, ray_cluster, running_server

BARE = "bare loop"
LIMIT = "limit"
SLUICEWAY = "Sluiceway"
SLUICEWAY_RAY = "Sluiceway on Ray"
RAY = "Ray Data"
CONTENDERS = {
    "bare": BARE,
    "limit": LIMIT,
    "sluiceway": SLUICEWAY,
    "sluiceway-ray": SLUICEWAY_RAY,
    "ray": RAY,
}


@dataclass
class Settings:
    """What every throughput workload shares."""

    work: Path  # scratch folder: homes, logs, Ray's session
    data_root: Path  # inputs, model and outputs (the Sluiceway datastore's root)
    model_dir: Path
    workers: int
    mini_batch_size: int
    contenders: list[str]
    interval: float  # seconds between RSS samples
    poll: float  # seconds between job polls
    timeout: float  # seconds any contender may take
    ray_actor_cpus: float
    ray_object_store_mb: float
    profile: Path | None
    model: ModelKind = MODELS["gb"]
    bare_on_tiny: bool = False  # the bare loop takes minutes on the tiny files


@dataclass
class ContenderRun:
    contender: str
    seconds: float | None = None
    rows: int = 0
    peaks: MemoryPeaks = field(default_factory=MemoryPeaks)
    notes: dict[str, str] = field(default_factory=dict)
    agreement: Agreement | None = None
    error: str | None = None
    worker_peak: int = 0  # Sluiceway: the largest worker's peak RSS


@dataclass
class WorkloadRun:
    name: str
    folder: InputFolder
    workers: int
    model: ModelKind = MODELS["gb"]
    runs: dict[str, ContenderRun] = field(default_factory=dict)

    def seconds(self, contender: str) -> float | None:
        run = self.runs.get(contender)
        return run.seconds if run is not None and run.error is None else None

    @property
    def ideal(self) -> float | None:
        """The bare loop's time divided by the worker count."""
        bare = self.seconds(BARE)
        return bare / self.workers if bare is not None else None

    @property
    def limit(self) -> float | None:
        """The limit's time (the better of its two ways)."""
        return self.seconds(LIMIT)


OutputReader: TypeAlias = Callable[[], pd.DataFrame]
"""Reads a contender's output, normalized by :mod:`benchmarks.agreement`."""
Contender: TypeAlias = Callable[[str, InputFolder, Settings], tuple[ContenderRun, OutputReader]]
"""Runs one contender over a workload's folder: (workload name, folder, settings)."""


def run_workload(name: str, folder: InputFolder, settings: Settings) -> WorkloadRun:
    """Run each chosen contender over ``folder``, then check their outputs against each other."""
    result = WorkloadRun(name, folder, settings.workers, settings.model)
    outputs: dict[str, OutputReader] = {}
    steps: dict[str, Contender] = {
        BARE: _bare_loop,
        LIMIT: _limit,
        SLUICEWAY: _sluiceway,
        SLUICEWAY_RAY: _sluiceway_ray,
        RAY: _ray,
    }
    for contender in settings.contenders:
        if contender == BARE and name == "tiny" and not settings.bare_on_tiny:
            continue
        print(f"  {name} ({settings.model.name} model): {contender} ...", flush=True)
        try:
            # The contenders name their files, logs and homes after the workload and model.
            run, read = steps[contender](f"{name}-{settings.model.name}", folder, settings)
            outputs[contender] = read
        except Exception as exc:  # a contender that fails is reported, the others still run
            run = ContenderRun(contender, error=f"{type(exc).__name__}: {exc}")
        result.runs[contender] = run
        print(f"  {name} ({settings.model.name}): {contender}: {_one_line(run)}", flush=True)
    _check_outputs(result, outputs)
    return result


def _one_line(run: ContenderRun) -> str:
    if run.error:
        return f"FAILED {run.error[:2000]}"
    notes = ", ".join(f"{k} {v}" for k, v in run.notes.items())
    return f"{run.seconds:.2f} s, {run.rows} rows, RSS {run.peaks.summary()}; {notes}"


def _check_outputs(result: WorkloadRun, outputs: dict[str, OutputReader]) -> None:
    """Compare each output with the first contender's (the bare loop's when it ran)."""
    if not outputs:
        return
    reference_name = next(iter(outputs))
    reference = outputs[reference_name]()
    expected = result.folder.rows
    result.runs[reference_name].agreement = compare(reference, reference, expected)
    for contender, read in outputs.items():
        if contender == reference_name:
            continue
        result.runs[contender].agreement = compare(reference, read(), expected)


def _run_process(
    argv: list[str], log: Path, settings: Settings, env: dict[str, str] | None = None
) -> tuple[dict[str, Any], MemoryPeaks]:
    """Run ``argv`` in a session of its own while sampling its memory; its last stdout line
    (JSON) and its peaks."""
    with open(log, "ab") as err:
        process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=err, env=env, start_new_session=True
        )
    try:
        with MemorySampler(process.pid, settings.interval) as sampler:
            stdout, _ = process.communicate(timeout=settings.timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    finally:
        _kill_leftovers(process.pid)
    if process.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"exit code {process.returncode}; log {log}:\n{tail}")
    lines = stdout.decode().strip().splitlines()
    return json.loads(lines[-1]), sampler.peaks


def _kill_leftovers(session: int) -> None:
    """Processes the contender started and left behind (its session) are killed."""
    try:
        os.killpg(session, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _bare_loop(
    name: str, folder: InputFolder, settings: Settings
) -> tuple[ContenderRun, OutputReader]:
    output = settings.data_root / "out" / f"{name}-bare.csv"
    output.parent.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "benchmarks.bare_loop", str(settings.model_dir)]
    argv += [str(folder.path), str(output)]
    value, peaks = _run_process(argv, settings.work / f"{name}-bare.log", settings)
    run = ContenderRun(BARE, float(value["seconds"]), int(value["rows"]), peaks)
    run.notes["model load"] = f"{value['load_seconds']:.2f} s"
    return run, lambda: read_bare_loop(output)


def _limit(name: str, folder: InputFolder, settings: Settings) -> tuple[ContenderRun, OutputReader]:
    """The limit, both ways: one process with the libraries' threads, and N processes of one
    thread each; the better one counts."""
    ways = {"1 process": ["--processes", "1"]}
    if settings.workers > 1:
        ways[f"{settings.workers} processes x 1 thread"] = [
            "--processes",
            str(settings.workers),
            "--threads",
            "1",
        ]
    timed: dict[str, tuple[ContenderRun, Path]] = {}
    for way, flags in ways.items():
        output = settings.data_root / "out" / f"{name}-limit-{len(timed)}"
        argv = [sys.executable, "-m", "benchmarks.limit", str(settings.model_dir)]
        argv += [str(folder.path), str(output), *flags]
        log = settings.work / f"{name}-limit.log"
        value, peaks = _run_process(argv, log, settings, _without_thread_settings())
        run = ContenderRun(LIMIT, float(value["seconds"]), int(value["rows"]), peaks)
        run.notes["model load"] = f"{value['load_seconds']:.2f} s (excluded)"
        timed[way] = (run, output)
    best_way = min(timed, key=lambda way: timed[way][0].seconds or 0.0)
    best, output = timed[best_way]
    best.notes["way"] = best_way
    for way, (run, _) in timed.items():
        if way != best_way:
            best.notes[way] = f"{run.seconds:.2f} s"
    return best, lambda: read_csv_folder(output)


def _without_thread_settings() -> dict[str, str]:
    """This environment without thread counts chosen for the libraries."""
    threads = {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"}
    return {k: v for k, v in os.environ.items() if k not in threads}


def _ray(name: str, folder: InputFolder, settings: Settings) -> tuple[ContenderRun, OutputReader]:
    output = settings.data_root / "out" / f"{name}-ray"
    argv = [sys.executable, "-m", "benchmarks.ray_data", str(settings.model_dir)]
    argv += [str(folder.path), str(output), "--workers", str(settings.workers)]
    argv += ["--actor-cpus", str(settings.ray_actor_cpus)]
    argv += ["--object-store-mb", str(settings.ray_object_store_mb)]
    argv += ["--temp-dir", str(settings.work / "ray")]
    # Ray's workers use this interpreter; Ray must not try to rebuild a uv environment for them.
    env = {**os.environ, "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0"}
    value, peaks = _run_process(argv, settings.work / f"{name}-ray.log", settings, env)
    run = ContenderRun(RAY, float(value["seconds"]), int(value["rows"]), peaks)
    run.notes["ray.init"] = f"{value['init_seconds']:.2f} s (excluded)"
    return run, lambda: read_ray(output)


def _sluiceway_ray(
    name: str, folder: InputFolder, settings: Settings
) -> tuple[ContenderRun, OutputReader]:
    """Sluiceway's ray executor on a two-node Ray cluster of this machine, started for the
    workload (not timed): one actor per worker, spread over the nodes."""
    with ray_cluster(settings.work / f"ray-{name}") as env:
        return _sluiceway(name, folder, settings, ray=env)


def _sluiceway(
    name: str, folder: InputFolder, settings: Settings, ray: dict[str, str] | None = None
) -> tuple[ContenderRun, OutputReader]:
    suffix = "sluiceway" if ray is None else "sluiceway-ray"
    output = settings.data_root / "out" / f"{name}-{suffix}"
    home = settings.work / "homes" / f"{name}-{suffix}"
    log = settings.work / f"{name}-{suffix}-server.log"
    with (
        running_server(home, log, settings.data_root, env=ray) as server,
        server.client() as client,
    ):
        bench = Bench(client, settings.data_root)
        compute = None
        if ray is not None:
            compute = "bench-ray"
            address = ray["SLUICEWAY_TEST_RAY_ADDRESS"]
            body = {"name": compute, "type": "ray", "address": address}
            response = client.put(f"/computes/{compute}", json=body)
            if response.is_error:
                raise RuntimeError(f"the compute was not created: {response.text}")
        bench.deploy(
            settings.model_dir,
            workers=settings.workers,
            mini_batch_size=settings.mini_batch_size,
            compute=compute,
        )
        # A first job over N one-row files (one mini-batch each) starts the N workers and
        # loads the model; the timed job then runs on the warm workers, as a deployment's
        # jobs do after its first (the server keeps them warm between jobs).
        warm_up = write_folder(settings.data_root / f"warm-up-{name}", settings.workers, 1, 9)
        cold = bench.run(
            warm_up.path,
            None,
            interval=settings.poll,
            timeout=settings.timeout,
            MiniBatchSize=1,
        )
        if cold.status != "Completed":
            raise RuntimeError(f"the warm-up job {cold.name} ended {cold.status}")
        with MemorySampler(server.process.pid, settings.interval) as sampler:
            if settings.profile is not None:
                settings.profile.mkdir(parents=True, exist_ok=True)
                target = settings.profile / f"{name}-{suffix}.speedscope.json"
                with profiled(server.process.pid, target, settings.work / "py-spy.log"):
                    job = bench.run(
                        folder.path, output, interval=settings.poll, timeout=settings.timeout
                    )
            else:
                job = bench.run(
                    folder.path, output, interval=settings.poll, timeout=settings.timeout
                )
    progress = job.progress
    if job.status != "Completed":
        error = (job.job.get("error") or {}).get("message") or job.job.get("status_detail")
        raise RuntimeError(f"job {job.name} ended {job.status}: {error}")
    run = ContenderRun(
        SLUICEWAY if ray is None else SLUICEWAY_RAY,
        job.seconds,
        int(progress.get("items_succeeded") or 0),
        sampler.peaks,
    )
    run.worker_peak = sampler.peaks.max_child
    run.notes["mini-batches"] = str(progress.get("mini_batches_total"))
    run.notes["warm-up job (cold workers)"] = f"{cold.seconds:.2f} s"
    retried = int(progress.get("mini_batches_retried") or 0)
    if retried:
        run.notes["retried"] = str(retried)
    return run, lambda: read_sluiceway(output / ROWS_FILE)


__all__ = [
    "BARE",
    "CONTENDERS",
    "LIMIT",
    "RAY",
    "SLUICEWAY",
    "SLUICEWAY_RAY",
    "ContenderRun",
    "Settings",
    "WorkloadRun",
    "run_workload",
]
