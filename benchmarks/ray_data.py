"""The Ray Data contender: ``read_csv`` + ``map_batches`` on an actor pool, written as CSV.

Run as its own process by the harness (so Ray's processes are its children, measured together,
and nothing of Ray stays in the harness)::

    python -m benchmarks.ray_data MODEL_DIR INPUT_DIR OUTPUT_DIR --workers N

It starts a local Ray instance with ``N`` CPUs and a small object store, then times the pipeline:
``ray.data.read_csv(INPUT_DIR, include_paths=True)``, ``map_batches`` with an
``ActorPoolStrategy(size=N)`` of scorers that each load the MLflow model once (``num_cpus=0.5``
per actor: with a whole CPU each, the read tasks get none and the pipeline stalls on a small
machine), and ``write_csv(OUTPUT_DIR)``. It prints one JSON line: ``init_seconds`` (``ray.init``,
reported apart), ``seconds`` (the pipeline, actor start-up and model loads included) and
``rows``.

Each row's index in its file is its rank among that file's rows in its batch, and each batch
is a whole block (``batch_size=None``), so that index is right as long as no file is cut over
two blocks. Ray cuts files in two cases: to reach a read parallelism above the number of files,
and past its target block size (128 MiB). Ray's read parallelism is the largest of
``DataContext.read_op_min_num_blocks`` (200 by default), what its block sizes need, and twice
the CPUs. The first is capped at the number of files, and with fewer files than twice the CPUs
the parallelism is set to the number of files (``override_num_blocks``); otherwise Ray's own
choice stays. Files past 128 MiB do not occur at the harness's sizes. A file that was cut anyway
shows in the harness's check of the outputs as repeated row indexes, never as a silent
agreement.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
import warnings
from pathlib import Path
from typing import Any

MB = 1 << 20


class Scorer:
    """One actor of the pool: loads the model once, scores whole blocks."""

    def __init__(self, model_dir: str) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import mlflow.pyfunc
        logging.getLogger("mlflow").setLevel(logging.ERROR)
        self._model = mlflow.pyfunc.load_model(model_dir)
        self._features = self._model.metadata.get_input_schema().input_names()

    def __call__(self, batch: Any) -> Any:
        import numpy as np
        import pandas as pd

        predictions = self._model.predict(batch[self._features])
        names = batch["path"].map(os.path.basename)
        return pd.DataFrame(
            {
                "file_name": names,
                "row": names.groupby(names, sort=False).cumcount().to_numpy(),
                "prediction": np.asarray(predictions),
            }
        )


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start Ray, run the pipeline, stop Ray; the timings and row count."""
    import ray

    started = time.perf_counter()
    ray.init(
        num_cpus=args.workers,
        include_dashboard=False,
        object_store_memory=int(args.object_store_mb * MB),
        log_to_driver=False,
        logging_level=logging.WARNING,
        _temp_dir=args.temp_dir,
    )
    initialized = time.perf_counter()
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        files = sum(1 for _ in Path(args.input_dir).glob("*.csv"))
        context.read_op_min_num_blocks = max(1, min(files, context.read_op_min_num_blocks))
        # With fewer files than twice the CPUs, Ray would cut files to keep the CPUs busy.
        blocks = max(files, 1) if files < 2 * args.workers else None
        dataset = ray.data.read_csv(
            str(args.input_dir), include_paths=True, override_num_blocks=blocks
        )
        scored = dataset.map_batches(
            Scorer,
            fn_constructor_args=(str(args.model_dir),),
            compute=ray.data.ActorPoolStrategy(size=args.workers),
            num_cpus=args.actor_cpus,
            batch_size=None,
            batch_format="pandas",
        )
        scored.write_csv(str(args.output_dir))
        done = time.perf_counter()
    finally:
        ray.shutdown()
    rows = 0
    for path in Path(args.output_dir).glob("*.csv"):
        with open(path, "rb") as fh:
            rows += max(sum(1 for _ in fh) - 1, 0)
    return {"init_seconds": initialized - started, "seconds": done - initialized, "rows": rows}


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("input_dir", type=Path)
    parser.add_argument("output_dir", type=Path)
    parser.add_argument("--workers", type=int, required=True, help="actors in the pool")
    parser.add_argument("--actor-cpus", type=float, default=0.5)
    parser.add_argument("--object-store-mb", type=float, default=512.0)
    parser.add_argument("--temp-dir", default=None, help="Ray's session folder")
    return parser.parse_args(argv)


if __name__ == "__main__":
    print(json.dumps(run(parse())), flush=True)
