"""Joining a ``parquet`` job's parts, one Parquet file per mini-batch, into one Parquet file.

Parquet files cannot be concatenated as bytes: each ends with a footer that describes its row
groups. The join reads every part's schema, unifies them (a column of integers in one part and
of floats in another becomes floats; a column that is all nulls in one part takes the others'
type; a column missing from a part is null there), then copies the parts' row groups, in input
order, into one file, a row group at a time, so the join needs the memory of one row group.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import IO, Any

PartOpener = Callable[[int], AbstractContextManager[IO[bytes]]]


class PartsDisagree(ValueError):
    """The parts' columns cannot be given one schema; the message names them."""


def join_parquet(
    indexes: Sequence[int],
    open_part: PartOpener,
    target: IO[bytes],
    *,
    between: Callable[[], None] = lambda: None,
) -> int:
    """Write the parts of mini-batches ``indexes`` into one Parquet file at ``target``.

    Args:
        indexes: the mini-batches whose parts are joined, in output order.
        open_part: opens a mini-batch's part for reading (an empty part holds no rows).
        target: the joined file, open for writing.
        between: called between parts (the job keeps its lease).

    Returns:
        The number of rows written.

    Raises:
        PartsDisagree: two parts have a column of types that do not combine.
        OSError, pyarrow.ArrowException: a part cannot be read.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    schemas: list[tuple[int, Any]] = []
    for index in indexes:
        with open_part(index) as file:
            if _is_empty(file):
                continue
            schemas.append((index, pq.read_schema(file)))
        between()
    schema = _unified(pa, [s for _, s in schemas]) if schemas else pa.schema([])
    rows = 0
    with pq.ParquetWriter(target, schema) as writer:
        for index, _ in schemas:
            with open_part(index) as file:
                for table in _row_groups(pq, file):
                    writer.write_table(_conformed(pa, table, schema, index))
                    rows += table.num_rows
            between()
    return rows


def _is_empty(file: IO[bytes]) -> bool:
    empty = file.read(1) == b""
    file.seek(0)
    return empty


def _row_groups(pq: Any, file: IO[bytes]) -> Iterator[Any]:
    parquet = pq.ParquetFile(file)
    for group in range(parquet.num_row_groups):
        yield parquet.read_row_group(group)


def _unified(pa: Any, schemas: list[Any]) -> Any:
    try:
        return pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowTypeError, pa.ArrowInvalid) as exc:
        described = "; ".join(
            f"{field.name}: {field.type}"
            for field in schemas[0]
            if any(
                field.name in other.names and other.field(field.name).type != field.type
                for other in schemas[1:]
            )
        )
        raise PartsDisagree(
            "The mini-batches' rows have columns whose types do not combine into one Parquet "
            f"schema ({described or exc}): run() must return a column's values with one type "
            "in every mini-batch."
        ) from None


def _conformed(pa: Any, table: Any, schema: Any, index: int) -> Any:
    """``table`` with ``schema``'s columns, in its order, of its types (missing ones null)."""
    if table.schema.equals(schema, check_metadata=False):
        return table
    columns = []
    for field in schema:
        if field.name in table.column_names:
            column = table.column(field.name)
            try:
                columns.append(column.cast(field.type))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise PartsDisagree(
                    f"Column {field.name!r} of mini-batch {index} ({column.type}) cannot be "
                    f"written as {field.type}, the type the other mini-batches give it: {exc}"
                ) from None
        else:
            columns.append(pa.nulls(table.num_rows, type=field.type))
    return pa.Table.from_arrays(columns, schema=schema)


__all__ = ["PartsDisagree", "join_parquet"]
