"""The formats an ``append_row`` job writes its rows in, and a mini-batch's part in each.

- ``text`` (the default): Azure's format, space-separated lines without a header
  (:mod:`sluiceway.runtime.rows`); the job's parts are joined by concatenation.
- ``jsonl``: one JSON object per row, the result's columns as keys; joined by concatenation.
  Columns of numbers, booleans and strings are written by pyarrow (floats as ``repr()`` writes
  them); a result with nested or missing values by pandas' ``to_json`` (floats with 15
  significant digits).
- ``parquet``: a part is a Parquet file of the mini-batch's rows; the job's commit joins them
  into one Parquet file (:mod:`sluiceway.scheduler.parquet_join`).

A DataFrame result keeps its columns (the built-in MLflow scorer's are ``row``, ``prediction``
and ``file_name``, and with ``include_input_columns`` the input's columns after them); a list
result becomes one column, ``result``. Rows are converted a column at a time by pandas and
pyarrow, never by a Python statement per row.
"""

from __future__ import annotations

import io
from enum import StrEnum
from typing import Any, Protocol, cast

from sluiceway.runtime.rows import ENCODING, ENCODING_ERRORS, RunResult, format_rows, json_lines

LIST_COLUMN = "result"


class OutputFormat(StrEnum):
    """``settings.output_format`` of a model deployment."""

    TEXT = "text"
    PARQUET = "parquet"
    JSONL = "jsonl"

    @property
    def default_file_name(self) -> str:
        """The rows file's name when ``output_file_name`` is not given."""
        return _DEFAULT_FILE_NAMES[self]

    @property
    def joined_by_concatenation(self) -> bool:
        """Whether the job's output is its parts' bytes one after the other."""
        return self is not OutputFormat.PARQUET


_DEFAULT_FILE_NAMES = {
    OutputFormat.TEXT: "predictions.csv",
    OutputFormat.PARQUET: "predictions.parquet",
    OutputFormat.JSONL: "predictions.jsonl",
}


class ByteSink(Protocol):
    """Where a part's bytes go: a part file, or a buffer sent to the server."""

    def write(self, data: bytes, /) -> object:
        """Append bytes; what it returns is ignored."""


class RowWriter(Protocol):
    """A mini-batch's rows in one format: ``add`` each piece of the result, then ``close``."""

    def add(self, result: RunResult) -> None:
        """Append a checked ``run()`` result (or a piece of one)."""

    def close(self) -> None:
        """Finish the part (a Parquet file writes its rows and footer here)."""


class OutputFormatError(ValueError):
    """A result that the deployment's output format cannot hold; the message says why."""


def row_writer(output_format: OutputFormat, sink: ByteSink) -> RowWriter:
    """The writer of one mini-batch's part in ``output_format``, into ``sink``."""
    if output_format is OutputFormat.PARQUET:
        return _ParquetRows(sink)
    if output_format is OutputFormat.JSONL:
        return _JsonLines(sink)
    return _TextRows(sink)


class _TextRows:
    def __init__(self, sink: ByteSink) -> None:
        self._sink = sink

    def add(self, result: RunResult) -> None:
        data = format_rows(result)
        if data:
            self._sink.write(data)

    def close(self) -> None:
        pass


class _JsonLines:
    def __init__(self, sink: ByteSink) -> None:
        self._sink = sink

    def add(self, result: RunResult) -> None:
        frame = as_frame(result, "jsonl")
        if len(frame) == 0:
            return
        fast = json_lines(frame)
        if fast is not None:
            self._sink.write(fast)
            return
        # Nested values, missing values, control characters: pandas' JSON writer (C code),
        # which writes floats with 15 significant digits.
        text = frame.to_json(
            orient="records",
            lines=True,
            force_ascii=False,
            date_format="iso",
            double_precision=15,
            default_handler=str,
        )
        data = text.encode(ENCODING, ENCODING_ERRORS)
        self._sink.write(data if data.endswith(b"\n") else data + b"\n")

    def close(self) -> None:
        pass


class _ParquetRows:
    """The pieces are kept as Arrow tables and written as one Parquet file when the mini-batch
    ends, so pieces whose column types differ (a column of integers in one file, of floats in
    the next) are promoted to one schema."""

    def __init__(self, sink: ByteSink) -> None:
        self._sink = sink
        self._tables: list[Any] = []

    def add(self, result: RunResult) -> None:
        pa = _pyarrow("parquet")
        frame = as_frame(result, "parquet")
        try:
            self._tables.append(pa.Table.from_pandas(frame, preserve_index=False))
        except (pa.ArrowException, ValueError, TypeError) as exc:
            raise OutputFormatError(
                f"run()'s result cannot be written as Parquet (settings.output_format parquet): "
                f"{exc}. Return values of one type per column, or use output_format jsonl or text."
            ) from None

    def close(self) -> None:
        if not self._tables:
            return
        pa = _pyarrow("parquet")
        import pyarrow.parquet as pq

        try:
            table = pa.concat_tables(self._tables, promote_options="permissive")
        except pa.ArrowException as exc:
            raise OutputFormatError(
                "The pieces of run()'s result have columns of types that do not combine into "
                f"one Parquet schema: {exc}"
            ) from None
        self._tables = []
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        self._sink.write(buffer.getvalue())


def as_frame(result: RunResult, what: str) -> Any:
    """``result`` as a DataFrame with a default index and string column names: a list
    becomes the one column :data:`LIST_COLUMN`."""
    try:
        import pandas
    except ImportError:
        raise OutputFormatError(
            f"settings.output_format {what} needs pandas in the deployment's environment"
        ) from None
    if isinstance(result, pandas.DataFrame):
        frame = result
    else:
        column = pandas.Series(list(cast(list[object], result)), dtype=object)
        frame = pandas.DataFrame({LIST_COLUMN: column.infer_objects()})
    names = [str(name) for name in frame.columns]
    if len(set(names)) != len(names):
        raise OutputFormatError(
            f"run()'s result has several columns named alike ({', '.join(names)}); "
            f"settings.output_format {what} needs distinct column names"
        )
    if names != list(frame.columns) or not isinstance(frame.index, pandas.RangeIndex):
        frame = frame.set_axis(names, axis=1).reset_index(drop=True)
    return frame


def _pyarrow(what: str) -> Any:
    try:
        import pyarrow
    except ImportError:
        raise OutputFormatError(
            f"settings.output_format {what} needs pyarrow in the deployment's environment"
        ) from None
    return pyarrow


__all__ = ["LIST_COLUMN", "OutputFormat", "OutputFormatError", "RowWriter", "row_writer"]
