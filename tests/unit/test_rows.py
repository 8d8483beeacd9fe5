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
    assert format_rows(["a.csv 1", 2, 3.5, None, ("x", 1)]) == "a.csv 1\n2\n3.5\nNone\n('x', 1)\n"


def test_a_tuple_is_written_like_a_list() -> None:
    assert format_rows(("one", "two")) == "one\ntwo\n"


def test_nothing_to_write_is_an_empty_part() -> None:
    assert format_rows([]) == ""


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
    assert format_rows([element]) == f"{line}\n"


def test_a_dataframe_becomes_space_separated_rows_without_header_or_index() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(
        {"row": [0, 1], "prediction": [1, 0], "file_name": ["a.csv", "my file.csv"]},
        index=[10, 11],
    )

    text = format_rows(frame)

    assert text == '0 1 a.csv\n1 0 "my file.csv"\n'
    back = pd.read_csv(io.StringIO(text), header=None, sep=" ", names=list(frame.columns))
    pd.testing.assert_frame_equal(back, frame.reset_index(drop=True), check_dtype=False)


def test_an_empty_dataframe_writes_nothing() -> None:
    pd = pytest.importorskip("pandas")
    assert format_rows(pd.DataFrame({"prediction": []})) == ""


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
    assert format_rows(result) == "0.25\n1.0\n"
    assert len(check_run_result(np.zeros((4, 2)))) == 4


@pytest.mark.parametrize(
    ("value", "type_name"),
    [(None, "NoneType"), (42, "int"), ("text", "str"), ({"a": 1}, "dict")],
)
def test_anything_else_gets_azures_message(value: object, type_name: str) -> None:
    with pytest.raises(TypeError) as raised:
        check_run_result(value)
    assert str(raised.value) == WRONG_TYPE.format(type_name)


def test_plain_tables_take_a_faster_path_that_writes_what_to_csv_writes() -> None:
    pd = pytest.importorskip("pandas")
    np = pytest.importorskip("numpy")
    from sluiceway.runtime.rows import plain_table_lines

    rng = np.random.default_rng(0)
    floats = np.concatenate(
        [
            rng.random(200),
            rng.normal(0, 1e6, 100),
            10.0 ** rng.integers(-320, 308, 200) * rng.random(200),
            [0.0, -0.0, 1e16, 1e15, 123456789.123, 5e-324, 1e-5, 1e-4, 0.1, 2.5, np.inf, -np.inf],
        ]
    )
    n = len(floats)
    frame = pd.DataFrame(
        {
            "row": np.arange(n),
            "int32": rng.integers(-(2**31), 2**31 - 1, n).astype("int32"),
            "uint": rng.integers(0, 2**63, n, dtype="uint64"),
            "flag": rng.random(n) < 0.5,
            "float": floats,
            "file_name": np.repeat(
                np.array(["a.csv", "b-é.csv", "c,d.csv"], dtype=object), [n - 2, 1, 1]
            ),
        }
    )
    expected = frame.to_csv(sep=" ", header=False, index=False, lineterminator="\n")
    assert plain_table_lines(frame) == expected
    assert format_rows(frame) == expected

    # Anything else goes to to_csv, which quotes and formats it.
    for other in (
        frame.assign(float=frame["float"].where(frame["row"] != 3)),  # a missing value
        frame.assign(float=rng.random(n).astype("float32")),
        frame.assign(file_name="my file.csv"),
        frame.assign(file_name='say "hi"'),
        frame.assign(file_name=""),
        frame.assign(file_name=[[1, 2]] * n),
        frame.assign(row=pd.array([None, *range(1, n)], dtype="Int64")),
        frame.assign(when=pd.Timestamp("2024-01-01")),
    ):
        assert plain_table_lines(other) is None
        assert format_rows(other) == other.to_csv(
            sep=" ", header=False, index=False, lineterminator="\n"
        )
    assert plain_table_lines(frame.iloc[:0]) == ""
