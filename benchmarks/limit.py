"""The limit: the fastest scoring a user could write by hand, without any framework.

The raw scikit-learn model (the MLflow model's pickled estimator, as ``mlflow.sklearn`` would
load it, not ``mlflow.pyfunc``'s wrapper and its schema check), ``pandas.read_csv`` per file
(small files, of one header, read together by one ``read_csv`` call over their joined bytes,
as someone who knows their data would write it: see :func:`_read_together`), one ``predict``
over many files' rows at once (in chunks of about :data:`CHUNK_ROWS` rows, so that a large
input never sits in memory whole), and one output file per process, written by ``pyarrow``'s
CSV writer (several times faster than ``DataFrame.to_csv``). Two ways of using
the machine, both run by the harness, which keeps the better:

- ``--processes 1``: one process, whose ``predict`` uses as many threads as the libraries take
  by themselves (OpenMP in HistGradientBoosting, BLAS);
- ``--processes N --threads 1``: the process loads the model, then forks N processes (the model
  is shared, copy-on-write), each limited to one thread (``threadpoolctl``) and scoring every
  N-th file, in name order.

Run as its own process by the harness::

    python -m benchmarks.limit MODEL_DIR INPUT_DIR OUTPUT_DIR --processes N [--threads T]

Each process ``i`` writes ``OUTPUT_DIR/part-<i>.csv`` (``file_name,row,prediction`` with a
header). It prints one JSON line: ``load_seconds`` (the model), ``seconds`` (from the loaded
model: listing the folder, the processes, reading, scoring and writing; Python's start-up,
imports and the model's load excluded, as for Sluiceway's warm workers) and ``rows``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time
from pathlib import Path
from typing import Any

CHUNK_ROWS = 200_000  # rows scored by one predict() call, at least one whole file


def _score(model: Any, paths: list[str], output: Path, threads: int | None) -> int:
    """Score ``paths`` into ``output``; the rows written."""
    import numpy as np
    import pandas as pd
    import pyarrow
    import pyarrow.csv

    if threads is not None:
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)
    rows = 0
    schema = pyarrow.schema(
        [("file_name", pyarrow.string()), ("row", pyarrow.int64()), ("prediction", pyarrow.int64())]
    )
    with pyarrow.csv.CSVWriter(str(output), schema) as out:
        frames: list[pd.DataFrame] = []
        names: list[str] = []
        sizes: list[int] = []
        waiting = 0

        def flush() -> None:
            data = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
            predictions = np.asarray(model.predict(data))
            counts = list(sizes)
            scored = pyarrow.table(
                {
                    "file_name": np.repeat(np.array(names, dtype=object), counts),
                    "row": np.concatenate([np.arange(count) for count in counts]),
                    "prediction": predictions.astype(np.int64),
                },
                schema=schema,
            )
            out.write_table(scored)
            frames.clear()
            names.clear()
            sizes.clear()

        for group in _groups(paths):
            data, counts = _read_together(group) if len(group) > 1 else _read_one(group[0])
            if not len(data):
                continue
            frames.append(data)
            names.extend(name for name, _ in counts)
            sizes.extend(count for _, count in counts)
            waiting += len(data)
            rows += len(data)
            if waiting >= CHUNK_ROWS:
                flush()
                waiting = 0
        if frames:
            flush()
    return rows


SMALL_BYTES = 64 << 10  # files this small are read together, up to GROUP_BYTES at a time
GROUP_BYTES = 8 << 20


def _groups(paths: list[str]) -> list[list[str]]:
    """Runs of consecutive small files (read together), and each larger file alone."""
    groups: list[list[str]] = []
    run: list[str] = []
    size = 0
    for path in paths:
        length = os.path.getsize(path)
        if length > SMALL_BYTES:
            if run:
                groups.append(run)
                run, size = [], 0
            groups.append([path])
            continue
        if size + length > GROUP_BYTES and run:
            groups.append(run)
            run, size = [], 0
        run.append(path)
        size += length
    if run:
        groups.append(run)
    return groups


def _read_one(path: str) -> tuple[Any, list[tuple[str, int]]]:
    import pandas as pd

    data = pd.read_csv(path)
    return data, [(os.path.basename(path), len(data))]


def _read_bytes(path: str) -> bytes:
    """A file's bytes with the fewest system calls (no buffered file object, no pathlib)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while chunk := os.read(fd, SMALL_BYTES + 1):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _read_together(paths: list[str]) -> tuple[Any, list[tuple[str, int]]]:
    """One frame of the rows of small CSV files that share a header line, with each file's
    row count (its lines after the header: the benchmark's files quote no line breaks). Files
    of another header are read alone."""
    import io

    import pandas as pd

    header: bytes | None = None
    bodies: list[bytes] = []
    counts: list[tuple[str, int]] = []
    for path in paths:
        content = _read_bytes(path)
        first, _, body = content.partition(b"\n")
        if header is None:
            header = first
        if first != header:
            return _read_apart(paths)
        if body and not body.endswith(b"\n"):
            body += b"\n"
        bodies.append(body)
        counts.append((os.path.basename(path), body.count(b"\n")))
    assert header is not None
    data = pd.read_csv(io.BytesIO(header + b"\n" + b"".join(bodies)))
    return data, counts


def _read_apart(paths: list[str]) -> tuple[Any, list[tuple[str, int]]]:
    import pandas as pd

    frames = [pd.read_csv(path) for path in paths]
    data = pd.concat(frames, ignore_index=True)
    names = [os.path.basename(path) for path in paths]
    return data, [(name, len(frame)) for name, frame in zip(names, frames, strict=True)]


_MODEL: Any = None  # the forked processes' model, loaded by their parent


def _forked(args: tuple[list[str], Path, int | None]) -> int:
    paths, output, threads = args
    return _score(_MODEL, paths, output, threads)


def score_folder(
    model_dir: Path, input_dir: Path, output_dir: Path, processes: int, threads: int | None
) -> dict[str, Any]:
    """Score every ``*.csv`` file of ``input_dir`` into ``output_dir``; timings and rows."""
    global _MODEL
    import pickle

    import pandas  # noqa: F401  (imported before the clock starts, as every import)
    import pyarrow.csv  # noqa: F401
    import sklearn.pipeline  # noqa: F401
    import threadpoolctl  # noqa: F401

    output_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    # The pickled estimator itself, as MLmodel's scikit-learn flavor names it: what
    # mlflow.sklearn.load_model returns, without the seconds MLflow spends on its own imports
    # and checks.
    with open(model_dir / "model.pkl", "rb") as fh:
        _MODEL = pickle.load(fh)
    loaded = time.perf_counter()
    # Listed on the clock, as Sluiceway's timed job lists the same folder; with os.listdir and
    # plain strings, which cost a tenth of pathlib's objects per file.
    folder = str(input_dir)
    paths = [os.path.join(folder, n) for n in sorted(os.listdir(folder)) if n.endswith(".csv")]
    if processes == 1:
        rows = _score(_MODEL, paths, output_dir / "part-0.csv", threads)
    else:
        shares = [
            (paths[i::processes], output_dir / f"part-{i}.csv", threads) for i in range(processes)
        ]
        # Forked after the model is loaded: every process shares it, none loads it again.
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            rows = sum(pool.map(_forked, shares, chunksize=1))
    done = time.perf_counter()
    # The model's load is not timed: Sluiceway's timed job runs on warm workers, which loaded
    # it before, so the limit is timed from a loaded model too.
    return {"load_seconds": loaded - started, "seconds": done - loaded, "rows": rows}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("input_dir", type=Path)
    parser.add_argument("output_dir", type=Path)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument(
        "--threads", type=int, default=None, help="threads per process (default: the libraries')"
    )
    args = parser.parse_args(argv)
    # The libraries' own thread count unless one is asked for: nothing in the environment
    # chooses it for them.
    if args.threads is None:
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.pop(name, None)
    value = score_folder(
        args.model_dir, args.input_dir, args.output_dir, args.processes, args.threads
    )
    print(json.dumps(value), flush=True)


if __name__ == "__main__":
    main()
