"""The lines an ``append_row`` mini-batch adds to the output file: Azure's text, and JSON Lines.

Azure writes every element of ``run()``'s result as one line, and a DataFrame as space-separated
rows without a header, so ``pd.read_csv(path, header=None, sep=" ")`` reads the joined file back.

The text is built a column or a whole result at a time (pyarrow compute kernels, ``str.join``,
regular expressions over the joined text), never with a Python statement per row: a mini-batch
of a fast model can return hundreds of thousands of rows, and per-row Python code would cost more
than the prediction.
"""

from __future__ import annotations

import json
import re
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

ENCODING = "utf-8"
ENCODING_ERRORS = "backslashreplace"  # a lone surrogate (an undecodable file name) stays visible

# What str.splitlines() splits on; "\r\n" counts as one break.
_BREAK_CHARS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_BREAK = re.compile(f"\r\n|[{_BREAK_CHARS}]")
_OTHER_BREAKS = _BREAK_CHARS.replace("\n", "")
# Characters that separate the elements while their own line breaks are replaced; one that
# occurs in no element is chosen (private-use characters, which text rarely holds).
_SEPARATORS = ("\ue000", "\uf8ff", "\U000f0000", "\U0010fffd")

# What str.isspace() is true for; to_csv quotes a field holding a space, and the other
# whitespace and the quote character are left to to_csv itself.
_SPACE_CHARS = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_NOT_PLAIN = "[" + "".join(f"\\x{{{ord(c):x}}}" for c in _SPACE_CHARS if c != " ") + '"]'
# Python writes a float in fixed notation between these; elsewhere in exponent notation.
_FIXED_LOW, _FIXED_HIGH = 1e-4, 1e16


def format_rows(result: RunResult) -> bytes:
    """Render a checked ``run()`` result as the bytes of one part file (UTF-8).

    Args:
        result: a list or tuple, whose elements become one line each (``str(element)``, with
            its line breaks turned into spaces), or a DataFrame, whose rows become
            space-separated lines without a header or index, as
            ``to_csv(sep=" ", header=False, index=False)`` writes them.

    Returns:
        The lines, each ending with ``"\\n"``; empty when there is nothing to write.
    """
    if isinstance(result, Sequence):
        numbers = number_lines(result)
        if numbers is not None:
            return numbers
        return element_lines(result).encode(ENCODING, ENCODING_ERRORS)
    fast = table_lines(result)
    if fast is not None:
        return fast
    text = result.to_csv(sep=" ", header=False, index=False, lineterminator="\n") or ""
    return text.encode(ENCODING, ENCODING_ERRORS)


def element_lines(elements: Sequence[object]) -> str:
    """Each element's ``str()`` on a line of its own: a line break inside one becomes a
    space, and one at its end is dropped (``" ".join(str(e).splitlines())``)."""
    if not elements:
        return ""
    lines = list(map(str, elements))
    text = "\n".join(lines)
    # One search per kind of break (memchr, or nothing for characters the text cannot hold).
    if text.count("\n") == len(lines) - 1 and not any(c in text for c in _OTHER_BREAKS):
        return text + "\n"  # no element holds a line break: the common case
    for separator in _SEPARATORS:
        if separator not in text:
            break
    else:  # every separator occurs in the elements: element by element
        return "".join(f"{' '.join(line.splitlines())}\n" for line in lines)
    joined = separator.join(lines) + separator
    joined = re.sub(f"(?:\r\n|[{_BREAK_CHARS}])(?={separator})", "", joined)
    return _BREAK.sub(" ", joined).replace(separator, "\n")


def number_lines(elements: Sequence[object]) -> bytes | None:
    """The lines of a list of Python or NumPy floats (without NaN) or of Python ints, written
    by pyarrow as ``str()`` writes them; None for any other list, or without pyarrow."""
    numpy = sys.modules.get("numpy")
    if numpy is None or not elements:
        return None
    kinds = set(map(type, elements))
    if kinds == {float} or kinds == {numpy.float64}:
        dtype = "float64"
    elif kinds == {int}:
        dtype = "int64"
    else:
        return None
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
    except ImportError:
        return None
    try:
        values = numpy.fromiter(elements, dtype=dtype, count=len(elements))
    except OverflowError:  # an int beyond 64 bits
        return None
    if dtype == "float64":
        text = _float_text(values, pa, pc)
        if text is None:
            return None
    else:
        text = pc.cast(pa.array(values), pa.large_string())
    scalar = _text_scalar(pa)
    return _string_bytes(pc.binary_join_element_wise(text, scalar("\n"), scalar("")))


def table_lines(table: Any) -> bytes | None:
    """A DataFrame's rows as ``to_csv(sep=" ", header=False, index=False)`` writes them,
    column by column with pyarrow, when every column is of a kind whose text is known:
    integers, booleans, ``float64`` without missing values, and strings without quotes or
    whitespace other than spaces. None for any other table (or without pyarrow), which
    ``to_csv`` then writes.
    """
    kit = _arrow_kit(table)
    if kit is None:
        return None
    if len(table) == 0:
        return b""
    pandas, pa, pc = kit
    columns = []
    for _, series in table.items():
        column = _column_text(series, pandas, pa, pc, json=False)
        if column is None:
            return None
        columns.append(column)
    text = _text_scalar(pa)
    columns[-1] = pc.binary_join_element_wise(columns[-1], text("\n"), text(""))
    return _string_bytes(pc.binary_join_element_wise(*columns, text(" ")))


def _column_text(series: Any, pandas: Any, pa: Any, pc: Any, *, json: bool) -> Any:
    """One column as an Arrow ``large_string`` array of its fields' text (``json``: of its
    JSON values), or None when the column is of another kind."""
    arrow = _arrow_strings(series, pandas, pa)
    if arrow is not None:
        return _json_strings(arrow, pa, pc) if json else _plain_strings(arrow, pa, pc)
    values = series.to_numpy()
    kind, size = values.dtype.kind, values.dtype.itemsize
    if kind in "iu":
        return pc.cast(pa.array(values), pa.large_string())
    if kind == "b":
        true, false = ("true", "false") if json else ("True", "False")
        return pc.if_else(pa.array(values), _text_scalar(pa)(true), _text_scalar(pa)(false))
    if kind == "f" and size == 8:
        if json and not bool(sys.modules["numpy"].isfinite(values).all()):
            return None  # JSON has no NaN or infinity
        return _float_text(values, pa, pc)
    if kind == "O" and pandas.api.types.infer_dtype(values, skipna=False) == "string":
        try:
            text = pa.array(values, type=pa.large_string())
        except (pa.ArrowException, UnicodeEncodeError):  # a lone surrogate
            return None
        return _json_strings(text, pa, pc) if json else _plain_strings(text, pa, pc)
    return None


def _arrow_strings(series: Any, pandas: Any, pa: Any) -> Any:
    """A string column that pandas keeps in Arrow (pandas 3's ``str``), as a ``large_string``
    array without copying its values to Python; None for any other column, or one with nulls."""
    dtype = series.dtype
    if not isinstance(dtype, pandas.StringDtype) or dtype.storage != "pyarrow":
        return None
    if series.hasnans:
        return None
    array = pa.array(series.array)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return array.cast(pa.large_string())


def _plain_strings(text: Any, pa: Any, pc: Any) -> Any:
    """Strings as to_csv writes them (those holding a space quoted), or None when one holds
    a quote or other whitespace, or is empty. The checks run on the distinct values: a column
    of file names holds few."""
    distinct = pc.unique(text)
    if pc.any(pc.match_substring_regex(distinct, _NOT_PLAIN)).as_py():
        return None
    if pc.any(pc.equal(pc.binary_length(distinct), 0)).as_py():
        return None  # to_csv writes an empty field as "" when it is alone on its line
    if pc.any(pc.match_substring(distinct, " ")).as_py():
        spaced = pc.match_substring(text, " ")
        quote, empty = _text_scalar(pa)('"'), _text_scalar(pa)("")
        quoted = pc.binary_join_element_wise(quote, text, quote, empty)
        text = pc.if_else(spaced, quoted, text)
    return text


def _float_text(values: Any, pa: Any, pc: Any) -> Any:
    """``repr()`` of each value (what to_csv writes), or None when one is missing.

    Arrow writes the same shortest digits as Python but chooses fixed or exponent notation
    differently and drops ``.0``: its text is kept inside Python's fixed-notation range, and
    given ``.0`` where it has no point, and ``repr()`` writes the values outside that range.
    """
    numpy = sys.modules["numpy"]
    if bool(numpy.isnan(values).any()):
        return None
    text = pc.cast(pa.array(values), pa.large_string())
    magnitude = numpy.abs(values)
    fixed = ((magnitude >= _FIXED_LOW) & (magnitude < _FIXED_HIGH)) | (values == 0)
    outside = pa.array(~fixed) if not fixed.all() else None
    exponent = pc.match_substring(text, "e")
    if pc.any(exponent).as_py():
        outside = exponent if outside is None else pc.or_(outside, exponent)
    if outside is not None and pc.any(outside).as_py():
        chosen = values[numpy.asarray(outside)]
        text = pc.replace_with_mask(
            text, outside, pa.array(list(map(repr, chosen.tolist())), type=pa.large_string())
        )
    # Arrow writes a whole number in the fixed range without ".0"; repr() wrote the others.
    pointless = fixed & (values == numpy.floor(values))
    if outside is not None:
        pointless &= ~numpy.asarray(outside)
    if pointless.any():
        point, empty = _text_scalar(pa)(".0"), _text_scalar(pa)("")
        text = pc.if_else(pointless, pc.binary_join_element_wise(text, point, empty), text)
    return text


def _text_scalar(pa: Any) -> Any:
    def scalar(value: str) -> Any:
        return pa.scalar(value, type=pa.large_string())

    return scalar


def _string_bytes(strings: Any) -> bytes:
    """The concatenated UTF-8 bytes of an Arrow string array without nulls."""
    _, offsets, data = strings.buffers()
    bounds = sys.modules["numpy"].frombuffer(offsets, dtype="int64")
    start, end = int(bounds[strings.offset]), int(bounds[strings.offset + len(strings)])
    return b"" if data is None else data.slice(start, end - start).to_pybytes()


def json_lines(table: Any) -> bytes | None:
    """A DataFrame's rows as JSON Lines: one compact object per row, the columns as keys in
    their order, built column by column with pyarrow, when every column holds integers,
    booleans, finite ``float64`` (written as ``repr()`` writes them, so they read back
    exactly) or strings without control characters, and no missing values. None for any other
    table (or without pyarrow).
    """
    kit = _arrow_kit(table)
    if kit is None:
        return None
    if len(table) == 0:
        return b""
    pandas, pa, pc = kit
    scalar = _text_scalar(pa)
    pieces = []
    for position, (name, series) in enumerate(table.items()):
        values = _column_text(series, pandas, pa, pc, json=True)
        if values is None:
            return None
        key = ("{" if position == 0 else ",") + json.dumps(str(name), ensure_ascii=False) + ":"
        try:
            pieces += [scalar(key), values]
        except (pa.ArrowException, UnicodeEncodeError):  # a lone surrogate in the name
            return None
    pieces.append(scalar("}\n"))
    return _string_bytes(pc.binary_join_element_wise(*pieces, scalar("")))


def _arrow_kit(table: object) -> tuple[Any, Any, Any] | None:
    """pandas, pyarrow and ``pyarrow.compute`` when ``table`` is a DataFrame with columns
    and pyarrow is installed, else None."""
    pandas = sys.modules.get("pandas")
    if pandas is None or not isinstance(table, pandas.DataFrame) or table.shape[1] == 0:
        return None
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
    except ImportError:
        return None
    return pandas, pa, pc


def _json_strings(text: Any, pa: Any, pc: Any) -> Any:
    """Strings as JSON strings: quoted, with backslashes and quotes escaped; None when one
    holds a control character (which needs a ``\\u`` escape)."""
    distinct = pc.unique(text)
    if pc.any(pc.match_substring_regex(distinct, "[\\x00-\\x1f]")).as_py():
        return None
    if pc.any(pc.match_substring(distinct, "\\")).as_py():
        text = pc.replace_substring(text, "\\", "\\\\")
    if pc.any(pc.match_substring(distinct, '"')).as_py():
        text = pc.replace_substring(text, '"', '\\"')
    quote, empty = _text_scalar(pa)('"'), _text_scalar(pa)("")
    return pc.binary_join_element_wise(quote, text, quote, empty)


def format_element(element: object) -> str:
    """One element on one line: ``str(element)`` with any line break turned into a space."""
    return " ".join(str(element).splitlines())
