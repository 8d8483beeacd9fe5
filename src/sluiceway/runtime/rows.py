"""The lines an ``append_row`` mini-batch adds to the output file.

Azure writes every element of ``run()``'s result as one line, and a DataFrame as space-separated
rows without a header, so ``pd.read_csv(path, header=None, sep=" ")`` reads the joined file back.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, Protocol, TypeAlias


class Table(Protocol):
    """The part of a pandas DataFrame that writing rows needs."""

    def __len__(self) -> int: ...

    def to_csv(self, *, sep: str, header: bool, index: bool, lineterminator: str) -> str | None:
        """Render the table as delimited text."""


RunResult: TypeAlias = Sequence[object] | Table
"""A checked ``run()`` result: a list or tuple, or a DataFrame. Its length counts the items."""


def format_rows(result: RunResult) -> str:
    """Render a checked ``run()`` result as the text of one part file.

    Args:
        result: a list or tuple, whose elements become one line each, or a DataFrame, whose
            rows become space-separated lines without a header or index.

    Returns:
        The lines, each ending with ``"\\n"``; an empty string when there is nothing to write.
    """
    if isinstance(result, Sequence):
        return "".join(f"{format_element(element)}\n" for element in result)
    plain = plain_table_lines(result)
    if plain is not None:
        return plain
    return result.to_csv(sep=" ", header=False, index=False, lineterminator="\n") or ""


def plain_table_lines(table: object) -> str | None:
    """A DataFrame's rows as ``to_csv(sep=" ", header=False, index=False)`` writes them, by a
    faster path, when every column is of a kind whose text needs no quoting or formatting
    choices: integers, booleans, ``float64`` without missing values (both write the shortest
    text that reads back as the same number) and strings without spaces or quotes. None for any
    other table, which ``to_csv`` then writes.
    """
    pandas = sys.modules.get("pandas")
    if pandas is None or not isinstance(table, pandas.DataFrame) or table.shape[1] == 0:
        return None
    columns: list[list[Any]] = []
    for _, series in table.items():
        values = series.to_numpy()
        kind, size = values.dtype.kind, values.dtype.itemsize
        if kind == "f" and (size != 8 or bool(sys.modules["numpy"].isnan(values).any())):
            return None
        if kind == "O":
            plain = values.tolist()
            try:
                distinct = set(plain)
            except TypeError:  # lists, dicts: to_csv writes their repr, quoted
                return None
            if not all(type(v) is str and _is_plain(v) for v in distinct):
                return None
            columns.append(plain)
        elif kind in "iubf":
            columns.append(values.tolist())
        else:
            return None
    line = (" ".join(["{}"] * len(columns)) + "\n").format
    return "".join(map(line, *columns))


def _is_plain(text: str) -> bool:
    """Whether ``to_csv`` writes ``text`` as it is: not empty, no space, quote or line break."""
    return bool(text) and '"' not in text and not any(c.isspace() for c in text)


def format_element(element: object) -> str:
    """One element on one line: ``str(element)`` with any line break turned into a space."""
    return " ".join(str(element).splitlines())
