"""Scoring throughput of the local executor against a plain in-process loop.

The baseline loads the bundled heart-disease MLflow model once and scores every mini-batch in
a loop, in this process: the least a batch system could cost. The candidate runs the same
mini-batches on a :class:`~sluiceway.executors.local.LocalExecutor` pool (worker start-up,
``init()``, pipes and part files included). The ratio is baseline time / candidate time: above
1 the pool is faster than the loop.
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from pathlib import Path

from sluiceway.examples.heart import generate_heart_frame, train_heart_model
from sluiceway.executors.base import JobContext, MiniBatchTask, ScorerKind, WorkerSpec
from sluiceway.executors.local import LocalExecutor
from sluiceway.runtime.scoring import load_scorer


def make_inputs(folder: Path, files: int, rows: int) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    frame = generate_heart_frame(files * rows, seed=7, labeled=False)
    paths = []
    for i in range(files):
        path = folder / f"part-{i:05d}.csv"
        frame.iloc[i * rows : (i + 1) * rows].to_csv(path, index=False)
        paths.append(str(path))
    return paths


def baseline(spec: WorkerSpec, job: JobContext, batches: list[list[str]]) -> tuple[float, int]:
    os.environ["AZUREML_MODEL_DIR"] = spec.model_dir or ""
    os.environ["AZUREML_BI_OUTPUT_PATH"] = job.output_dir
    start = time.perf_counter()
    scorer = load_scorer(spec)
    items = 0
    for batch in batches:
        items += scorer.score(batch, io.StringIO())  # the lines, rendered as for a part file
    return time.perf_counter() - start, items


def candidate(
    spec: WorkerSpec, job: JobContext, batches: list[list[str]], workers: int
) -> tuple[float, int]:
    start = time.perf_counter()
    pending = [MiniBatchTask(i, tuple(b), 1, 600.0) for i, b in enumerate(batches)]
    items = 0
    done = 0
    with LocalExecutor().open_pool(spec, job, workers) as pool:
        while done < len(batches):
            while pending and pool.idle():
                pool.submit(pending.pop(0))
            for result in pool.poll(0.5):
                if not result.ok:
                    raise RuntimeError(f"mini-batch {result.index}: {result.error_message}")
                items += result.items_succeeded
                done += 1
    return time.perf_counter() - start, items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--rows", type=int, default=100, help="rows per file")
    parser.add_argument("--mini-batch-size", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model_dir = train_heart_model(root / "model")
        paths = make_inputs(root / "data", args.files, args.rows)
        size = args.mini_batch_size
        batches = [paths[i : i + size] for i in range(0, len(paths), size)]

        spec = WorkerSpec(scorer=ScorerKind.MLFLOW, model_dir=str(model_dir))

        def job(name: str) -> JobContext:
            out = root / name
            (out / "parts").mkdir(parents=True)
            return JobContext(
                job_name=name,
                output_dir=str(out),
                parts_dir=str(out / "parts"),
                log_dir=str(out / "logs"),
            )

        base_time, base_items = baseline(spec, job("baseline"), batches)
        cand_time, cand_items = candidate(spec, job("pool"), batches, args.workers)
    assert base_items == cand_items == args.files * args.rows, (base_items, cand_items)
    n = len(batches)
    print(f"{args.files} files x {args.rows} rows, mini_batch_size {size}: {n} mini-batches")
    base_rate = base_items / base_time
    cand_rate = cand_items / cand_time
    print(f"baseline  in-process loop      {base_time:7.2f} s  {base_rate:9.0f} rows/s")
    print(
        f"candidate local pool x{args.workers:<2}       {cand_time:7.2f} s  {cand_rate:9.0f} rows/s"
    )
    print(f"ratio (baseline / candidate)   {base_time / cand_time:7.2f}")


if __name__ == "__main__":
    main()
