"""Loading a scorer inside a worker, and the contract of what its ``run()`` returns.

A scorer is either the deployment's scoring script or the built-in MLflow scorer; both expose
``init()``, called once per worker, and ``run(mini_batch)``, called once per mini-batch with the
local paths of its files. The built-in MLflow scorer also gives its result in pieces
(``run_chunks``), which are written to the part file as they come, so a mini-batch of big files
never holds all of its rows, as objects and as text, at once; and it can score several small
mini-batches in one go (``run_chunks_together``), each getting the rows it would alone.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Protocol, cast

from sluiceway.executors.base import ScorerKind, WorkerSpec
from sluiceway.runtime.output_formats import RowWriter
from sluiceway.runtime.rows import RunResult, Table

MLFLOW_SCORER_MODULE = "sluiceway.runtime.mlflow_scorer"
ROWS_PER_WRITE = 100_000  # rows of a big result converted at a time

_WRONG_RESULT_TYPE = (
    "The run() method in the entry script should return a list or a pandas DataFrame. "
    "The length of returned result is considered as succeeded number of items. "
    "For --output_action=append_row, the returned result is what to write into the result file. "
    "The actual type of output is {type_name}."
)


@dataclass(frozen=True)
class Scorer:
    """A loaded scorer whose ``init()`` has run.

    ``chunks``, when set, gives the result of ``run()`` in pieces (the built-in MLflow
    scorer's ``run_chunks``, whose second argument asks for the input's columns too): it is
    called instead of ``run``. ``together``, when set, scores several mini-batches in one go
    (``run_chunks_together``), and ``joint_bytes`` says which mini-batches it takes.
    """

    module: ModuleType
    run: Callable[[list[str]], object]
    chunks: Callable[[list[str], bool], Iterable[Table]] | None = None
    together: Callable[[list[list[str]], bool], Iterable[tuple[int, Table]]] | None = None
    joint_bytes: Callable[[list[str]], int | None] | None = None

    def joinable(self, files: Sequence[str]) -> int | None:
        """The size of a mini-batch that :meth:`score_together` can take with others, or
        None."""
        if self.together is None or self.joint_bytes is None:
            return None
        return self.joint_bytes(list(files))

    def score_together(
        self,
        mini_batches: Sequence[Sequence[str]],
        rows: Sequence[RowWriter] | None = None,
        *,
        input_columns: bool = False,
    ) -> list[int]:
        """Score mini-batches that :meth:`joinable` took, in one go.

        Args:
            mini_batches: each mini-batch's files.
            rows: where each mini-batch's rows go (one writer per mini-batch); None to only
                count items.
            input_columns: as for :meth:`score`.

        Returns:
            Each mini-batch's number of succeeded items.

        Raises:
            ValueError: this scorer cannot score mini-batches together.
            Exception: whatever scoring raised; the writers then hold partial rows.
        """
        if self.together is None:
            raise ValueError("this scorer scores one mini-batch at a time")
        items = [0] * len(mini_batches)
        for position, chunk in self.together([list(f) for f in mini_batches], input_columns):
            items[position] += len(chunk)
            if rows is not None:
                rows[position].add(chunk)
        return items

    def score(
        self, files: Sequence[str], rows: RowWriter | None = None, *, input_columns: bool = False
    ) -> int:
        """Score one mini-batch and check what ``run()`` returned.

        Args:
            files: the local paths of the mini-batch's files, in input order.
            rows: where the result's ``append_row`` rows go; None to only count items.
            input_columns: add the input's columns to each row (the built-in MLflow scorer).

        Returns:
            The number of succeeded items (the result's length).

        Raises:
            TypeError: ``run()`` returned something that is not a list or a DataFrame.
            ValueError: ``input_columns`` was asked of a scoring script.
            Exception: whatever ``run()`` raised.
        """
        if self.chunks is not None:
            items = 0
            for chunk in self.chunks(list(files), input_columns):
                items += len(chunk)
                if rows is not None:
                    rows.add(chunk)
            return items
        if input_columns:
            raise ValueError(
                "settings.include_input_columns applies to MLflow deployments without a "
                "scoring script; a scoring script's run() returns the columns it wants"
            )
        result = check_run_result(self.run(list(files)))
        if rows is not None:
            for piece in _pieces(result):
                rows.add(piece)
        return len(result)


def _pieces(result: RunResult) -> Iterator[RunResult]:
    """The result in slices of :data:`ROWS_PER_WRITE`, whose lines joined are the lines of the
    whole result."""
    if len(result) <= ROWS_PER_WRITE:
        yield result
        return
    if isinstance(result, Sequence):
        for start in range(0, len(result), ROWS_PER_WRITE):
            yield result[start : start + ROWS_PER_WRITE]
        return
    slicer = cast(_Sliceable, result).iloc
    for start in range(0, len(result), ROWS_PER_WRITE):
        yield slicer[start : start + ROWS_PER_WRITE]


class _Sliceable(Protocol):
    @property
    def iloc(self) -> _RowSlicer: ...


class _RowSlicer(Protocol):
    def __getitem__(self, rows: slice) -> Table: ...


def load_scorer(spec: WorkerSpec) -> Scorer:
    """Import the job's scorer and call its ``init()`` once.

    Args:
        spec: the job's worker spec; it names the scorer kind and, for a scoring script,
            the code folder and the script's path inside it.

    Returns:
        The scorer, ready to ``run()``.

    Raises:
        FileNotFoundError: the scoring script does not exist.
        ValueError: a scoring script was asked for without a code folder or script path.
        AttributeError: the module has no callable ``init`` or ``run``.
        Exception: whatever importing the module or its ``init()`` raised.
    """
    if spec.scorer is ScorerKind.MLFLOW:
        scorer = builtin_mlflow_scorer()
        _entry_point(scorer.module, "init")()
        return scorer
    module = _import_script(spec.code_dir, spec.scoring_script)
    init = _entry_point(module, "init")
    run = _entry_point(module, "run")
    init()
    return Scorer(module=module, run=run)


def builtin_mlflow_scorer() -> Scorer:
    """The built-in MLflow scorer, before its ``init()``."""
    module = importlib.import_module(MLFLOW_SCORER_MODULE)
    return Scorer(
        module=module,
        run=_entry_point(module, "run"),
        chunks=cast(
            Callable[[list[str], bool], Iterable[Table]], _entry_point(module, "run_chunks")
        ),
        together=cast(
            Callable[[list[list[str]], bool], Iterable[tuple[int, Table]]],
            _entry_point(module, "run_chunks_together"),
        ),
        joint_bytes=cast(Callable[[list[str]], int | None], _entry_point(module, "joint_bytes")),
    )


def check_run_result(value: object) -> RunResult:
    """Hold ``run()``'s return value to the Azure contract.

    Args:
        value: what ``run()`` returned.

    Returns:
        A DataFrame, list or tuple, whose ``len()`` is the number of succeeded items. A numpy
        array becomes a list of its rows; an iterator or generator is run to its end.

    Raises:
        TypeError: with Azure's message naming the actual type, for anything else.
    """
    if isinstance(value, list | tuple):
        return value
    if _is_instance_of(value, "pandas", "DataFrame"):
        return cast(Table, value)
    if _is_instance_of(value, "numpy", "ndarray"):
        return list(cast(Iterable[object], value))
    if isinstance(value, Iterator):
        return list(value)
    raise TypeError(_WRONG_RESULT_TYPE.format(type_name=type(value).__name__))


def _import_script(code_dir: str | None, scoring_script: str | None) -> ModuleType:
    if not code_dir or not scoring_script:
        raise ValueError(
            "A scoring-script deployment needs both code_configuration.code and "
            f"code_configuration.scoring_script; got code={code_dir!r}, "
            f"scoring_script={scoring_script!r}"
        )
    code = Path(code_dir).resolve()
    path = code / scoring_script
    if not path.is_file():
        raise FileNotFoundError(
            f"The scoring script {scoring_script!r} does not exist in the code folder {code}"
        )
    # The code folder goes first so the script's sibling modules win over installed ones;
    # a script in a subfolder can import its own neighbours too, as `python sub/score.py` would.
    for folder in (str(path.parent), str(code)):
        if folder not in sys.path:
            sys.path.insert(0, folder)
    # Registered under its own name, as a plain import would be, so classes defined in the
    # script pickle and dataclasses resolve their module; a private name if that one is taken.
    name = path.stem if path.stem not in sys.modules else f"_sluiceway_entry_{path.stem}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise ValueError(f"The scoring script {str(path)!r} cannot be imported as a module")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _entry_point(module: ModuleType, name: str) -> Callable[..., object]:
    function = getattr(module, name, None)
    if not callable(function):
        where = getattr(module, "__file__", None) or module.__name__
        raise AttributeError(
            f"The entry script {where} must define a function {name}(); "
            "a scoring script defines init() and run(mini_batch)"
        )
    return function  # type: ignore[no-any-return]


def _is_instance_of(value: object, module_name: str, class_name: str) -> bool:
    # The class can only exist if the script imported its module; checking sys.modules keeps
    # pandas and numpy out of workers whose scripts do not use them.
    module = sys.modules.get(module_name)
    cls = getattr(module, class_name, None) if module is not None else None
    return isinstance(cls, type) and isinstance(value, cls)
