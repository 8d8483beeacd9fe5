"""The built-in scorer for MLflow models deployed without a scoring script.

It follows Azure ML's no-code MLflow deployment and the scoring-script contract: ``init()``
loads the model under ``AZUREML_MODEL_DIR`` once per worker; ``run()`` reads each file of a
mini-batch into a DataFrame, calls ``predict()`` and returns one row per input row, with the
columns ``row`` (the row's index in its file), ``prediction`` and ``file_name``.

``predict()`` scores each row on its own, so what it is called on is chosen for speed and
memory: a big CSV file is read and scored in slices of :data:`ROWS_PER_PREDICT` rows, and the
small files of one mini-batch are scored together, up to that many rows at once, when the model
is a scikit-learn model (whose prediction for a row never depends on the other rows) and the
files have the same columns of the same types. Every call costs a scikit-learn pipeline some
milliseconds whatever its size, which would otherwise dominate a mini-batch of one-row files.
For the same reason a worker may score several waiting mini-batches of small CSV files in one
go (:func:`joint_bytes`, :func:`run_chunks_together`): their rows are read and predicted
together, and split back into each mini-batch's own rows, which are what scoring each alone
gives.
"""

from __future__ import annotations

import io
import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sluiceway.runtime.mlflow_model import (
    Model,
    SklearnModel,
    ignoring_mlflow_import_warnings,
    load_model,
)

MODEL_DIR_VARIABLE = "AZUREML_MODEL_DIR"
OUTPUT_COLUMNS = ("row", "prediction", "file_name")
CSV_EXTENSIONS = frozenset({"csv"})
PARQUET_EXTENSIONS = frozenset({"parquet", "pqt"})
ROWS_PER_PREDICT = 50_000
WHOLE_FILE_BYTES = 4 << 20  # a CSV file up to this size is read at once, a bigger one in slices
SMALL_FILE_BYTES = 64 << 10  # CSV files up to this size are read together (_read_together)

# The scoring-script contract: init() loads the model that later run() calls use.
_model: Model | None = None
# Small files joint_bytes() read, taken by the scoring call that follows it (which empties it).
_read_ahead: dict[str, bytes] = {}


def init() -> None:
    """Load the MLflow model under ``$AZUREML_MODEL_DIR``.

    Raises:
        RuntimeError: If ``AZUREML_MODEL_DIR`` is not set.
        FileNotFoundError, ValueError: See :func:`find_mlflow_model`.
    """
    global _model
    model_dir = os.environ.get(MODEL_DIR_VARIABLE)
    if not model_dir:
        raise RuntimeError(
            f"{MODEL_DIR_VARIABLE} is not set; it must name the deployment's model folder"
        )
    _model = load_mlflow_model(Path(model_dir))


def run(mini_batch: list[str]) -> pd.DataFrame:
    """Score each file of ``mini_batch`` and return the predictions of all of them, in order.

    ``.csv``, ``.parquet`` and ``.pqt`` files are read into DataFrames and passed to
    ``predict()`` (see the module's docstring for how rows are grouped into calls); a file
    without rows adds nothing.

    Raises:
        RuntimeError: If :func:`init` has not loaded a model.
        ValueError: If a file has another extension, or ``predict()`` does not return one
            prediction per row.
    """
    frames = list(run_chunks(mini_batch))
    if not frames:
        return pd.DataFrame({column: pd.Series(dtype=object) for column in OUTPUT_COLUMNS})
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def run_chunks(mini_batch: list[str], input_columns: bool = False) -> Iterator[pd.DataFrame]:
    """What :func:`run` returns, in pieces of at most :data:`ROWS_PER_PREDICT` rows, each
    given as soon as it is scored: the worker writes it out before scoring the next, so a
    mini-batch of big files never holds all its rows at once.

    Args:
        mini_batch: the files' local paths.
        input_columns: add each row's input columns after ``file_name`` (the deployment's
            ``settings.include_input_columns``).

    Raises:
        See :func:`run`; ValueError also when ``input_columns`` is asked and an input column
        is named like an output column.
    """
    for _, output in _scored(mini_batch, input_columns):
        yield output


def joint_bytes(mini_batch: list[str]) -> int | None:
    """The size of a mini-batch that can be scored together with others
    (:func:`run_chunks_together`): every file a small CSV file and the model one whose
    prediction for a row never depends on the other rows (a scikit-learn model); else None.

    The files are read now, which tells their size without a ``stat`` each: the scoring call
    that follows takes their bytes rather than reading them again.
    """
    if not isinstance(_model, SklearnModel):
        return None
    read = {}
    for path in mini_batch:
        data = _read_small_csv(path)
        if data is None:
            return None
        read[path] = data
    _read_ahead.update(read)
    return sum(len(data) for data in read.values())


def run_chunks_together(
    mini_batches: list[list[str]], input_columns: bool = False
) -> Iterator[tuple[int, pd.DataFrame]]:
    """What :func:`run_chunks` gives for each of ``mini_batches``, scored in one go: each
    piece with the position of the mini-batch its rows belong to, in order. The rows of each
    mini-batch are those of :func:`run_chunks` on it alone.

    Raises:
        ValueError: a file is in two of the mini-batches; or see :func:`run_chunks`.
    """
    owner: dict[str, int] = {}
    for position, files in enumerate(mini_batches):
        for path in files:
            if owner.setdefault(path, position) != position:
                raise ValueError(f"{path} is in two of the mini-batches scored together")
    flat = [path for files in mini_batches for path in files]
    for pieces, output in _scored(flat, input_columns):
        # Pieces come in input order, so each mini-batch's rows are one run of the output.
        start = 0
        for position, run in itertools.groupby(pieces, key=lambda piece: owner[piece.path]):
            rows = sum(piece.rows for piece in run)
            yield position, output.iloc[start : start + rows].reset_index(drop=True)
            start += rows


def _scored(paths: list[str], input_columns: bool) -> Iterator[tuple[list[_Piece], pd.DataFrame]]:
    """The output rows of ``paths``, each slice with the pieces of files it holds; small
    files :func:`joint_bytes` read are taken from what it read."""
    read = {path: data for path in paths if (data := _read_ahead.get(path)) is not None}
    _read_ahead.clear()  # nothing read ahead outlives the call that follows it
    if _model is None:
        raise RuntimeError("the MLflow scorer has no model: init() must run before run()")
    groups = _Groups(_model, together=isinstance(_model, SklearnModel), inputs=input_columns)
    # Read together, a whole number in a float column is a float: the input columns passed
    # through keep each file's own text only when read file by file.
    for pieces, data in _read_files(paths, together=not input_columns, read=read):
        # Nothing to score in an empty slice; predict() on zero rows fails for many models
        # (scikit-learn's do).
        if len(data):
            yield from groups.add(pieces, data)
    yield from groups.flush()


def find_mlflow_model(model_dir: Path) -> Path:
    """Find the folder holding the ``MLmodel`` file: ``model_dir`` or one of its subfolders.

    Registering a folder keeps its name, so a model's files often sit one level down
    (``<model_dir>/<folder>/MLmodel``).

    Raises:
        FileNotFoundError: If ``model_dir`` is not a folder or no ``MLmodel`` file is found.
        ValueError: If several subfolders hold one.
    """
    if not model_dir.is_dir():
        raise FileNotFoundError(f"model folder {model_dir} does not exist or is not a folder")
    if (model_dir / "MLmodel").is_file():
        return model_dir
    found = sorted(child for child in model_dir.iterdir() if (child / "MLmodel").is_file())
    if not found:
        raise FileNotFoundError(
            f"no MLflow model in {model_dir}: expected an MLmodel file in it or in one of its "
            "subfolders"
        )
    if len(found) > 1:
        names = ", ".join(child.name for child in found)
        raise ValueError(
            f"{len(found)} MLflow models in {model_dir} ({names}); the model folder must hold "
            "exactly one"
        )
    return found[0]


def load_mlflow_model(model_dir: Path) -> Model:
    """Load the model found by :func:`find_mlflow_model` under ``model_dir`` (see
    :func:`~sluiceway.runtime.mlflow_model.load_model`: a pickled scikit-learn model loads
    without importing MLflow)."""
    return load_model(find_mlflow_model(model_dir))


@dataclass(frozen=True)
class _Piece:
    path: str
    first: int  # the index, in its file, of the piece's first row
    rows: int


class _Groups:
    """Pieces of files waiting to be scored together, and the predictions of each group."""

    def __init__(self, model: Model, *, together: bool, inputs: bool = False) -> None:
        self._model = model
        self._together = together
        self._inputs = inputs
        self._waiting: list[tuple[list[_Piece], pd.DataFrame]] = []
        self._waiting_rows = 0

    def add(
        self, pieces: list[_Piece], data: pd.DataFrame
    ) -> Iterator[tuple[list[_Piece], pd.DataFrame]]:
        """Queue ``data``, the rows of ``pieces`` of files one after another; the output of the
        groups this completes."""
        if not self._together and len(pieces) > 1:  # each file is scored alone
            start = 0
            for piece in pieces:
                yield from self.add([piece], data.iloc[start : start + piece.rows])
                start += piece.rows
            return
        if self._waiting and not self._fits(data):
            yield from self.flush()
        self._waiting.append((pieces, data))
        self._waiting_rows += len(data)
        if not self._together:
            yield from self.flush()

    def flush(self) -> Iterator[tuple[list[_Piece], pd.DataFrame]]:
        """Score the waiting pieces together: the pieces, and the rows ``row prediction
        file_name`` of them."""
        if not self._waiting:
            return
        pieces = [piece for group, _ in self._waiting for piece in group]
        frames = [data for _, data in self._waiting]
        self._waiting = []
        self._waiting_rows = 0
        data = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
        paths = list(dict.fromkeys(piece.path for piece in pieces))
        where = f"'{paths[0]}'" if len(paths) == 1 else f"{len(paths)} files ('{paths[0]}' ...)"
        predictions = _one_per_row(self._model.predict(data), len(data), where)
        counts = np.fromiter((p.rows for p in pieces), dtype=np.int64, count=len(pieces))
        firsts = np.fromiter((p.first for p in pieces), dtype=np.int64, count=len(pieces))
        starts = np.cumsum(counts) - counts  # each piece's first row in ``data``
        names = np.array([p.path.rpartition("/")[2] for p in pieces], dtype=object)
        output = pd.DataFrame(
            {
                # A row's index in its file: its index in data, less its piece's start there,
                # plus the index in the file of the piece's first row.
                "row": np.arange(len(data)) - np.repeat(starts - firsts, counts),
                "prediction": predictions,
                "file_name": np.repeat(names, counts),
            }
        )
        yield pieces, (_with_inputs(output, data, where) if self._inputs else output)

    def _fits(self, data: pd.DataFrame) -> bool:
        """Whether ``data`` can be scored together with the pieces waiting."""
        if self._waiting_rows + len(data) > ROWS_PER_PREDICT:
            return False
        waiting = self._waiting[0][1]
        return bool(waiting.columns.equals(data.columns) and waiting.dtypes.equals(data.dtypes))


def _read_files(
    paths: list[str], *, together: bool = True, read: dict[str, bytes] | None = None
) -> Iterator[tuple[list[_Piece], pd.DataFrame]]:
    """The rows of the files, in slices of at most :data:`ROWS_PER_PREDICT` rows, each with
    the pieces of files it holds: small CSV files that follow one another are read together
    (:func:`_read_small_csv_files`) unless ``together`` is False, any other file on its own
    (:func:`_read_table`). ``read``: the bytes of small CSV files already read."""
    small: list[str] = []
    small_bytes = 0
    known = read or {}
    for path in paths:
        if not together:
            size = None
        elif path in known:
            size = len(known[path])
        else:
            size = _small_csv_size(path)
        if size is not None and small_bytes + size <= WHOLE_FILE_BYTES:
            small.append(path)
            small_bytes += size
            continue
        yield from _read_small_csv_files(small, known)
        small, small_bytes = [], 0
        if size is not None:
            small, small_bytes = [path], size
            continue
        first = 0
        for data in _read_table(path):
            yield [_Piece(path, first, len(data))], data
            first += len(data)
    yield from _read_small_csv_files(small, known)


def _is_csv(path: str) -> bool:
    name = path.rpartition("/")[2]
    return "." in name.lstrip(".") and name.rpartition(".")[2].lower() in CSV_EXTENSIONS


def _small_csv_size(path: str) -> int | None:
    """The size of a CSV file small enough to be read with others; None for any other."""
    if not _is_csv(path):
        return None
    try:
        size = os.path.getsize(path)
    except OSError:
        return None  # read alone, which reports the error
    return size if size <= SMALL_FILE_BYTES else None


def _read_small_csv_files(
    paths: list[str], read: dict[str, bytes]
) -> Iterator[tuple[list[_Piece], pd.DataFrame]]:
    """Small CSV files read with one ``read_csv`` call when that gives what reading each one
    alone gives (:func:`_read_together`), else one by one; in slices of at most
    :data:`ROWS_PER_PREDICT` rows. A call costs about a millisecond whatever the file's size,
    which would otherwise dominate a mini-batch of one-row files. ``read``: files' bytes
    already read."""
    together = _read_together(paths, read) if len(paths) > 1 else None
    if together is None:
        for path in paths:
            data = pd.read_csv(io.BytesIO(read[path]) if path in read else path)
            for start in range(0, max(len(data), 1), ROWS_PER_PREDICT):
                piece = data.iloc[start : start + ROWS_PER_PREDICT]
                yield [_Piece(path, start, len(piece))], piece
        return
    data, counts = together
    # Each slice's pieces: the parts of the files its rows come from.
    bounds = np.cumsum([0, *counts])
    for start in range(0, max(len(data), 1), ROWS_PER_PREDICT):
        stop = min(start + ROWS_PER_PREDICT, len(data))
        pieces = []
        for path, begin, end in zip(paths, bounds[:-1], bounds[1:], strict=True):
            low, high = max(begin, start), min(end, stop)
            if low < high:
                pieces.append(_Piece(path, int(low - begin), int(high - low)))
        yield pieces, data.iloc[start:stop]


def _read_together(
    paths: list[str], read: dict[str, bytes] | None = None
) -> tuple[pd.DataFrame, list[int]] | None:
    """The files' rows one after another, parsed in one call, and each file's row count; or
    None where that could differ from parsing each file alone.

    The first file is parsed alone; the others' lines (after the same header line) are parsed
    together, with its column types. This is only done when no file holds a quote (so a line
    is a row and each file's row count is its count of lines) or a blank line, when the rows
    parse with the first file's types (a text in a numeric column does not) and when no text
    column holds a number or a missing value, which a file parsed alone could have read as a
    numeric column. A whole number in a float column is the same number either way.
    """
    known = read or {}
    contents = [known[path] if path in known else _read_bytes(path) for path in paths]
    header, newline, _ = contents[0].partition(b"\n")
    if not newline:
        return None
    bodies: list[bytes] = []
    for data in contents:
        line, newline, body = data.partition(b"\n")
        if line != header or b'"' in data or b"\n\n" in body or body.startswith((b"\n", b"\r\n")):
            return None
        bodies.append(body if not body or body.endswith(b"\n") else body + b"\n")
    first = pd.read_csv(io.BytesIO(contents[0]))
    counts = [body.count(b"\n") for body in bodies[1:]]
    try:
        rest = pd.read_csv(
            io.BytesIO(header + b"\n" + b"".join(bodies[1:])), dtype=dict(first.dtypes)
        )
    except (ValueError, TypeError):
        return None  # a value that the first file's types cannot hold
    if len(first) != bodies[0].count(b"\n") or len(rest) != sum(counts):
        return None
    if list(rest.columns) != list(first.columns):
        return None
    for column, kind in rest.dtypes.items():
        if pd.api.types.is_object_dtype(kind) or pd.api.types.is_string_dtype(kind):
            values = rest[column]
            if values.isna().any() or pd.to_numeric(values, errors="coerce").notna().any():
                return None
    both = pd.concat([first, rest], ignore_index=True) if len(first) else rest
    return both, [len(first), *counts]


def _read_small_csv(path: str) -> bytes | None:
    """A small CSV file's bytes (read once, without a ``stat``); None for any other file, or
    one that cannot be read (read again alone, which reports the error)."""
    if not _is_csv(path):
        return None
    try:
        data = _read_bytes(path, whole=False)
    except OSError:
        return None
    return data if len(data) <= SMALL_FILE_BYTES else None


def _read_bytes(path: str, *, whole: bool = True) -> bytes:
    """A small file's bytes, with the fewest system calls (no buffered file object): a read
    of a regular file that returns less than it asked for has reached the end. Without
    ``whole``, one read: enough to tell a file is over :data:`SMALL_FILE_BYTES`."""
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = [os.read(fd, SMALL_FILE_BYTES + 1)]
        while whole and len(chunks[-1]) == SMALL_FILE_BYTES + 1:  # bigger than it looked
            chunks.append(os.read(fd, SMALL_FILE_BYTES + 1))
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)
    finally:
        os.close(fd)


def _with_inputs(output: pd.DataFrame, data: pd.DataFrame, where: str) -> pd.DataFrame:
    """The output's columns, then the input's."""
    taken = [str(c) for c in data.columns if str(c) in OUTPUT_COLUMNS]
    if taken:
        raise ValueError(
            f"The input columns {', '.join(taken)} of {where} have the names of output columns "
            f"({', '.join(OUTPUT_COLUMNS)}); settings.include_input_columns cannot add them. "
            "Rename them in the input, or turn include_input_columns off."
        )
    return pd.concat([output, data.reset_index(drop=True)], axis=1)


def _read_table(path: str) -> Iterator[pd.DataFrame]:
    """The file's rows, a CSV file in slices of :data:`ROWS_PER_PREDICT`, so that scoring a big
    file needs the memory of one slice (``predict()`` scores each row on its own); a small
    CSV file is read at once, then sliced."""
    extension = Path(path).suffix.removeprefix(".")
    if extension.lower() in CSV_EXTENSIONS:
        if os.path.getsize(path) <= WHOLE_FILE_BYTES:
            # One read is cheaper than a chunked reader's; predict() still gets slices.
            data = pd.read_csv(path)
            for start in range(0, max(len(data), 1), ROWS_PER_PREDICT):
                yield data.iloc[start : start + ROWS_PER_PREDICT]
            return
        with pd.read_csv(path, chunksize=ROWS_PER_PREDICT) as reader:
            yield from reader
        return
    if extension.lower() in PARQUET_EXTENSIONS:
        yield pd.read_parquet(path)
        return
    # Azure's message, word for word, so logs and error counts read the same.
    raise ValueError(
        f"Error processing input file: '{path}'. File type '{extension}' is not supported"
    )


def _one_per_row(predictions: Any, n_rows: int, where: str) -> Any:
    """Flatten what ``predict()`` returned to one value per row.

    A single column (1-D array, Series, one-column DataFrame or ``(n, 1)`` array) gives its
    values; several columns give each row's values as a list.
    """
    if isinstance(predictions, pd.DataFrame):
        if predictions.shape[1] == 1:
            values: Any = predictions.iloc[:, 0].to_numpy()
        else:
            values = predictions.to_numpy().tolist()
    elif isinstance(predictions, pd.Series):
        values = predictions.to_numpy()
    else:
        array = np.asarray(predictions)
        if array.ndim == 0:
            values = [array.item()]
        elif array.ndim == 1:
            values = array
        elif array.shape[1:] == (1,):
            values = array.reshape(len(array))
        else:
            values = array.tolist()
    if len(values) != n_rows:
        raise ValueError(
            f"predict() returned {len(values)} predictions for the {n_rows} rows of {where}; "
            "it must return one per row"
        )
    return values


__all__ = [
    "MODEL_DIR_VARIABLE",
    "OUTPUT_COLUMNS",
    "find_mlflow_model",
    "ignoring_mlflow_import_warnings",
    "init",
    "joint_bytes",
    "load_mlflow_model",
    "run",
    "run_chunks",
    "run_chunks_together",
]
