"""Environments on a ``ray`` compute: built on the cluster's nodes, run by the actors through
Ray's ``runtime_env``.

**Built on each node.** Before a job's actors start, a Ray task pinned to each live node of the
cluster (``NodeAffinitySchedulingStrategy``) builds the environment there with uv, with the
same code as the server's own builds (:class:`~sluiceway.environments.cache.EnvironmentCache`):
the same conda translation, the same build log, once per content hash, in
``<ray_environments_dir>/<hash>/venv`` on the node (default: the node's temp dir). Nodes that
share that folder share one build (the cache's lock). The environment's uploaded wheels travel
from the server through Ray's object store (the server reads them from the registry), so nodes
need no datastore credentials to build. A failed build on any node fails the job with that
node's build log; it never leaves actors waiting.

**Run by the actors.** Each actor gets ``runtime_env={"py_executable": <the venv's python>}``
and is placed on a node where the build succeeded (``NodeAffinitySchedulingStrategy``, the
one with the most free CPUs): Ray would otherwise start it on a node without the interpreter
and wait for ever. A node that joins the cluster later gets the environment at the next job of the
deployment. The venv's packages come first on ``sys.path``; behind them are the packages of
the Python Ray runs in on the node (an actor process needs Ray), as with Ray's own ``pip`` and
``uv`` runtime environments. The interpreter is the cluster's: Ray runs a cluster's workers on
one Python version, so an environment asking for another ``python=`` fails, saying so.

**Why not Ray's ``pip``/``uv`` fields.** They need ``virtualenv`` in the nodes' Ray
environment, and copy a Ray installed in a virtual environment whole (gigabytes) for each
environment; and they would translate nothing of Azure's conda files.

**The runtime code.** Build tasks and actors import Sluiceway on the nodes: the one installed
there (the server's version), or the server's own, shipped as the job-level ``py_modules`` when
``ray_ship_code`` is set (see :mod:`~sluiceway.executors.ray_cluster`). What they import of it
needs only the standard library and fsspec.
"""

from __future__ import annotations

import logging
import os
import site
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sluiceway.environments.cache import BUILD_TIMEOUT, BuildFailed, FileResolver
from sluiceway.environments.spec import EnvironmentContent
from sluiceway.executors.base import ExecutorUnavailable

logger = logging.getLogger("sluiceway.executors.ray")

DEFAULT_FOLDER = "sluiceway-ray-environments"
NO_EVICTION = 1 << 62  # actors of any job may use a node's environments: none is removed
WAIT_SECONDS = 2 * BUILD_TIMEOUT + 60.0  # a node's build: creating the venv, then installing
RECENT_SECONDS = 10.0  # actors placed this recently may not show in Ray's free CPUs yet
LIVENESS_SECONDS = 2.0  # how often the nodes still building are checked for being alive


@dataclass(frozen=True)
class NodeBuild:
    """A build task's answer: how the environment's build went on one node."""

    node_id: str
    host: str
    ok: bool
    python: str | None  # the venv's interpreter on that node, once built
    log_tail: str


def build_here(
    content: dict[str, Any], wheels: dict[str, Any], root: str | None, offline: bool
) -> NodeBuild:
    """Build the environment on this node (run as a Ray task pinned to it).

    Args:
        content: the environment's content (:meth:`EnvironmentContent.to_json`).
        wheels: the object reference of each uploaded wheel's bytes, by URI.
        root: the build folder on the node; None for its temp dir's.
        offline: build without a package index.
    """
    import ray

    from sluiceway.environments.cache import BuildStatus, EnvironmentCache

    def fetch(uri: str, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / uri.rsplit("/", 1)[-1]
        path.write_bytes(ray.get(wheels[uri]))
        return path

    behind = [*site.getsitepackages()]
    user = site.getusersitepackages()
    if site.ENABLE_USER_SITE and os.path.isdir(user):
        behind.append(user)
    folder = Path(root) if root else Path(tempfile.gettempdir()) / DEFAULT_FOLDER
    cache = EnvironmentCache(folder, offline=offline, max_bytes=NO_EVICTION, behind=tuple(behind))
    state = cache.build(EnvironmentContent.from_json(content), fetch)
    return NodeBuild(
        ray.get_runtime_context().get_node_id(),
        socket.gethostname(),
        state.status is BuildStatus.READY,
        state.python,
        state.log_tail,
    )


class NodePlacement:
    """Where the actors of pools in one environment go: the nodes it was built on, the one
    with the most free CPUs first (as Ray's CPU accounting says, less what this placement
    gave out in the last seconds, which Ray may not count yet), else in turn."""

    def __init__(self, ray: Any, content_hash: str, pythons: Mapping[str, str]) -> None:
        self.content_hash = content_hash
        self._ray = ray
        self._pythons = dict(pythons)  # node id -> the venv's interpreter there
        self._given: dict[str, int] = dict.fromkeys(self._pythons, 0)
        self._recent: list[tuple[float, str, float]] = []  # (when, node, CPUs)
        self._lock = threading.Lock()

    @property
    def nodes(self) -> list[str]:
        return sorted(self._pythons)

    def options(self, cpus: float) -> dict[str, Any]:
        """The Ray options of one more actor asking for ``cpus``: on a live node that has the
        environment, with its interpreter.

        Raises:
            ExecutorUnavailable: none of those nodes is alive any more.
        """
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        alive = {n["NodeID"] for n in self._ray.nodes() if n.get("Alive")}
        candidates = [node for node in sorted(self._pythons) if node in alive]
        if not candidates:
            raise ExecutorUnavailable(
                f"none of the nodes environment {self.content_hash} was built on is alive; "
                "the next job of the deployment builds it on the nodes the cluster has then"
            )
        free = _free_cpus()
        with self._lock:
            now = time.monotonic()
            self._recent = [r for r in self._recent if now - r[0] < RECENT_SECONDS]

            def room(node: str) -> tuple[float, int]:
                taken = sum(c for _, n, c in self._recent if n == node)
                return (free.get(node, 0.0) - taken, -self._given[node])

            node = max(candidates, key=room)
            self._recent.append((now, node, cpus))
            self._given[node] += 1
        return {
            "scheduling_strategy": NodeAffinitySchedulingStrategy(node, soft=False),
            "runtime_env": {"py_executable": self._pythons[node]},
        }


def _free_cpus() -> dict[str, float]:
    """The CPUs free on each node, as Ray's GCS says (empty where it cannot be asked, as
    through Ray Client: the nodes are then taken in turn)."""
    try:
        from ray._private.state import available_resources_per_node

        found = available_resources_per_node()  # type: ignore[no-untyped-call]
    except Exception:
        return {}
    return {str(node): float(resources.get("CPU", 0.0)) for node, resources in found.items()}


class NodeEnvironments:
    """A Ray compute's environments: builds them on the nodes, and keeps where each is.

    Args:
        connect: gives the ``ray`` module, connected to the cluster (raises
            :class:`ExecutorUnavailable`).
        compute: the compute's name, for messages.
        root: the build folder on each node; None for the node's temp dir's.
        offline: build without a package index.
    """

    def __init__(
        self, connect: Callable[[], Any], compute: str, *, root: str | None, offline: bool
    ) -> None:
        self._connect = connect
        self._compute = compute
        self._root = root
        self._offline = offline
        self._lock = threading.Lock()
        self._preparing: dict[str, Future[str]] = {}
        self._placements: dict[str, NodePlacement] = {}
        self._threads = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ray-environment")
        self._task: Any = None

    def prepare(self, content: Mapping[str, Any], files: FileResolver) -> Future[str]:
        """Build on every live node (again for each job: a node that joined meanwhile gets it,
        and the others find their build). Jobs asking at once share one round of builds."""
        environment = EnvironmentContent.from_json(content)
        content_hash = environment.content_hash()
        with self._lock:
            running = self._preparing.get(content_hash)
            if running is not None and not running.done():
                return running
            future = self._threads.submit(self._build, environment, files)
            self._preparing[content_hash] = future
            return future

    def placement(self, content_hash: str) -> NodePlacement:
        with self._lock:
            found = self._placements.get(content_hash)
        if found is None:
            raise ValueError(
                f"environment {content_hash} was not built on compute {self._compute!r}: "
                "prepare_environment() comes before the job's pool"
            )
        return found

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)

    def _build(self, environment: EnvironmentContent, files: FileResolver) -> str:
        ray = self._connect()
        content_hash = environment.content_hash()
        wheels = {}
        with tempfile.TemporaryDirectory(prefix="sluiceway-wheels-") as folder:
            for uri in environment.uploaded_files():
                try:
                    data = files(uri, Path(folder)).read_bytes()
                except Exception as exc:
                    raise BuildFailed(
                        content_hash, f"ERROR: the uploaded wheel {uri} cannot be read: {exc}"
                    ) from None
                wheels[uri] = ray.put(data)
        if self._task is None:
            self._task = ray.remote(build_here)
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        nodes = {n["NodeID"]: n for n in ray.nodes() if n.get("Alive")}
        if not nodes:
            raise ExecutorUnavailable(f"Compute {self._compute!r} (ray) has no live node")
        refs = {
            node: self._task.options(
                num_cpus=0,  # a build never waits for actors' CPUs
                scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False),
                max_retries=0,
            ).remote(environment.to_json(), wheels, self._root, self._offline)
            for node in nodes
        }
        logger.info(
            "environment %s: building on %d nodes of compute %s",
            content_hash,
            len(refs),
            self._compute,
        )
        ready = self._wait(ray, refs)
        pythons: dict[str, str] = {}
        for node, ref in refs.items():
            where = str(nodes[node].get("NodeManagerAddress") or node[:12])
            if ref not in ready:
                if not self._alive(ray, node):
                    logger.warning("environment %s: node %s was lost", content_hash, where)
                    continue
                raise BuildFailed(
                    content_hash,
                    f"the build on node {where} of compute {self._compute!r} did not end "
                    f"within {WAIT_SECONDS:g} s",
                )
            try:
                answer: NodeBuild = ray.get(ref)
            except Exception as exc:
                if not self._alive(ray, node):
                    logger.warning(
                        "environment %s: node %s was lost while building", content_hash, where
                    )
                    continue
                raise BuildFailed(
                    content_hash,
                    f"the build task on node {where} of compute {self._compute!r} failed: "
                    f"{type(exc).__name__}: {exc}",
                ) from None
            if not answer.ok or answer.python is None:
                raise BuildFailed(
                    content_hash,
                    f"on node {answer.host} ({where}) of compute {self._compute!r}:\n"
                    f"{answer.log_tail}",
                )
            pythons[node] = answer.python
        if not pythons:
            raise ExecutorUnavailable(
                f"Compute {self._compute!r} (ray): every node was lost while environment "
                f"{content_hash} was built"
            )
        with self._lock:
            self._placements[content_hash] = NodePlacement(ray, content_hash, pythons)
        logger.info("environment %s: ready on %d nodes", content_hash, len(pythons))
        return content_hash

    def _wait(self, ray: Any, refs: dict[str, Any]) -> set[Any]:
        """The builds that ended, waiting until all did, or their nodes were lost (a task on a
        node that is gone may never answer), or :data:`WAIT_SECONDS` passed."""
        deadline = time.monotonic() + WAIT_SECONDS
        waiting = dict(refs)
        ended: set[Any] = set()
        while waiting and time.monotonic() < deadline:
            done, _ = ray.wait(
                list(waiting.values()), num_returns=len(waiting), timeout=LIVENESS_SECONDS
            )
            ended.update(done)
            alive = {n["NodeID"] for n in ray.nodes() if n.get("Alive")}
            for node, ref in list(waiting.items()):
                if ref in ended or node not in alive:
                    del waiting[node]
        return ended

    @staticmethod
    def _alive(ray: Any, node: str) -> bool:
        try:
            return any(n["NodeID"] == node and n.get("Alive") for n in ray.nodes())
        except Exception:
            return False


__all__ = ["NodeBuild", "NodeEnvironments", "NodePlacement", "build_here"]
