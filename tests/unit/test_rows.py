"""What ``run()`` may return, and the ``append_row`` lines a mini-batch's result becomes."""

from __future__ import annotations

import io

import pytest

from sluiceway.runtime.rows import format_element, format_rows
from sluiceway.runtime.scoring import check_run_result

WRONG_TYPE = (
    "The run() method in the entry script should return a list or a pandas DataFrame. "
    "The length of returned result is considered as succeeded number of items. "
    "For --output_action=append_row, the returned result is what to write into the result file. "
    "The actual type of output is {}."
)


def test_each_element_of_a_list_is_one_line() -> None:
    assert format_rows(["a.csv 1", 2, 3.5, None, ("x", 1)]) == b"a.csv 1\n2\n3.5\nNone\n('x', 1)\n"


def test_a_tuple_is_written_like_a_list() -> None:
    assert format_rows(("one", "two")) == b"one\ntwo\n"


def test_nothing_to_write_is_an_empty_part() -> None:
    assert format_rows([]) == b""


@pytest.mark.parametrize(
    ("element", "line"),
    [
        ("plain", "plain"),
        ("two\nlines", "two lines"),
        ("windows\r\nline", "windows line"),
        ("trailing\n", "trailing"),
        ("", ""),
        (42, "42"),
    ],
)
def test_an_element_never_spans_lines(element: object, line: str) -> None:
    assert format_element(element) == line
    assert format_rows([element]) == f"{line}\n".encode()


def test_a_dataframe_becomes_space_separated_rows_without_header_or_index() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(
        {"row": [0, 1], "prediction": [1, 0], "file_name": ["a.csv", "my file.csv"]},
        index=[10, 11],
    )

    text = format_rows(frame)

    assert text == b'0 1 a.csv\n1 0 "my file.csv"\n'
    back = pd.read_csv(io.BytesIO(text), header=None, sep=" ", names=list(frame.columns))
    pd.testing.assert_frame_equal(back, frame.reset_index(drop=True), check_dtype=False)


def test_an_empty_dataframe_writes_nothing() -> None:
    pd = pytest.importorskip("pandas")
    assert format_rows(pd.DataFrame({"prediction": []})) == b""


@pytest.mark.parametrize("value", [["a", "b"], ("a", "b")])
def test_lists_and_tuples_are_accepted_as_they_are(value: object) -> None:
    assert check_run_result(value) is value


def test_a_dataframe_is_accepted_and_counts_its_rows() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"x": [1, 2, 3]})
    assert check_run_result(frame) is frame
    assert len(check_run_result(frame)) == 3


def test_a_generator_is_run_to_its_end() -> None:
    assert check_run_result(True for _ in range(3)) == [True, True, True]


def test_a_numpy_array_becomes_its_rows() -> None:
    np = pytest.importorskip("numpy")
    result = check_run_result(np.array([0.25, 1.0]))
    assert format_rows(result) == b"0.25\n1.0\n"
    assert len(check_run_result(np.zeros((4, 2)))) == 4


@pytest.mark.parametrize(
    ("value", "type_name"),
    [(None, "NoneType"), (42, "int"), ("text", "str"), ({"a": 1}, "dict")],
)
def test_anything_else_gets_azures_message(value: object, type_name: str) -> None:
    with pytest.raises(TypeError) as raised:
        check_run_result(value)
    assert str(raised.value) == WRONG_TYPE.format(type_name)


# -- the vectorised text against the per-row formatting it replaced --------------------------


def _reference_rows(result: object) -> bytes:
    """The per-row formatting ``format_rows`` replaced: its output must stay byte for byte."""
    if isinstance(result, list | tuple):
        text = "".join(f"{' '.join(str(e).splitlines())}\n" for e in result)
    else:
        text = result.to_csv(sep=" ", header=False, index=False, lineterminator="\n") or ""  # type: ignore[attr-defined]
    return text.encode("utf-8", "backslashreplace")


_BREAKS = ["\n", "\r", "\r\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]


def test_list_elements_with_every_kind_of_line_break_match_the_per_row_text() -> None:
    import random

    rng = random.Random(7)
    pieces = ["a", "b c", "", " ", "é", "\ud800", '"q"', "\t", *_BREAKS]
    for _ in range(300):
        elements: list[object] = [
            "".join(rng.choice(pieces) for _ in range(rng.randint(0, 6)))
            for _ in range(rng.randint(0, 8))
        ]
        assert format_rows(elements) == _reference_rows(elements), elements
    mixed = [None, 1, 2.5, float("nan"), ("x\ny", 1), {"k": "v\r\n"}, b"raw", True, "\ue000"]
    assert format_rows(mixed) == _reference_rows(mixed)


def test_numpy_and_series_results_match_the_per_row_text() -> None:
    np = pytest.importorskip("numpy")
    pd = pytest.importorskip("pandas")
    values = np.array([0.1, 1e-05, 1e16, 2.0, np.nan, -0.0])
    for result in (
        check_run_result(values),
        check_run_result(np.arange(6).reshape(3, 2)),
        check_run_result(iter(pd.Series(["a b", "c\nd", None]))),
        list(pd.Series([1, 2, 3])),
    ):
        assert format_rows(result) == _reference_rows(result)


def test_lists_of_numbers_match_the_per_row_text() -> None:
    np = pytest.importorskip("numpy")
    pytest.importorskip("pyarrow")
    from sluiceway.runtime.rows import number_lines

    floats = _floats(np, np.random.default_rng(1))
    for result in (
        floats.tolist(),  # type: ignore[attr-defined]
        list(floats),  # type: ignore[call-overload]
        check_run_result(floats),
        [0, -1, 2**63 - 1, -(2**63)],
    ):
        assert number_lines(result) is not None
        assert format_rows(result) == _reference_rows(result)
    for other in ([1.5, float("nan")], [2**64], [1, 2.5], [True, 1], [np.float32(0.1)]):
        assert number_lines(other) is None
        assert format_rows(other) == _reference_rows(other)


def _floats(np: object, rng: object) -> object:
    return np.concatenate(  # type: ignore[attr-defined]
        [
            rng.random(200),  # type: ignore[attr-defined]
            rng.normal(0, 1e6, 100),  # type: ignore[attr-defined]
            10.0 ** rng.integers(-320, 308, 400) * rng.random(400),  # type: ignore[attr-defined]
            np.round(rng.normal(0, 1e5, 100)),  # type: ignore[attr-defined]
            rng.integers(-(10**17), 10**17, 50).astype(float),  # type: ignore[attr-defined]
            [0.0, -0.0, 1e16, 1e15, 9999999999999998.0, 123456789.123, 5e-324, 1e-5, 1e-4],
            [9.999999999999999e-05, 0.1, 2.5, 1.0, -3.0, np.inf, -np.inf, 1e22, 1e-7, 0.001],  # type: ignore[attr-defined]
        ]
    )


def test_dataframes_match_what_to_csv_writes() -> None:
    pd = pytest.importorskip("pandas")
    np = pytest.importorskip("numpy")
    pytest.importorskip("pyarrow")
    from sluiceway.runtime.rows import table_lines

    rng = np.random.default_rng(0)
    floats = _floats(np, rng)
    n = len(floats)  # type: ignore[arg-type]
    frame = pd.DataFrame(
        {
            "row": np.arange(n),
            "int32": rng.integers(-(2**31), 2**31 - 1, n).astype("int32"),
            "int8": rng.integers(-128, 127, n).astype("int8"),
            "uint": rng.integers(0, 2**63, n, dtype="uint64"),
            "flag": rng.random(n) < 0.5,
            "float": floats,
            "file_name": np.repeat(
                np.array(["a.csv", "b-é.csv", "c,d.csv", "my file.csv"], dtype=object),
                [n - 3, 1, 1, 1],
            ),
        }
    )
    expected = _reference_rows(frame)
    assert table_lines(frame) == expected
    assert format_rows(frame) == expected
    assert table_lines(frame[["float"]]) == _reference_rows(frame[["float"]])
    assert table_lines(frame.iloc[:0]) == b""
    one_row = frame.iloc[[5]]
    assert format_rows(one_row) == _reference_rows(one_row)
    assert format_rows(frame.set_index("file_name")) == _reference_rows(
        frame.set_index("file_name")
    )

    # Anything else goes to to_csv, which quotes and formats it.
    for other in (
        frame.assign(float=frame["float"].where(frame["row"] != 3)),  # a missing value
        frame.assign(float=rng.random(n).astype("float32")),
        frame.assign(file_name="tab\there"),
        frame.assign(file_name='say "hi"'),
        frame.assign(file_name=""),
        frame.assign(file_name="line\nbreak"),
        frame.assign(file_name=pd.Series(["\ud800"] * n, dtype=object)),
        frame.assign(file_name=[[1, 2]] * n),
        frame.assign(file_name=[b"raw"] * n),
        frame.assign(row=pd.array([None, *range(1, n)], dtype="Int64")),
        frame.assign(when=pd.Timestamp("2024-01-01")),
        frame.assign(file_name=pd.Series(["x"] * (n - 1) + [None], dtype="str")),
    ):
        assert table_lines(other) is None
        assert format_rows(other) == _reference_rows(other)

    # Strings that hold only spaces are quoted, as to_csv quotes them.
    spaced = frame.assign(file_name=pd.Series(["a b"] * n, dtype="str"))
    assert table_lines(spaced) == _reference_rows(spaced)
