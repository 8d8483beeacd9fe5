"""The cost of turning a mini-batch's result into the bytes of its part, per output format.

``python -m benchmarks.output_rows [--rows N] [--repeat R]`` builds results shaped like the
built-in MLflow scorer's (``row``, ``prediction``, ``file_name``; integer and float
predictions) and like scoring scripts' lists, and times, in this one process, the best of R
runs of:

- the per-row formatting that ``append_row``'s text used before it was vectorised (a Python
  f-string per list element; per DataFrame row, ``str.format`` over the columns' Python
  values, or ``to_csv``), kept here as the baseline;
- today's text (:func:`sluiceway.runtime.rows.format_rows`), which must give the same bytes;
- the JSON Lines and Parquet parts (:func:`sluiceway.runtime.output_formats.row_writer`).

It prints a Markdown table of milliseconds and of each one's ratio to the baseline.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from sluiceway.runtime.output_formats import OutputFormat, row_writer
from sluiceway.runtime.rows import format_rows


def per_row_text(result: Any) -> bytes:
    """The text as it was built before: a Python statement per row."""
    if isinstance(result, list):
        text = "".join(f"{' '.join(str(e).splitlines())}\n" for e in result)
    else:
        columns = [result[c].to_numpy().tolist() for c in result.columns]
        line = (" ".join(["{}"] * len(columns)) + "\n").format
        text = "".join(map(line, *columns))
    return text.encode("utf-8", "backslashreplace")


def part(output_format: OutputFormat, result: Any) -> bytes:
    sink = io.BytesIO()
    writer = row_writer(output_format, sink)
    writer.add(result)
    writer.close()
    return sink.getvalue()


def results(rows: int) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    names = np.repeat(
        np.array([f"file-{i:05d}.csv" for i in range(100)], dtype=object), rows // 100
    )
    frame = pd.DataFrame({"row": np.arange(len(names)) % (rows // 100), "file_name": names})
    return {
        "DataFrame, integer predictions": pd.DataFrame(
            {"row": frame["row"], "prediction": rng.integers(0, 2, len(names)), "file_name": names}
        ),
        "DataFrame, float predictions": pd.DataFrame(
            {"row": frame["row"], "prediction": rng.random(len(names)), "file_name": names}
        ),
        "list of strings": [
            f"{n} {p}" for n, p in zip(names, rng.integers(0, 2, len(names)), strict=True)
        ],
        "list of floats": rng.random(len(names)).tolist(),
    }


def best(function: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    print(
        f"{args.rows} rows, best of {args.repeat}; Python {platform.python_version()}, "
        f"pandas {pd.__version__}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}\n"
    )
    print(
        "| result | per-row text (baseline) | text | ratio | JSON Lines | ratio | Parquet | ratio |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for label, result in results(args.rows).items():
        if format_rows(result) != per_row_text(result):
            print(f"{label}: the text differs from the per-row text", file=sys.stderr)
            return 1
        base = best(lambda r=result: per_row_text(r), args.repeat)
        cells = [f"{base * 1000:.0f} ms"]
        for function in (
            lambda r=result: format_rows(r),
            lambda r=result: part(OutputFormat.JSONL, r),
            lambda r=result: part(OutputFormat.PARQUET, r),
        ):
            seconds = best(function, args.repeat)
            cells += [f"{seconds * 1000:.0f} ms", f"{seconds / base:.2f}"]
        print(f"| {label} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
