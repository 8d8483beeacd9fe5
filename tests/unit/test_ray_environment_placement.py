"""Where the actors of a job in an environment go on a Ray compute: only nodes the
environment was built on, the one with the most free CPUs first, and never a lost one."""

from __future__ import annotations

from typing import Any

import pytest

from sluiceway.executors import ray_environments
from sluiceway.executors.base import ExecutorUnavailable
from sluiceway.executors.ray_environments import NodePlacement

A, B, C = ("a" * 56, "b" * 56, "c" * 56)  # node ids: 28 bytes in hex


class FakeRay:
    def __init__(self, alive: set[str]) -> None:
        self.alive = alive

    def nodes(self) -> list[dict[str, Any]]:
        return [{"NodeID": n, "Alive": True} for n in sorted(self.alive)]


def test_actors_go_where_the_environment_is_and_there_is_room(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ray = FakeRay({A, B, C})
    free = {A: 0.0, B: 1.0, C: 2.0}  # c has no build: never used
    monkeypatch.setattr(ray_environments, "_free_cpus", lambda: dict(free))
    placement = NodePlacement(ray, "h", {A: "/a/python", B: "/b/python"})
    chosen = [placement.options(0.5) for _ in range(3)]
    nodes = [o["scheduling_strategy"].node_id for o in chosen]
    # b has room for two actors of 0.5 CPU (placed ones count before Ray does); then a.
    assert nodes == [B, B, A]
    assert [o["runtime_env"] for o in chosen] == [
        {"py_executable": "/b/python"},
        {"py_executable": "/b/python"},
        {"py_executable": "/a/python"},
    ]
    assert all(o["scheduling_strategy"].soft is False for o in chosen)

    ray.alive = {A, C}  # b is lost: its actors' replacements go to a
    assert placement.options(0.5)["scheduling_strategy"].node_id == A
    ray.alive = {C}
    with pytest.raises(ExecutorUnavailable, match="none of the nodes"):
        placement.options(0.5)


def test_without_free_cpus_known_the_nodes_take_turns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ray_environments, "_free_cpus", dict)
    placement = NodePlacement(FakeRay({A, B}), "h", {A: "/a/py", B: "/b/py"})
    nodes = [placement.options(0.5)["scheduling_strategy"].node_id for _ in range(4)]
    assert sorted(nodes[:2]) == [A, B] and sorted(nodes[2:]) == [A, B]
