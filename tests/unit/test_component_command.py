"""A component's command becomes an argument list, never shell text."""

from __future__ import annotations

import pytest

from sluiceway.runtime.command import (
    CommandError,
    Placeholder,
    literal_text,
    parse_command,
    with_interpreter,
)


def test_values_replace_placeholders_inside_their_own_word() -> None:
    template = parse_command(
        "python score.py --data ${{inputs.data}} --out=${{outputs.scores}} "
        '"--note=${{inputs.note}} here"'
    )
    argv = template.render({"data": "/in put", "note": "a; b"}, {"scores": "/out"})
    assert argv == ["python", "score.py", "--data", "/in put", "--out=/out", "--note=a; b here"]


@pytest.mark.parametrize(
    "value",
    [
        "x; rm -rf ~",
        "$(touch /tmp/pwned)",
        "`id`",
        "a && b || c",
        "'quoted' \"double\"",
        "line\nbreak",
        "*",
        "",
    ],
)
def test_a_literal_value_is_exactly_one_argument(value: str) -> None:
    argv = parse_command("prog ${{inputs.text}} end").render({"text": value}, {})
    assert argv == ["prog", value, "end"]


def test_optional_blocks_go_when_their_input_is_not_given() -> None:
    template = parse_command(
        "prog $[[--mode ${{inputs.mode}}]] $[[--n=${{inputs.n}}]] --out ${{outputs.o}}"
    )
    assert template.render({"mode": None, "n": None}, {"o": "/o"}) == ["prog", "--out", "/o"]
    assert template.render({"mode": "fast", "n": "3"}, {"o": "/o"}) == [
        "prog", "--mode", "fast", "--n=3", "--out", "/o",
    ]  # fmt: skip
    assert template.required_placeholders() == (Placeholder("outputs", "o"),)


def test_a_missing_required_value_is_an_error() -> None:
    with pytest.raises(CommandError, match=r"\$\{\{inputs.data\}\} has no value"):
        parse_command("prog ${{inputs.data}}").render({"data": None}, {})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("prog 'unbalanced", "cannot be split"),
        ("prog ${{inputs.data", "unclosed"),
        ("prog ${{parent.inputs.x}}", "is not accepted"),
        ("prog $[[--a ${{inputs.a}}", "not closed"),
        ("prog $[[--a $[[${{inputs.a}}]]", "inside another"),
        ("prog $[[--always]]", "must use an input"),
    ],
)
def test_malformed_commands_are_refused(text: str, message: str) -> None:
    with pytest.raises(CommandError, match=message):
        parse_command(text)


def test_literals_are_written_as_azure_writes_them() -> None:
    assert [literal_text(v) for v in (True, False, 5, 0.5, "x")] == [
        "True",
        "False",
        "5",
        "0.5",
        "x",
    ]


def test_python_runs_as_the_given_interpreter() -> None:
    assert with_interpreter(["python", "a.py"], "/venv/bin/python") == ["/venv/bin/python", "a.py"]
    assert with_interpreter(["python3.11", "-m", "x"], "/p")[0] == "/p"
    assert with_interpreter(["bash", "-c", "x"], "/p") == ["bash", "-c", "x"]
