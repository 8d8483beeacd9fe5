"""The bare loop: the least any batch system can cost on one worker.

One process loads the MLflow model once, then for each CSV file of the folder, in name order:
``pandas.read_csv``, ``predict``, and appends ``file_name,row,prediction`` lines to one output
file. No framework. The harness runs it as its own process (so its memory is measured alone)::

    python -m benchmarks.bare_loop MODEL_DIR INPUT_DIR OUTPUT_FILE

and reads one JSON line from its stdout: ``load_seconds`` (the model), ``seconds`` (model load,
the loop and the output, Python's start-up and imports excluded) and ``rows``.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import warnings
from pathlib import Path
from typing import Any

OUTPUT_COLUMNS = ["file_name", "row", "prediction"]


def score_folder(model_dir: Path, input_dir: Path, output: Path) -> dict[str, Any]:
    """Score every ``*.csv`` file of ``input_dir`` into ``output``; the timings and row count."""
    import numpy as np
    import pandas as pd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import mlflow.pyfunc
    logging.getLogger("mlflow").setLevel(logging.ERROR)

    paths = sorted(input_dir.glob("*.csv"))
    started = time.perf_counter()
    model = mlflow.pyfunc.load_model(str(model_dir))
    loaded = time.perf_counter()
    rows = 0
    with open(output, "w", encoding="utf-8", newline="") as out:
        out.write(",".join(OUTPUT_COLUMNS) + "\n")
        for path in paths:
            data = pd.read_csv(path)
            predictions = model.predict(data)
            scored = pd.DataFrame(
                {
                    "file_name": path.name,
                    "row": np.arange(len(data)),
                    "prediction": np.asarray(predictions),
                }
            )
            scored.to_csv(out, header=False, index=False, lineterminator="\n")
            rows += len(data)
    done = time.perf_counter()
    return {"load_seconds": loaded - started, "seconds": done - started, "rows": rows}


def main(argv: list[str]) -> None:
    if len(argv) != 3:
        raise SystemExit("usage: python -m benchmarks.bare_loop MODEL_DIR INPUT_DIR OUTPUT_FILE")
    model_dir, input_dir, output = (Path(arg) for arg in argv)
    print(json.dumps(score_folder(model_dir, input_dir, output)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
