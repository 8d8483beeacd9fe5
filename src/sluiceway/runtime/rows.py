"""The lines an ``append_row`` mini-batch adds to the output file.

Azure writes every element of ``run()``'s result as one line, and a DataFrame as space-separated
rows without a header, so ``pd.read_csv(path, header=None, sep=" ")`` reads the joined file back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeAlias


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
    return result.to_csv(sep=" ", header=False, index=False, lineterminator="\n") or ""


def format_element(element: object) -> str:
    """One element on one line: ``str(element)`` with any line break turned into a space."""
    return " ".join(str(element).splitlines())
