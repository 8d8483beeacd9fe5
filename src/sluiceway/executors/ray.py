"""The ``ray`` executor: a job's mini-batches on Ray actors of a registered compute.

A pool is ``workers`` actors (:class:`~sluiceway.runtime.ray_actor.ScoringActor`), each asking
for a fraction of a CPU (``actor_cpus``) and spread over the cluster's nodes (Ray's ``SPREAD``
strategy: with ``instance_count`` x ``max_concurrency_per_instance`` actors and fewer nodes
than ``instance_count``, the nodes there are take several actors each). Each actor fetches the
model and code itself, verifies registered ones and calls ``init()`` once; then it is given one
mini-batch at a time, reads the mini-batch's files from the datastore itself and answers with
its rows, the files its script wrote and its new log lines, which the pool writes to the job's
staging folder and logs on the server, so outputs are committed as for local workers.

The pool keeps every promise of the local pool (:mod:`~sluiceway.executors.worker_pool`): a
mini-batch's timeout clock starts when it is sent, or when its actor becomes ready; an actor
whose mini-batch passes its timeout is killed (``ray.kill``) and replaced, as is one that dies or
whose node is lost, at the cost of its mini-batch's attempt; closing the pool kills every actor.
Actors are owned by the server process, so Ray stops them when the server dies. A pool whose
job ended with nothing in flight is kept warm for the next job of an equal spec.

A deployment's environment reaches the actors through Ray's ``runtime_env``: the executor
builds it on the cluster's nodes first (:meth:`RayExecutor.prepare_environment`, see
:mod:`~sluiceway.executors.ray_environments`), then each actor of the pool is placed on a node
that has it and runs its interpreter (``py_executable``). Never put credentials in a
``runtime_env``: Ray's dashboard shows runtime environments.

A pipeline's steps run on the same cluster, one actor each (:meth:`RayExecutor.start_step`, see
:mod:`~sluiceway.executors.ray_steps`); a step whose component names an environment is placed
as a pool's actor is, after the same build on the nodes.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Callable, Hashable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sluiceway.environments.cache import FileResolver
from sluiceway.executors.base import (
    ExecutorUnavailable,
    FailureKind,
    JobContext,
    JobData,
    MiniBatchResult,
    MiniBatchTask,
    StepFiles,
    StepLaunch,
    WorkerSpec,
)
from sluiceway.executors.idle_pools import IdlePools
from sluiceway.executors.ray_cluster import RayConnection, RayUnavailable, cluster_info
from sluiceway.executors.ray_environments import NodeEnvironments
from sluiceway.executors.ray_steps import RayStepRun, start_ray_step
from sluiceway.runtime.parts import write_part
from sluiceway.runtime.ray_actor import ActorAnswer, ActorReady, ActorSetup, ScoringActor
from sluiceway.runtime.ray_step import StepActor
from sluiceway.runtime.worker import stdout_log_path
from sluiceway.storage.locations import Location
from sluiceway.storage.paths import check_relative_path

logger = logging.getLogger("sluiceway.executors.ray")

DEFAULT_ACTOR_CPUS = 0.5  # below 1, so a 2-CPU node can hold the actors and Ray's own tasks
DEFAULT_GRACE_PERIOD = 5.0


def portable(location: Location) -> Location:
    """``location`` without its backend's open clients (sockets, sessions), which do not
    travel: the actor's copy opens its own, with the same settings and network policy."""
    backend = location.backend
    if dataclasses.is_dataclass(backend) and not isinstance(backend, type):
        fresh = {
            f.name: None
            for f in dataclasses.fields(backend)
            if f.name.startswith("_") and f.default is None
        }
        backend = dataclasses.replace(backend, **fresh)
    return dataclasses.replace(location, backend=backend)


@dataclass(eq=False)
class _Actor:
    name: str
    handle: Any
    ready_ref: Any
    started: float
    ready: bool = False
    pid: int | None = None
    node: str | None = None
    init_failed: bool = False
    task: MiniBatchTask | None = None
    call: Any = None  # the ObjectRef of the running mini-batch's answer
    clock: float | None = None
    ahead: int | None = None  # the mini-batch whose files it fetches ahead

    @property
    def deadline(self) -> float | None:
        if self.task is None or self.clock is None:
            return None
        return self.clock + self.task.timeout


class RayActorPool:
    """The actors serving one job at a time; see the module's docstring. Not thread-safe: one
    scheduler thread uses it."""

    def __init__(
        self,
        ray: Any,
        actor_class: Any,
        spec: WorkerSpec,
        data: JobData,
        job: JobContext,
        workers: int,
        *,
        options: dict[str, Any],
        grace_period: float = DEFAULT_GRACE_PERIOD,
        keep: Callable[[RayActorPool], bool] | None = None,
        on_end: Callable[[], None] | None = None,
        place: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        """Args:
        place: gives the options of each actor started, over ``options`` (the node of a
            built environment and its interpreter).
        """
        if workers < 1:
            raise ValueError(f"a worker pool needs at least 1 worker, got {workers}")
        self._ray = ray
        self._class = actor_class
        self._options = options
        self._place = place
        self._grace_period = grace_period
        self._keep = keep
        self._on_end = on_end
        self._job = job
        self._limit = workers
        self._closed = False
        self._init_errors = 0
        self._hints: dict[int, MiniBatchTask] = {}  # mini-batches coming soon, oldest first
        # Credentials travel in the object store, by reference; see ray_actor's docstring.
        self._setup = ray.put(ActorSetup(spec, data))
        self._actors: list[_Actor] = []
        try:
            for slot in range(workers):
                self._actors.append(self._start(f"worker-{slot}"))
        except BaseException:
            self.close(kill=True)
            raise

    @property
    def size(self) -> int:
        return len(self._actors)

    @property
    def job(self) -> JobContext:
        return self._job

    def actor_ids(self) -> list[str]:
        """The Ray actor ids of the pool's actors."""
        return [actor.handle._actor_id.hex() for actor in self._actors]

    def pids(self) -> dict[str, int]:
        """The process id of each ready actor, by worker name."""
        return {a.name: a.pid for a in self._actors if a.pid is not None}

    def idle(self) -> int:
        if self._closed:
            return 0
        free = sum(1 for actor in self._actors if actor.task is None)
        return max(min(free, self._limit - len(self.running())), 0)

    def running(self) -> list[int]:
        return [actor.task.index for actor in self._actors if actor.task is not None]

    def submit(self, task: MiniBatchTask) -> None:
        self._check_open()
        if task.index in self.running():
            raise ValueError(f"mini-batch {task.index} is already running in this pool")
        candidates = [actor for actor in self._actors if actor.task is None]
        if not candidates or self.idle() == 0:
            raise RuntimeError(
                f"no idle worker: {len(self.running())} of the job's {self._limit} workers are "
                f"running mini-batches {self.running()}; poll() until one finishes"
            )
        # The actor that fetched its files ahead, else one whose init() has finished.
        actor = min(
            candidates,
            key=lambda c: (c.ahead != task.index, not c.ready, c.started),
        )
        self._hints.pop(task.index, None)
        actor.task = task
        actor.clock = time.monotonic() if actor.ready else None
        upcoming = self._next_hint()
        actor.ahead = upcoming.index if upcoming is not None else None
        job = self._job
        actor.call = actor.handle.run.remote(
            task, job.job_name, job.append_rows, upcoming, job.output_format, job.input_columns
        )

    def prefetch(self, task: MiniBatchTask) -> None:
        """Remember that ``task`` comes soon: the next actor given a mini-batch fetches its
        files while it scores that one."""
        if task.index not in self.running():
            self._hints[task.index] = task
            while len(self._hints) > 4 * max(self.size, 1):
                self._hints.pop(next(iter(self._hints)))

    def _next_hint(self) -> MiniBatchTask | None:
        taken = {actor.ahead for actor in self._actors if actor.task is not None}
        running = set(self.running())
        for index, hint in self._hints.items():
            if index not in taken and index not in running:
                return hint
        return None

    def poll(self, timeout: float) -> list[MiniBatchResult]:
        self._check_open()
        end = time.monotonic() + max(timeout, 0.0)
        results: list[MiniBatchResult] = []
        while True:
            pending = self._pending()
            wake = min([end, *self._deadlines()])
            if pending:
                self._ray.wait(
                    list(pending), num_returns=1, timeout=max(wake - time.monotonic(), 0.0)
                )
                done, _ = self._ray.wait(list(pending), num_returns=len(pending), timeout=0)
            else:
                time.sleep(max(wake - time.monotonic(), 0.0))
                done = []
            for ref in done:
                actor, is_call = pending[ref]
                if is_call:
                    results.extend(self._on_answer(actor))
                else:
                    results.extend(self._on_ready(actor))
            now = time.monotonic()
            for slot, actor in enumerate(self._actors):
                deadline = actor.deadline
                if deadline is not None and now >= deadline and actor.call not in done:
                    results.append(self._on_timeout(slot, actor, now))
            if results or time.monotonic() >= end:
                return results

    def attach(
        self, job: JobContext, workers: int, *, on_end: Callable[[], None] | None = None
    ) -> None:
        """Serve ``job`` from now on (a pool kept warm), with up to ``workers`` actors."""
        self._check_open()
        if self.running():
            raise RuntimeError(f"the pool still runs mini-batches {self.running()}")
        self._job = job
        self._limit = workers
        self._on_end = on_end
        while len(self._actors) < workers:
            self._actors.append(self._start(f"worker-{len(self._actors)}"))

    def release(self) -> None:
        if self._closed:
            return
        busy = bool(self.running())
        if not busy and not self._init_errors and self._keep is not None:
            self._end()
            if self._keep(self):
                logger.debug("%r kept warm", self)
                return
        self.close(kill=busy)

    def close(self, *, kill: bool = False) -> None:
        if self._closed:
            return
        self._closed = True
        self._end()
        calls = [actor.call for actor in self._actors if actor.call is not None]
        if calls and not kill:
            self._ray.wait(calls, num_returns=len(calls), timeout=self._grace_period)
        for actor in self._actors:
            self._kill(actor)

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"running={self.running()}"
        return f"<RayActorPool job={self._job.job_name!r} size={self.size} {state}>"

    # -- internals ----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"the worker pool of job {self._job.job_name!r} is closed")

    def _end(self) -> None:
        on_end, self._on_end = self._on_end, None
        if on_end is not None:
            on_end()

    def _start(self, name: str) -> _Actor:
        options = self._options if self._place is None else {**self._options, **self._place()}
        handle = self._class.options(**options).remote([self._setup], name)
        return _Actor(name, handle, handle.ready.remote(), time.monotonic())

    def _kill(self, actor: _Actor) -> None:
        try:
            self._ray.kill(actor.handle, no_restart=True)
        except Exception:
            logger.debug("%s: ray.kill failed", actor.name, exc_info=True)

    def _replace(self, slot: int) -> None:
        old = self._actors[slot]
        self._kill(old)
        self._actors[slot] = self._start(old.name)

    def _pending(self) -> dict[Any, tuple[_Actor, bool]]:
        pending: dict[Any, tuple[_Actor, bool]] = {}
        for actor in self._actors:
            if not actor.ready:
                pending[actor.ready_ref] = (actor, False)
            elif actor.call is not None:
                pending[actor.call] = (actor, True)
        return pending

    def _deadlines(self) -> list[float]:
        return [d for d in (actor.deadline for actor in self._actors) if d is not None]

    def _append_log(self, name: str, data: bytes) -> None:
        if not data:
            return
        path = stdout_log_path(self._job.log_dir, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("ab") as file:
            file.write(data)

    def _on_ready(self, actor: _Actor) -> list[MiniBatchResult]:
        try:
            ready: ActorReady = self._ray.get(actor.ready_ref)
        except Exception as exc:
            return self._on_death(actor, exc)
        actor.ready = True
        actor.pid = ready.pid
        actor.node = ready.node
        self._append_log(actor.name, ready.log)
        if actor.task is not None and actor.clock is None:
            actor.clock = time.monotonic()
        if ready.init_error is not None:
            self._init_errors += 1
            logger.warning(
                "%s (pid %d on %s): init() failed: %s: %s",
                actor.name,
                ready.pid,
                ready.node,
                ready.init_error.type,
                ready.init_error.message,
            )
        else:
            logger.info(
                "%s (pid %d on %s) ready after %.1f s",
                actor.name,
                ready.pid,
                ready.node,
                ready.init_seconds,
            )
        return []

    def _on_answer(self, actor: _Actor) -> list[MiniBatchResult]:
        task = actor.task
        assert task is not None
        try:
            answer: ActorAnswer = self._ray.get(actor.call)
        except Exception as exc:
            return self._on_death(actor, exc)
        actor.task = None
        actor.call = None
        actor.clock = None
        self._append_log(actor.name, answer.log)
        result = answer.result
        try:
            for relative, content in answer.outputs.items():
                check_relative_path(relative)
                target = Path(self._job.output_dir) / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)
            if result.ok and answer.rows is not None:
                part = write_part(self._job.parts_dir, task.index, answer.rows)
                result = dataclasses.replace(result, part_path=str(part))
        except Exception as exc:
            return [
                MiniBatchResult.failed(
                    task,
                    actor.name,
                    FailureKind.RUN_ERROR,
                    type(exc).__name__,
                    f"the answer of {actor.name} could not be written on the server: {exc}",
                )
            ]
        return [result]

    def _on_death(self, actor: _Actor, exc: BaseException) -> list[MiniBatchResult]:
        slot = self._actors.index(actor)
        task = actor.task
        where = f" on {actor.node}" if actor.node else ""
        pid = f"pid {actor.pid}{where}" if actor.pid else f"not started yet{where}"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        self._replace(slot)
        if task is None:
            logger.warning("%s (%s) died while idle (%s); replacing it", actor.name, pid, reason)
            return []
        message = (
            f"{actor.name} ({pid}) died while running mini-batch {task.index}: "
            f"{type(exc).__name__}: {reason}"
        )
        logger.error("%s; replacing the actor", message)
        started = actor.started if actor.clock is None else actor.clock
        return [
            MiniBatchResult.failed(
                task,
                actor.name,
                FailureKind.WORKER_DIED,
                "WorkerDied",
                message,
                duration=time.monotonic() - started,
            )
        ]

    def _on_timeout(self, slot: int, actor: _Actor, now: float) -> MiniBatchResult:
        task = actor.task
        assert task is not None and actor.clock is not None
        message = f"mini-batch {task.index} timed out after {task.timeout:g} s"
        logger.error("%s; killed %s (pid %s) to replace it", message, actor.name, actor.pid)
        self._replace(slot)
        return MiniBatchResult.failed(
            task,
            actor.name,
            FailureKind.TIMEOUT,
            "TimeoutError",
            message,
            duration=now - actor.clock,
        )


def _ray_key(spec: WorkerSpec, data: JobData) -> Hashable:
    """Specs whose actors are interchangeable: the same scorer and settings, and the same
    model and code locations (registered ones are immutable; actors fetched their own)."""
    return (
        spec.scorer,
        spec.scoring_script,
        spec.logging_level,
        spec.environment,
        tuple(sorted(spec.environment_variables.items())),
        data.model.uri if data.model else None,
        data.code.uri if data.code else None,
    )


class RayExecutor:
    """Runs jobs' mini-batches on Ray actors of the compute ``compute`` at ``address``.

    Args:
        compute: the compute's name, for messages.
        address: the cluster's address (see :mod:`~sluiceway.executors.ray_cluster`).
        actor_cpus: the CPUs each actor asks Ray for.
        idle_seconds: how long a released pool's actors are kept for the next job of an equal
            spec; 0 stops them when their job is done.
        max_idle_pools: the most pools kept warm at once.
        environments_root: the folder on each node where environments are built; None for the
            node's temp dir's.
        offline_builds: build environments without a package index.
    """

    name: str = "ray"
    reads_datastores: bool = True

    def __init__(
        self,
        compute: str,
        address: str,
        *,
        actor_cpus: float = DEFAULT_ACTOR_CPUS,
        idle_seconds: float = 0.0,
        max_idle_pools: int = 0,
        grace_period: float = DEFAULT_GRACE_PERIOD,
        environments_root: str | None = None,
        offline_builds: bool = False,
    ) -> None:
        self.compute = compute
        self.address = address
        self.actor_cpus = actor_cpus
        self.grace_period = grace_period
        self._environments = NodeEnvironments(
            self._connect, compute, root=environments_root, offline=offline_builds
        )
        self._idle: IdlePools[RayActorPool] = IdlePools(
            idle_seconds=idle_seconds, max_pools=max_idle_pools
        )
        self._class: Any = None
        self._step_class: Any = None

    @property
    def idle_pools(self) -> int:
        return len(self._idle)

    def _connect(self) -> Any:
        try:
            return RayConnection.ensure(self.address)
        except RayUnavailable as exc:
            raise ExecutorUnavailable(f"Compute {self.compute!r} (ray, {exc})") from None

    def prepare_environment(self, content: Mapping[str, Any], files: FileResolver) -> Future[str]:
        return self._environments.prepare(content, files)

    def describe(self, workers: int) -> str:
        try:
            info = cluster_info(self.address)
        except RayUnavailable as exc:
            raise ExecutorUnavailable(f"Compute {self.compute!r} (ray, {exc})") from None
        spread = (
            "one per node"
            if workers <= info.nodes
            else f"more than one per node: the cluster has {info.nodes} nodes for {workers} actors"
        )
        return (
            f"{workers} Ray actors of {self.actor_cpus:g} CPU on compute {self.compute!r} "
            f"(Ray cluster at {self.address}: {info.nodes} nodes, {info.cpus:g} CPUs), spread "
            f"over its nodes ({spread})"
        )

    def open_pool(
        self, spec: WorkerSpec, job: JobContext, workers: int, data: JobData | None = None
    ) -> RayActorPool:
        if data is None:
            raise ValueError("the ray executor needs the job's data locations")
        if workers < 1:
            raise ValueError(f"a worker pool needs at least 1 worker, got {workers}")
        ray = self._connect()
        data = dataclasses.replace(
            data,
            input=portable(data.input),
            model=portable(data.model) if data.model else None,
            code=portable(data.code) if data.code else None,
        )
        key = _ray_key(spec, data) if self._idle.enabled else None
        if key is not None:
            warm = self._idle.take(key)
            if warm is not None:
                warm.attach(job, workers)
                logger.info("job %s: %d warm actors attached", job.job_name, warm.size)
                return warm
        if self._class is None:
            self._class = ray.remote(ScoringActor)
        options, place = self._actor_options(spec.environment)
        keep = None if key is None else functools.partial(self._idle.park, key)
        try:
            return RayActorPool(
                ray,
                self._class,
                spec,
                data,
                job,
                workers,
                options=options,
                grace_period=self.grace_period,
                keep=keep,
                place=place,
            )
        except RayUnavailable as exc:
            raise ExecutorUnavailable(f"Compute {self.compute!r} (ray, {exc})") from None

    def _actor_options(
        self, environment: str | None
    ) -> tuple[dict[str, Any], Callable[[], dict[str, Any]] | None]:
        """The options of a scoring or step actor (spread, never restarted by Ray: a lost
        actor costs its work an attempt here), and, for an environment built on the nodes,
        what places it on a node that has the build."""
        options: dict[str, Any] = {
            "num_cpus": self.actor_cpus,
            "scheduling_strategy": "SPREAD",
            "max_restarts": 0,
            "max_task_retries": 0,
        }
        if environment is None:
            return options, None
        placement = self._environments.placement(environment)
        return options, functools.partial(placement.options, self.actor_cpus)

    def start_step(self, launch: StepLaunch, files: StepFiles) -> RayStepRun:
        """A pipeline step on an actor of the cluster, which fetches the step's data on its
        node (``files`` is not used); see :mod:`~sluiceway.executors.ray_steps`. A step in an
        environment (``launch.environment``, built by :meth:`prepare_environment`) goes to a
        node that has it, and runs its interpreter."""
        ray = self._connect()
        if self._step_class is None:
            self._step_class = ray.remote(StepActor)
        options, place = self._actor_options(launch.environment)
        try:
            return start_ray_step(
                ray,
                self._step_class,
                launch,
                files,
                compute=self.compute,
                options=options,
                place=place,
            )
        except RayUnavailable as exc:
            raise ExecutorUnavailable(f"Compute {self.compute!r} (ray, {exc})") from None

    def close(self) -> None:
        self._idle.close()
        self._environments.close()

    def close_expired(self) -> int:
        return self._idle.close_expired()


__all__ = ["RayActorPool", "RayExecutor", "portable"]
