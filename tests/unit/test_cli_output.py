"""How ``sluice`` prints results: JSON like az ml, ``--query`` and ``--output``."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sluiceway.cli.output import OutputOptions, apply_query, render
from sluiceway.errors import ValidationError

JOB: dict[str, Any] = {
    "id": "/subscriptions/s/jobs/j1",
    "name": "j1",
    "status": "Completed",
    "outputs": {"score": {"type": "uri_folder", "path": "azureml://datastores/ws/paths/out/"}},
    "tags": ["a", "b"],
}


def test_json_is_indented_by_two_like_az() -> None:
    assert render(JOB, OutputOptions()) == json.dumps(JOB, indent=2)


def test_lists_print_as_json_arrays() -> None:
    assert json.loads(render([JOB, JOB], OutputOptions()) or "") == [JOB, JOB]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("id", "/subscriptions/s/jobs/j1"),
        ("outputs.score.path", "azureml://datastores/ws/paths/out/"),
        ("tags[0]", "a"),
        ("tags[-1]", "b"),
        ("tags[5]", None),
        ("missing.deeper", None),
        ("@", JOB),
    ],
)
def test_query_picks_a_dotted_path(query: str, expected: object) -> None:
    assert apply_query(JOB, query) == expected


def test_query_projects_over_lists() -> None:
    jobs = [JOB, {**JOB, "name": "j2"}, {"other": 1}]
    assert apply_query(jobs, "[].name") == ["j1", "j2"]
    assert apply_query(jobs, "[1].name") == "j2"


@pytest.mark.parametrize("query", [".id", "a..b", "a[x]", "length(@)"])
def test_query_refuses_what_it_does_not_support(query: str) -> None:
    with pytest.raises(ValidationError, match="is not supported"):
        apply_query(JOB, query)


def test_tsv_prints_bare_values_for_shell_variables() -> None:
    assert render(JOB, OutputOptions(format="tsv", query="id")) == "/subscriptions/s/jobs/j1"
    assert render([JOB, JOB], OutputOptions(format="tsv", query="[].name")) == "j1\nj1"
    assert render({"a": 1, "b": True, "c": None}, OutputOptions(format="tsv")) == "1\ttrue\t"


def test_yaml_and_none() -> None:
    assert render({"a": 1}, OutputOptions(format="yaml")) == "a: 1"
    assert render(JOB, OutputOptions(format="none")) is None
