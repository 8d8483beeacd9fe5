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
