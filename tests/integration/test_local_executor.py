"""The local executor with real worker processes: scoring scripts, MLflow, timeouts and deaths.

Starting a worker costs about a second, so the well-behaved scoring tests share one pool of two
workers (module scope); each test leaves it idle. Tests that need another set-up open a pool of
one worker.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psutil
import pytest

from sluiceway.executors.base import (
    Executor,
    FailureKind,
    JobContext,
    MiniBatchResult,
    MiniBatchTask,
    ScorerKind,
    WorkerPool,
    WorkerSpec,
)
from sluiceway.executors.local import LocalExecutor, LocalWorkerPool
from sluiceway.executors.threads import machine_cores, threads_per_worker
from sluiceway.executors.worker_pool import QUEUE_DEPTH
from sluiceway.runtime.parts import part_path
from sluiceway.runtime.worker import stdout_log_path

# Behaviour is chosen by the name of the first file that asks for something special.
SCRIPT = """\
import os
import subprocess
import sys
import time
from pathlib import Path

OUTPUT = Path(os.environ["AZUREML_BI_OUTPUT_PATH"])


def init():
    with open(OUTPUT / "inits.txt", "a") as file:
        file.write(f"{os.getpid()}\\n")
    print("init in", os.getpid())
    if os.environ.get("FAIL_INIT"):
        load_model()
    time.sleep(float(os.environ.get("INIT_SLEEP", "0")))


def load_model():
    raise RuntimeError("no model here")


def run(mini_batch):
    rows = []
    for path in mini_batch:
        name = Path(path).name
        if name.startswith("raise"):
            raise ValueError(f"cannot score {name}")
        if name.startswith("int"):
            return 42
        if name.startswith("sleep"):
            time.sleep(60)
        if name.startswith("exit"):
            os._exit(3)
        if name.startswith("child"):
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
            (OUTPUT / "child.pid").write_text(str(child.pid))
            time.sleep(60)
        if name.startswith("threads"):
            names = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
            return [f"{n}={os.environ.get(n)}" for n in names]
        if name.startswith("env"):
            return [os.environ.get("AZUREML_MODEL_DIR"), os.environ["AZUREML_BI_OUTPUT_PATH"]]
        rows += [f"{name} {line}" for line in Path(path).read_text().splitlines()]
    return rows
"""

RESULT_TYPE_MESSAGE = (
    "The run() method in the entry script should return a list or a pandas DataFrame. "
    "The length of returned result is considered as succeeded number of items. "
    "For --output_action=append_row, the returned result is what to write into the result file. "
    "The actual type of output is int."
)


def make_spec(root: Path, **changes: Any) -> WorkerSpec:
    """A scoring-script deployment rooted at ``root``, with :data:`SCRIPT` as its script."""
    code = root / "code"
    code.mkdir(parents=True, exist_ok=True)
    (code / "score.py").write_text(SCRIPT)
    (root / "model").mkdir(exist_ok=True)
    spec = WorkerSpec(
        scorer=ScorerKind.SCORING_SCRIPT,
        model_dir=str(root / "model"),
        code_dir=str(code),
        scoring_script="score.py",
    )
    return replace(spec, **changes)


def mlflow_spec(root: Path, models: Path, **changes: Any) -> WorkerSpec:
    """An MLflow deployment of the model under ``models``, without a scoring script."""
    return make_spec(
        root,
        scorer=ScorerKind.MLFLOW,
        model_dir=str(models),
        code_dir=None,
        scoring_script=None,
        **changes,
    )


def make_job(root: Path, **changes: Any) -> JobContext:
    """A job whose output, parts and logs are under ``root``."""
    job = JobContext(
        job_name=root.name,
        output_dir=str(root / "score"),
        parts_dir=str(root / "parts"),
        log_dir=str(root / "logs"),
    )
    return replace(job, **changes)


def write_file(folder: Path, name: str, *lines: str) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("".join(f"{line}\n" for line in lines))
    return str(path)


def task(index: int, *files: str, timeout: float = 20.0, attempt: int = 1) -> MiniBatchTask:
    return MiniBatchTask(index=index, files=files, attempt=attempt, timeout=timeout)


def collect(pool: WorkerPool, count: int, within: float = 30.0) -> list[MiniBatchResult]:
    """Poll until ``count`` results arrived; they are returned sorted by index."""
    results: list[MiniBatchResult] = []
    end = time.monotonic() + within
    while len(results) < count:
        left = end - time.monotonic()
        assert left > 0, f"only {len(results)} of {count} results within {within} s: {results}"
        results += pool.poll(left)
    assert len(results) == count, results
    return sorted(results, key=lambda result: result.index)


def wait_for(condition: Callable[[], object], what: str, within: float = 20.0) -> None:
    end = time.monotonic() + within
    while not condition():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.05)


def inits(job: JobContext) -> list[int]:
    """The pids that ran init() while serving ``job``, in order."""
    path = Path(job.output_dir) / "inits.txt"
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def gone(pid: int) -> bool:
    """Whether ``pid`` has exited (a zombie no one reaps counts, in a container without init)."""
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


@dataclass
class TrainedModel:
    """The heart example's model, trained by a subprocess started with the module."""

    process: subprocess.Popen[bytes] | None
    models: Path  # AZUREML_MODEL_DIR; the model is in its subfolder heart-classifier/
    log: Path

    def wait(self) -> Path:
        if self.process is None:
            pytest.skip("the MLflow example needs pandas, scikit-learn and mlflow-skinny")
        returncode = self.process.wait(timeout=180)
        assert returncode == 0, f"training failed:\n{self.log.read_text()}"
        return self.models


@pytest.fixture(scope="module", autouse=True)
def heart_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrainedModel]:
    """Start training at once: importing MLflow takes seconds, which the other tests hide.

    The subprocess turns warnings into errors, as the test run itself does.
    """
    root = tmp_path_factory.mktemp("heart")
    model = TrainedModel(None, root / "models", root / "train.log")
    if all(importlib.util.find_spec(name) for name in ("pandas", "sklearn", "mlflow")):
        code = (
            "import sys; from pathlib import Path; "
            "from sluiceway.examples.heart import train_heart_model; "
            "train_heart_model(Path(sys.argv[1]))"
        )
        target = str(model.models / "heart-classifier")
        with open(model.log, "wb") as log:
            model.process = subprocess.Popen(
                [sys.executable, "-W", "error", "-c", code, target], stdout=log, stderr=log
            )
    try:
        yield model
    finally:
        if model.process is not None:
            model.process.kill()
            model.process.wait()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalWorkerPool, Path]]:
    root = tmp_path_factory.mktemp("shared")
    pool = LocalExecutor().open_pool(make_spec(root, concurrency=2), make_job(root), 2)
    pids = list(pool.pids().values())
    try:
        yield pool, root
    finally:
        pids += pool.pids().values()
        pool.close()
    assert all(gone(pid) for pid in pids)


@pytest.fixture
def pool_and_root(shared: tuple[LocalWorkerPool, Path]) -> Iterator[tuple[LocalWorkerPool, Path]]:
    """The shared pool; whatever a test leaves in flight is collected after it."""
    pool, root = shared
    yield pool, root
    if pool.running():
        collect(pool, len(pool.running()), within=70)


def test_pool_conforms_to_the_executor_protocol(tmp_path: Path) -> None:
    executor: Executor = LocalExecutor()
    assert executor.name == "local"
    with pytest.raises(ValueError, match="at least 1 worker"):
        executor.open_pool(make_spec(tmp_path), make_job(tmp_path), 0)


def test_scores_files_into_part_files_in_order(
    pool_and_root: tuple[LocalWorkerPool, Path],
) -> None:
    pool, root = pool_and_root
    data = root / "data-order"
    first = write_file(data, "a.txt", "a1", "a2")
    second = write_file(data, "b.txt", "b1")
    third = write_file(data, "c.txt", "c1", "c2", "c3")
    assert (pool.size, pool.idle(), pool.running()) == (2, 2, [])
    started = time.monotonic()
    assert pool.poll(0.2) == []  # nothing to wait for: it waits the whole timeout
    assert 0.2 <= time.monotonic() - started < 1

    pool.submit(task(0, first, second))
    pool.submit(task(1, third, attempt=2))
    assert pool.idle() == 0
    assert sorted(pool.running()) == [0, 1]
    with pytest.raises(RuntimeError, match="no idle worker"):
        pool.submit(task(2, first))
    results = collect(pool, 2)

    assert [(r.index, r.attempt, r.ok, r.items_succeeded) for r in results] == [
        (0, 1, True, 3),
        (1, 2, True, 3),
    ]
    parts = root / "parts"
    assert [r.part_path for r in results] == [str(part_path(str(parts), i)) for i in (0, 1)]
    assert part_path(str(parts), 0).read_text() == "a.txt a1\na.txt a2\nb.txt b1\n"
    assert part_path(str(parts), 1).read_text() == "c.txt c1\nc.txt c2\nc.txt c3\n"
    assert {r.worker for r in results} == {"worker-0", "worker-1"}
    # Both answered in milliseconds: each may now be sent several before it answers.
    assert pool.running() == [] and 2 < pool.idle() <= 2 * QUEUE_DEPTH


def test_run_that_raises_gives_a_run_error_with_the_user_traceback(
    pool_and_root: tuple[LocalWorkerPool, Path],
) -> None:
    pool, root = pool_and_root
    pool.submit(task(10, write_file(root / "data-raise", "raise-me.txt", "x")))
    (result,) = collect(pool, 1)

    assert (result.ok, result.failure, result.index) == (False, FailureKind.RUN_ERROR, 10)
    assert result.error_type == "ValueError"
    assert result.error_message == "cannot score raise-me.txt"
    assert result.traceback is not None
    assert result.traceback.startswith("Traceback (most recent call last):")
    assert "score.py" in result.traceback and "in run" in result.traceback
    assert "sluiceway/runtime" not in result.traceback  # it starts at the user's code
    assert result.part_path is None
    assert not part_path(str(root / "parts"), 10).exists()


def test_run_returning_an_int_gives_the_contract_message(
    pool_and_root: tuple[LocalWorkerPool, Path],
) -> None:
    pool, root = pool_and_root
    pool.submit(task(11, write_file(root / "data-int", "int.txt", "x")))
    (result,) = collect(pool, 1)

    assert (result.ok, result.failure) == (False, FailureKind.RUN_ERROR)
    assert result.error_type == "TypeError"
    assert result.error_message == RESULT_TYPE_MESSAGE


def test_worker_sees_the_model_and_output_folders_and_logs_its_output(
    pool_and_root: tuple[LocalWorkerPool, Path],
) -> None:
    pool, root = pool_and_root
    pool.submit(task(12, write_file(root / "data-env", "env.txt")))
    (result,) = collect(pool, 1)

    assert result.ok, result
    model_dir, output_dir = part_path(str(root / "parts"), 12).read_text().splitlines()
    assert model_dir == str(root / "model")
    # The pool's link to the job's output folder, so a path kept from init() follows the job.
    assert output_dir == str(pool.output_link)
    assert Path(output_dir).resolve() == (root / "score").resolve()
    log = stdout_log_path(str(root / "logs"), result.worker).read_text()
    assert f"init in {pool.pids()[result.worker]}" in log


def thread_counts(pool: WorkerPool, root: Path) -> list[str]:
    """The thread variables a worker of ``pool`` (a job rooted at ``root``) sees."""
    pool.submit(task(13, write_file(root / "data-threads", "threads.txt")))
    (result,) = collect(pool, 1)
    assert result.ok, result
    return part_path(str(root / "parts"), 13).read_text().splitlines()


def test_each_worker_gets_its_share_of_the_cores_as_thread_counts(
    pool_and_root: tuple[LocalWorkerPool, Path],
) -> None:
    pool, root = pool_and_root
    share = threads_per_worker(2, machine_cores())  # the shared pool's concurrency
    assert thread_counts(pool, root) == [
        f"OMP_NUM_THREADS={share}",
        f"OPENBLAS_NUM_THREADS={share}",
        f"MKL_NUM_THREADS={share}",
    ]


def test_a_deployment_sets_its_own_thread_counts_and_shares_count_its_concurrency(
    tmp_path: Path,
) -> None:
    spec = make_spec(tmp_path, environment_variables={"OMP_NUM_THREADS": "3"}, concurrency=4)
    with LocalExecutor().open_pool(spec, make_job(tmp_path), 1) as pool:
        found = thread_counts(pool, tmp_path)
    share = threads_per_worker(4, machine_cores())
    assert found == [
        "OMP_NUM_THREADS=3",
        f"OPENBLAS_NUM_THREADS={share}",
        f"MKL_NUM_THREADS={share}",
    ]


def test_without_the_deployments_concurrency_the_libraries_choose(tmp_path: Path) -> None:
    with LocalExecutor().open_pool(make_spec(tmp_path), make_job(tmp_path), 1) as pool:
        assert thread_counts(pool, tmp_path) == [
            "OMP_NUM_THREADS=None",
            "OPENBLAS_NUM_THREADS=None",
            "MKL_NUM_THREADS=None",
        ]


def test_timeout_kills_the_worker_and_a_new_one_takes_over(
    pool_and_root: tuple[LocalWorkerPool, Path],
) -> None:
    pool, root = pool_and_root
    job = make_job(root)
    before = pool.pids()
    started = time.monotonic()
    pool.submit(task(13, write_file(root / "data-sleep", "sleep.txt"), timeout=1))
    (result,) = collect(pool, 1)

    assert 1 <= time.monotonic() - started < 5
    assert (result.ok, result.failure, result.index) == (False, FailureKind.TIMEOUT, 13)
    assert result.error_message == "mini-batch 13 timed out after 1 s"
    assert result.duration >= 1
    assert gone(before[result.worker])
    replacement = pool.pids()[result.worker]  # the slot keeps its name
    assert replacement != before[result.worker]
    wait_for(lambda: replacement in inits(job), "the replacement's init()")

    data = root / "data-after-timeout"
    pool.submit(task(14, write_file(data, "x.txt", "x")))
    pool.submit(task(15, write_file(data, "y.txt", "y")))
    results = collect(pool, 2)
    assert all(r.ok for r in results), results
    assert part_path(str(root / "parts"), 15).read_text() == "y.txt y\n"


def test_a_worker_that_dies_is_reported_and_replaced(
    pool_and_root: tuple[LocalWorkerPool, Path],
) -> None:
    pool, root = pool_and_root
    before = pool.pids()
    pool.submit(task(16, write_file(root / "data-exit", "exit.txt")))
    (result,) = collect(pool, 1)

    assert (result.ok, result.failure, result.index) == (False, FailureKind.WORKER_DIED, 16)
    assert result.error_message is not None
    assert "exit code 3" in result.error_message
    assert "mini-batch 16" in result.error_message
    assert result.traceback is not None and "init in" in result.traceback  # the log's tail
    assert pool.pids()[result.worker] != before[result.worker]

    data = root / "data-after-exit"
    pool.submit(task(17, write_file(data, "x.txt", "x")))
    pool.submit(task(18, write_file(data, "y.txt", "y")))
    assert all(r.ok for r in collect(pool, 2))


def test_a_worker_with_short_mini_batches_is_sent_more_and_its_replacement_takes_them_over(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    with LocalExecutor().open_pool(make_spec(tmp_path), make_job(tmp_path), 1) as pool:
        pool.submit(task(0, write_file(data, "first.txt", "f")))
        assert pool.idle() == 0  # how long its mini-batches take is not known yet
        collect(pool, 1)
        assert 5 <= pool.idle() <= QUEUE_DEPTH  # a mini-batch of milliseconds

        for index in range(1, 6):
            pool.submit(task(index, write_file(data, f"q{index}.txt", f"q{index}")))
        assert pool.running() == [1, 2, 3, 4, 5]
        results = collect(pool, 5)
        assert [(r.index, r.ok, r.worker) for r in results] == [
            (i, True, "worker-0") for i in range(1, 6)
        ]
        assert part_path(str(tmp_path / "parts"), 4).read_text() == "q4.txt q4\n"

        # It dies on the first; the two it had not started go to its replacement, and keep
        # their attempt.
        before = pool.pids()["worker-0"]
        pool.submit(task(6, write_file(data, "exit.txt")))
        pool.submit(task(7, write_file(data, "a.txt", "a")))
        pool.submit(task(8, write_file(data, "b.txt", "b")))
        died, after, later = collect(pool, 3)
        assert (died.index, died.failure) == (6, FailureKind.WORKER_DIED)
        assert died.error_message is not None and "while running mini-batch 6" in died.error_message
        assert [(r.index, r.ok, r.attempt) for r in (after, later)] == [(7, True, 1), (8, True, 1)]
        assert pool.pids()["worker-0"] != before
        assert part_path(str(tmp_path / "parts"), 8).read_text() == "b.txt b\n"


def test_a_mini_batch_sent_behind_one_that_times_out_keeps_its_own_time(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with LocalExecutor().open_pool(make_spec(tmp_path), make_job(tmp_path), 1) as pool:
        pool.submit(task(0, write_file(data, "first.txt", "f")))
        collect(pool, 1)
        pool.submit(task(1, write_file(data, "sleep.txt"), timeout=1))
        # Its clock starts when the worker starts it: after the replacement's init().
        pool.submit(task(2, write_file(data, "next.txt", "n"), timeout=1))
        timed_out, behind = collect(pool, 2)

    assert (timed_out.failure, timed_out.error_message) == (
        FailureKind.TIMEOUT,
        "mini-batch 1 timed out after 1 s",
    )
    assert (behind.index, behind.ok, behind.attempt) == (2, True, 1)


def test_init_failure_answers_every_task_with_an_init_error(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, environment_variables={"FAIL_INIT": "1"})
    file = write_file(tmp_path / "data", "a.txt", "a")
    with LocalExecutor().open_pool(spec, make_job(tmp_path), 1) as pool:
        pool.submit(task(0, file))
        (first,) = collect(pool, 1)
        pool.submit(task(1, file))
        (second,) = collect(pool, 1)
        errors = pool.init_errors()

    for result in (first, second):
        assert (result.ok, result.failure) == (False, FailureKind.INIT_ERROR)
        assert (result.error_type, result.error_message) == ("RuntimeError", "no model here")
        assert result.traceback is not None
        assert "in init" in result.traceback and "in load_model" in result.traceback
    assert [(e.worker, e.init_error is not None) for e in errors] == [("worker-0", True)]
    assert len(inits(make_job(tmp_path))) == 1  # the worker stays up; init() ran once


def test_timeout_clock_starts_when_init_is_done(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, environment_variables={"INIT_SLEEP": "1.5"})
    with LocalExecutor().open_pool(spec, make_job(tmp_path), 1) as pool:
        # Sent while the worker is still in init(), which alone takes longer than the timeout.
        pool.submit(task(0, write_file(tmp_path / "data", "a.txt", "a"), timeout=1))
        (result,) = collect(pool, 1)
    assert result.ok, result
    assert pool.init_errors() == []


def test_init_timeout_replaces_a_worker_stuck_in_init(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, environment_variables={"INIT_SLEEP": "60"})
    with LocalExecutor(init_timeout=0.5).open_pool(spec, make_job(tmp_path), 1) as pool:
        first = pool.pids()["worker-0"]
        pool.submit(task(0, write_file(tmp_path / "data", "a.txt", "a")))
        (result,) = collect(pool, 1)
        assert (result.failure, result.error_type) == (FailureKind.INIT_ERROR, "TimeoutError")
        assert result.error_message == "worker-0 did not finish init() within 0.5 s"
        assert pool.init_errors()[0].worker == "worker-0"
        assert gone(first)
        assert pool.pids()["worker-0"] != first
        pool.close(kill=True)


def test_close_kills_busy_workers_and_what_their_scripts_started(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    pool = LocalExecutor(grace_period=0.5).open_pool(spec, make_job(tmp_path), 1)
    worker = pool.pids()["worker-0"]
    pool.submit(task(0, write_file(tmp_path / "data", "child.txt")))
    child_pid_file = tmp_path / "score" / "child.pid"
    wait_for(lambda: child_pid_file.exists() and child_pid_file.read_text(), "the child process")
    child = int(child_pid_file.read_text())

    started = time.monotonic()
    pool.close()  # graceful: the worker is busy, so it is terminated after the grace period
    assert time.monotonic() - started < 4
    assert gone(worker) and gone(child)
    assert (pool.closed, pool.idle(), pool.pids()) == (True, 0, {})
    pool.close()  # again: nothing happens
    pool.close(kill=True)
    with pytest.raises(RuntimeError, match="closed"):
        pool.submit(task(1, "x"))
    with pytest.raises(RuntimeError, match="closed"):
        pool.poll(0)


def test_context_manager_closes_idle_workers_and_kills_on_error(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    executor = LocalExecutor()
    with executor.open_pool(spec, make_job(tmp_path), 1) as pool:
        idle = pool.pids()["worker-0"]
        wait_for(lambda: idle in inits(make_job(tmp_path)), "init()")
    assert gone(idle)

    with pytest.raises(KeyError), executor.open_pool(spec, make_job(tmp_path), 1) as pool:
        busy = pool.pids()["worker-0"]
        pool.submit(task(0, write_file(tmp_path / "data", "sleep.txt")))
        raise KeyError("the scheduler failed")
    assert gone(busy)


def test_mlflow_model_scored_without_a_script(tmp_path: Path, heart_model: TrainedModel) -> None:
    pd = pytest.importorskip("pandas")
    from sluiceway.examples import heart

    models = heart_model.wait()
    files = [str(p) for p in heart.write_unlabeled_folder(tmp_path / "data", 3, 7, seed=5)]
    bad = write_file(tmp_path / "data", "notes.txt", "not a table")
    spec = mlflow_spec(tmp_path, models)
    with LocalExecutor().open_pool(spec, make_job(tmp_path), 1) as pool:
        pool.submit(task(0, files[0], files[1], timeout=60))
        (first,) = collect(pool, 1, within=90)
        pool.submit(task(1, files[2]))
        (second,) = collect(pool, 1)
        pool.submit(task(2, bad))
        (unsupported,) = collect(pool, 1)

    assert (first.ok, first.items_succeeded, second.ok, second.items_succeeded) == (
        True,
        14,
        True,
        7,
    )
    names = ["row", "prediction", "file_name"]
    scored = pd.concat(
        [pd.read_csv(r.part_path, header=None, names=names, sep=" ") for r in (first, second)],
        ignore_index=True,
    )
    assert len(scored) == 21
    assert list(scored["file_name"]) == [Path(f).name for f in files for _ in range(7)]
    assert list(scored["row"]) == list(range(7)) * 3
    assert set(scored["prediction"]) <= {0, 1}
    labels = heart.generate_heart_frame(21, seed=5)[heart.HEART_TARGET]
    assert (scored["prediction"] == labels).mean() >= 0.6  # better than a coin flip

    assert (unsupported.ok, unsupported.failure) == (False, FailureKind.RUN_ERROR)
    assert unsupported.error_message == (
        f"Error processing input file: '{bad}'. File type 'txt' is not supported"
    )


def test_small_mini_batches_waiting_together_are_scored_in_one_go_as_each_alone(
    tmp_path: Path, heart_model: TrainedModel
) -> None:
    from sluiceway.examples import heart

    models = heart_model.wait()
    big = heart.write_unlabeled_folder(tmp_path / "big", 1, 3000, seed=2)[0]
    assert big.stat().st_size > 64 << 10  # scored on its own
    small = [str(p) for p in heart.write_unlabeled_folder(tmp_path / "small", 8, 3, seed=3)]
    batches = [small[i : i + 2] for i in range(0, 8, 2)]
    spec = mlflow_spec(tmp_path, models, logging_level="debug")
    job = make_job(tmp_path)
    with LocalExecutor().open_pool(spec, job, 1) as pool:
        for warm_up in (0, 1):  # the first predict() loads what it needs
            pool.submit(task(warm_up, small[0], timeout=60))
            collect(pool, 1, within=90)
        # The small ones wait while the worker scores the big file, then go together: as many
        # as the worker may hold besides the big one.
        count = min(pool.idle() - 1, len(batches))
        assert count >= 2, pool.idle()
        pool.submit(task(2, str(big)))
        for index, files in enumerate(batches[:count], 3):
            pool.submit(task(index, *files))
        together = collect(pool, 1 + count)[1:]
        for index, files in enumerate(batches[:count], 10):  # one at a time
            pool.submit(task(index, *files))
            collect(pool, 1)

    log = stdout_log_path(job.log_dir, "worker-0").read_text()
    indexes = range(3, 3 + count)
    assert f"mini-batches {', '.join(map(str, indexes))} scored together" in log
    assert [(r.index, r.ok, r.items_succeeded) for r in together] == [(i, True, 6) for i in indexes]
    parts = str(tmp_path / "parts")
    for index in indexes:
        assert part_path(parts, index).read_bytes() == part_path(parts, index + 7).read_bytes()
