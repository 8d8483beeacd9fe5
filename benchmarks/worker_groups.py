"""One worker's scoring of many small mini-batches, one at a time against in groups.

``python -m benchmarks.worker_groups [--files N] [--per-batch F] [--groups 1,4,8,16,32]
[--model gb|hgb]`` writes N one-row CSV files and trains the model (as the throughput
benchmark does), loads the built-in MLflow scorer in this process as a worker would, then times
:func:`sluiceway.runtime.worker.run_tasks` over the mini-batches of F files, taken G at a time
(the worker takes the small mini-batches it holds together, up to ``JOINT_TASKS``), parts
written and made durable. Group size 1 is each mini-batch scored alone, the baseline.

It prints a Markdown table: seconds for all the files (the best of ``--repeat`` runs),
microseconds per file, and the ratio to scoring one mini-batch at a time.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections import deque
from pathlib import Path

from benchmarks.datasets import MODELS, train_model, write_folder
from sluiceway.executors.base import JobContext, MiniBatchTask, ScorerKind, WorkerSpec
from sluiceway.runtime.scoring import load_scorer
from sluiceway.runtime.worker import run_tasks, take_joinable


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--per-batch", type=int, default=100, help="files per mini-batch")
    parser.add_argument("--groups", default="1,4,8,16,32", help="mini-batches taken at a time")
    parser.add_argument("--model", choices=sorted(MODELS), default="gb")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: temp)")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # one worker's share of a 2-worker machine

    work = Path(tempfile.mkdtemp(prefix="worker-groups-", dir=args.work))
    model_dir = train_model(work / "model", MODELS[args.model])
    data = work / "data"
    write_folder(data, args.files, 1, seed=1)
    os.environ["AZUREML_MODEL_DIR"] = str(model_dir)
    scorer = load_scorer(WorkerSpec(scorer=ScorerKind.MLFLOW, model_dir=str(model_dir)))
    root = str(data)
    files = [os.path.join(root, name) for name in sorted(os.listdir(root))]
    tasks = [
        MiniBatchTask(index, tuple(files[start : start + args.per_batch]), 1, 60.0)
        for index, start in enumerate(range(0, len(files), args.per_batch))
    ]
    job = JobContext(
        job_name="bench",
        output_dir=str(work / "score"),
        parts_dir=str(work / "parts"),
        log_dir=str(work / "logs"),
    )

    def score(group: int) -> float:
        started = time.perf_counter()
        for start in range(0, len(tasks), group):
            held = deque(tasks[start + 1 : start + group])
            taken = [tasks[start], *take_joinable(scorer, tasks[start], held)]
            run_tasks(scorer, taken, job, "worker-0")
        return time.perf_counter() - started

    sizes = [int(g) for g in args.groups.split(",")]
    score(sizes[0])  # the first predict() calls load what they need
    best = {size: min(score(size) for _ in range(args.repeat)) for size in sizes}
    print(
        f"{len(files)} one-row files in {len(tasks)} mini-batches of {args.per_batch}, "
        f"model {args.model}, one worker, best of {args.repeat}\n"
    )
    print("| mini-batches at a time | seconds | us per file | x one at a time |")
    print("|---:|---:|---:|---:|")
    for size, seconds in best.items():
        ratio = seconds / best[1] if 1 in best else float("nan")
        print(f"| {size} | {seconds:.3f} | {seconds / len(files) * 1e6:.1f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
