"""Run one claimed pipeline job: its steps, in dependency order, on the executor of its
compute.

The job's spec holds every step (see ``services/pipeline_invoke.py``): its command, code folder,
inputs resolved to locations, literal values or other steps' outputs, and where each output
goes. The runner plans the steps into the database once, then starts each step whose inputs are
ready, up to ``max_concurrent_steps`` at a time, so independent steps run side by side.

A step starts through the executor (:meth:`~sluiceway.executors.base.Executor.start_step`),
from its data inputs as datastore locations. The ``local`` executor runs it as a process group
of this machine (``executors/local_steps.py``), its data made local here: data in a local
datastore is read in place, data in a remote datastore (Azure Blob, ADLS Gen2, S3, a storage
URL) is fetched when the step starts, only the files the input names, into
``<staging_dir>/<job>/steps/<step>/<input>/`` (``scheduler/staging.py``), and deleted when the
step ends; a remote code folder is fetched once per job. A ``ray`` compute's executor runs it
as a Ray actor on a node of the cluster, which fetches the data itself and sends the outputs
back (``executors/ray_steps.py``). Either way the command is turned into an argument list
(``runtime/command.py``) and started without a shell, and its stdout and stderr go to
``logs/steps/<step>/`` in the job's folder. The job's logs are written to its folder, or, when
that is remote, to a local mirror uploaded every ``LOG_UPLOAD_SECONDS`` while the job runs and
when the runner ends; a scheduler that takes the job over fetches them first and appends to
them (a step it runs again starts its stdout and stderr afresh). When a step exits 0, each
output folder is committed, file by file and never overwriting, to its datastore path, in any
datastore (a pipeline output's folder, or the job's ``steps/<step>/<output>/`` for one that
only feeds later steps, which then read it from there). When it fails, the job fails with its
exit code and the end of its stderr, and the steps that need it are skipped; other running
steps are stopped unless ``continue_on_step_failure`` lets the independent ones go on.

The runner reads the job's status about twice a second: a cancel request kills every running
step with what it started and ends the job ``Canceled``; a lost lease stops it without touching
the job. A graceful stop kills the running steps and hands the job back; steps that completed
keep their committed outputs and are not run again.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sluiceway.clock import utcnow
from sluiceway.environments.cache import BuildFailed, BuildState, FileResolver, JobEnvironments
from sluiceway.executors.base import (
    BuildsEnvironments,
    Executor,
    ExecutorUnavailable,
    Interpreter,
    StepData,
    StepFailed,
    StepLaunch,
    StepRun,
)
from sluiceway.runtime.command import literal_text
from sluiceway.runtime.step import stage_input
from sluiceway.scheduler.access import JobAccess, JobAccessRefused, check_access
from sluiceway.scheduler.lease import JobCanceled, JobLease, LeaseLost
from sluiceway.scheduler.runner import JobAborted
from sluiceway.scheduler.staging import JobStaging, RegisteredFilesChanged, StagingError
from sluiceway.schemas.jobs import JobStatus, StepStatus
from sluiceway.storage.locations import Location, Locations
from sluiceway.storage.paths import open_regular_file
from sluiceway.storage.redaction import describe_error, redact_text
from sluiceway.store.jobs import JobRecord, JobStore
from sluiceway.store.steps import StepStore

__all__ = ["PipelineRunner", "StepFailed", "stderr_tail"]

logger = logging.getLogger("sluiceway.scheduler")

POLL_SECONDS = 0.1  # how often it looks at its running steps
KILL_GRACE_SECONDS = 3.0  # between SIGTERM and SIGKILL of a step's process group
STDERR_TAIL_LINES = 20
STDERR_TAIL_CHARS = 4000

README = """\
Logs of a Sluiceway pipeline job.

job_progress_overview.txt   what the job did: each step started and ended (exit code, duration),
                            outputs committed, the result or error
sys/master_role.txt         the scheduler's record: claims, leases, steps started and stopped
steps/<step>/command.txt    the argument list the step ran (JSON), with its working folder
steps/<step>/stdout.txt     what the step's command printed
steps/<step>/stderr.txt     what it wrote to its error output
"""


class _Log:
    """Appends lines to the job's progress overview and the scheduler's record."""

    def __init__(self, job_name: str, folder: Path | None) -> None:
        self._job_name = job_name
        self._folder = folder

    def overview(self, message: str) -> None:
        logger.info("job %s: %s", self._job_name, message)
        self._append("job_progress_overview.txt", message)
        self._append("sys/master_role.txt", message)

    def scheduler(self, message: str) -> None:
        self._append("sys/master_role.txt", message)

    def _append(self, relative: str, message: str) -> None:
        if self._folder is None:
            return
        path = self._folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        stamp = utcnow().strftime("%Y-%m-%d %H:%M:%S")
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(f"{stamp} {message}\n")


def stderr_tail(path: Path) -> str:
    """The last lines of a step's stderr, small enough to keep in the job's error."""
    if not path.is_file():
        return ""
    with open(path, "rb") as fh:
        fh.seek(max(path.stat().st_size - STDERR_TAIL_CHARS * 4, 0))
        text = fh.read().decode("utf-8", errors="replace")
    tail = "\n".join(text.rstrip("\n").splitlines()[-STDERR_TAIL_LINES:])
    return tail[-STDERR_TAIL_CHARS:]


@dataclass
class _Running:
    """A step that runs."""

    spec: dict[str, Any]
    run: StepRun
    outputs: dict[str, Path]

    @property
    def name(self) -> str:
        return str(self.spec["name"])


class _StagedFiles:
    """The server's side of a step's data, for executors whose workers see its disk."""

    def __init__(self, runner: PipelineRunner) -> None:
        self._runner = runner

    def input(self, step: str, name: str, data: StepData) -> Path:
        target = self._runner._fetched(step) / name
        return stage_input(data.location, target, single=data.single, on_file=self.keep)

    def code(self, location: Location) -> Path:
        try:
            return self._runner._staging.folder(location)  # fetched once per job when remote
        except RegisteredFilesChanged as exc:
            raise StepFailed(str(exc)) from None
        except StagingError as exc:
            raise StepFailed(f"its code folder could not be fetched: {exc}") from None
        except Exception as exc:
            raise StepFailed(
                f"its code folder {location.uri} could not be read: {describe_error(exc)}"
            ) from None

    def keep(self) -> None:
        self._runner._lease.check_in()


class PipelineRunner:
    """Runs one pipeline job while holding its lease."""

    def __init__(
        self,
        job: JobRecord,
        *,
        store: JobStore,
        steps: StepStore,
        datastores: Locations,
        owner: str,
        lease: timedelta,
        stop: threading.Event,
        executor: Executor,
        access: JobAccess | None = None,
        environments: JobEnvironments | None = None,
    ) -> None:
        """Args:
        executor: Runs the steps: the executor of the job's compute.
        """
        self.job = job
        self._access = access
        self._environments = environments
        self._held: dict[str, contextlib.ExitStack] = {}  # each running step's environment
        # Steps' environments being built: here (a BuildState), or by the executor where the
        # step runs (the content hash; see BuildsEnvironments).
        self._building: dict[str, Future[BuildState] | Future[str]] = {}
        self._executor = executor
        self._store = store
        self._steps = steps
        self._datastores = datastores
        self._owner = owner
        self._stop = stop
        self._specs: dict[str, dict[str, Any]] = {s["name"]: s for s in job.spec["steps"]}
        settings = job.spec.get("settings") or {}
        self._parallel = max(1, int(settings.get("max_concurrent_steps") or 1))
        self._continue = bool(settings.get("continue_on_step_failure"))
        self._running: dict[str, _Running] = {}
        self._status: dict[str, StepStatus] = {}
        self._work: Path | None = None
        self._staging = JobStaging(datastores, job.name)
        # A remote job folder's logs go up every few seconds while the job runs (steps'
        # stdout and stderr among them), as a model job's do.
        self._lease = JobLease(store, job.name, owner, lease, checked=self._staging.upload_logs)
        folder = job.spec["job_folder"]
        self._job_folder = datastores.location(folder["datastore"], folder["path"])
        # The logs folder itself in a local datastore, else a local mirror uploaded every few
        # seconds and when the runner ends (``JobStaging.upload_logs``, ``close``).
        self._log_dir = self._staging.work_dir(self._job_folder.child("logs"))
        self._log = _Log(job.name, self._log_dir)
        self._files = _StagedFiles(self)

    # -- entry point ------------------------------------------------------------------------

    def nudge(self) -> None:
        """A cancel was requested: see it at the next check rather than when one is due."""
        self._lease.nudge()

    def run(self) -> None:
        name = self.job.name
        try:
            self._start_logs()
            self._log.scheduler(
                f"Claimed by scheduler {self._owner} with status {self.job.status.value}."
            )
            if self.job.status is JobStatus.CANCEL_REQUESTED:
                raise JobCanceled
            check_access(self._access, self.job, "start")
            self._steps.plan(name, [s["name"] for s in self.job.spec["steps"]])
            returned = self._steps.reset_unfinished(name)
            if returned:
                self._log.overview(f"Resuming: {returned} steps that were running start again.")
            self._lease.set_status(JobStatus.RUNNING)
            self._work = Path(tempfile.mkdtemp(prefix=f"sluiceway-{name}-"))
            if not self._run_steps():
                self._hand_back()
                return
            self._finish()
        except LeaseLost:
            self._kill_all(None)
            logger.info("job %s: lease lost, stopping", name)
            self._log.scheduler("The lease was lost; another scheduler runs the job now.")
        except JobCanceled:
            self._cancel()
        except JobAborted as exc:
            self._kill_all(StepStatus.CANCELED)
            self._fail(exc.code, exc.message, exc.details)
        except JobAccessRefused as exc:
            self._kill_all(StepStatus.CANCELED)
            self._fail("Forbidden", str(exc))
        except ExecutorUnavailable as exc:
            self._kill_all(StepStatus.CANCELED)
            self._fail("ComputeUnavailable", str(exc))
        except Exception as exc:  # a fault of ours: the job fails with it, the server goes on
            logger.exception("job %s failed unexpectedly", name)
            self._kill_all(StepStatus.CANCELED)
            self._fail("SystemError", describe_error(exc))
        finally:
            for hold in self._held.values():
                hold.close()
            self._held.clear()
            if self._work is not None:
                shutil.rmtree(self._work, ignore_errors=True)
            self._staging.close()

    @property
    def _logs(self) -> Path:
        return self._log_dir

    def _start_logs(self) -> Path:
        self._log_dir.mkdir(parents=True, exist_ok=True)
        readme = self._log_dir / "readme.txt"
        if not readme.exists():
            readme.write_text(README, encoding="utf-8")
        return self._log_dir

    # -- the steps --------------------------------------------------------------------------

    def _run_steps(self) -> bool:
        """Run steps until none is left to run; False when the scheduler is stopping."""
        self._status = {s.name: s.status for s in self._steps.steps(self.job.name)}
        failed = any(s is StepStatus.FAILED for s in self._status.values())
        while True:
            self._lease.check_in()
            if self._stop.is_set():
                self._kill_all(StepStatus.NOT_STARTED)
                return False
            failed = self._reap() or failed
            if failed and not self._continue:
                self._kill_all(StepStatus.CANCELED, reason="another step failed")
                self._skip(everything=True)
                return True
            self._skip(everything=False)
            ready = [
                name
                for name, status in self._status.items()
                if status is StepStatus.NOT_STARTED
                and all(
                    self._status[d] is StepStatus.COMPLETED for d in self._specs[name]["depends_on"]
                )
            ]
            # A step whose environment is being built waits for it, off this thread.
            startable = [n for n in ready if self._environment_built(n, self._specs[n])]
            for name in startable[: max(self._parallel - len(self._running), 0)]:
                if not self._start(self._specs[name]):
                    failed = True
                    if not self._continue:
                        break
            if not self._running:
                if all(status.is_done for status in self._status.values()):
                    return True
                if not ready and not failed:
                    waiting = [n for n, s in self._status.items() if not s.is_done]
                    raise JobAborted("SystemError", f"Steps {', '.join(waiting)} can never start.")
            time.sleep(POLL_SECONDS)

    def _set_step(
        self,
        name: str,
        status: StepStatus,
        *,
        exit_code: int | None = None,
        error: dict[str, Any] | None = None,
    ) -> None:
        self._steps.finish(self.job.name, name, status, exit_code=exit_code, error=error)
        self._status[name] = status

    def _skip(self, *, everything: bool) -> None:
        """Mark the steps that will never run: those that need a step that did not complete,
        or, with ``everything``, all that have not started."""
        changed = True
        while changed:
            changed = False
            for name, current in self._status.items():
                if current is not StepStatus.NOT_STARTED:
                    continue
                blocked = [
                    d
                    for d in self._specs[name]["depends_on"]
                    if self._status[d]
                    in (StepStatus.FAILED, StepStatus.SKIPPED, StepStatus.CANCELED)
                ]
                if not blocked and not everything:
                    continue
                reason = (
                    f"step {blocked[0]!r} did not complete"
                    if blocked
                    else "the job stopped after a step failed"
                )
                self._set_step(
                    name,
                    StepStatus.SKIPPED,
                    error={"code": "Skipped", "message": f"Not run: {reason}."},
                )
                self._log.overview(f"Step {name} skipped: {reason}.")
                changed = True

    def _start(self, spec: dict[str, Any]) -> bool:
        """Start a step's process; False when it could not start (the step failed)."""
        name = str(spec["name"])
        assert self._work is not None
        work = self._work / name
        shutil.rmtree(work, ignore_errors=True)
        log_dir = self._logs / "steps" / name
        log_dir.mkdir(parents=True, exist_ok=True)
        self._steps.start(self.job.name, name)
        self._status[name] = StepStatus.RUNNING
        try:
            interpreter, built_there = self._environment(name, spec)
            launch = self._launch(spec, work, log_dir, interpreter, built_there)
            run = self._executor.start_step(launch, self._files)
        except StepFailed as exc:
            self._release(name)
            message = f"Step {name!r} could not start: {exc}"
            self._set_step(name, StepStatus.FAILED, error={"code": "UserError", "message": message})
            self._log.overview(message)
            return False
        except ExecutorUnavailable as exc:
            self._release(name)
            error = {"code": "ComputeUnavailable", "message": str(exc)}
            self._set_step(name, StepStatus.FAILED, error=error)
            raise
        except JobCanceled:  # while its data was fetched, or its actor placed
            self._release(name)
            error = {"code": "Canceled", "message": "Stopped: the job was canceled."}
            self._set_step(name, StepStatus.CANCELED, error=error)
            raise
        except BaseException:
            self._release(name)
            raise
        self._running[name] = _Running(spec, run, launch.output_folders())
        self._log.overview(f"Step {name} started ({run.where}).")
        return True

    def _environment_built(self, name: str, spec: dict[str, Any]) -> bool:
        """Whether the step can start as far as its environment goes: it has none, or its
        build ended (failed builds too: the step's start says why). Starts the build, on a
        thread of its own, the first time: here, or, for an executor whose steps run
        elsewhere (a Ray cluster), where they run."""
        content = spec.get("environment")
        if not content or self._environments is None:
            return True
        building = self._building.get(name)
        if building is None:
            if isinstance(self._executor, BuildsEnvironments):
                self._log.overview(
                    f"Step {name}: waiting for the build of environment {content['hash']} on "
                    "the compute's nodes."
                )
                building = self._executor.prepare_environment(content, self._environments.files)
            else:
                self._log.overview(
                    f"Step {name}: waiting for the build of environment {content['hash']}."
                )
                building = self._environments.start(content)
            self._building[name] = building
        return building.done()

    def _environment(
        self, name: str, spec: dict[str, Any]
    ) -> tuple[Interpreter | None, str | None]:
        """The interpreter of the step's environment, built first if it is not, held until
        the step ends (None for the server's own); or, for an executor that built it where the
        step runs, its content hash there."""
        note = spec.get("environment_note")
        if note:
            self._log.overview(f"Step {name}: {note}")
        content = spec.get("environment")
        if not content:
            return None, None
        if self._environments is None:
            raise StepFailed("its component names an environment, and this scheduler builds none")
        try:
            if isinstance(self._executor, BuildsEnvironments):
                return None, self._built_there(name, content, self._environments.files)
            self._log.overview(f"Step {name}: getting the build of environment {content['hash']}.")
            hold = contextlib.ExitStack()
            interpreter = hold.enter_context(self._environments.use(content))
        except BuildFailed as exc:
            raise StepFailed(f"its environment could not be built:\n{exc.tail}") from None
        self._held[name] = hold
        return interpreter, None

    def _built_there(self, name: str, content: dict[str, Any], files: FileResolver) -> str:
        """The content hash of the step's environment, once the executor built it where the
        step runs (:meth:`_environment_built` started the build and saw it end; else it is
        waited for here, keeping the lease and seeing a cancel)."""
        assert isinstance(self._executor, BuildsEnvironments)
        building = self._building.pop(name, None)
        if building is None:
            building = self._executor.prepare_environment(content, files)
        while True:
            self._lease.check_in()
            try:
                built = building.result(timeout=POLL_SECONDS)
            except TimeoutError:
                continue
            assert isinstance(built, str)
            self._log.overview(
                f"Step {name}: environment {built} built on the compute's nodes; the step runs "
                "its interpreter there."
            )
            return built

    def _launch(
        self,
        spec: dict[str, Any],
        work: Path,
        log_dir: Path,
        interpreter: Interpreter | None,
        built_there: str | None = None,
    ) -> StepLaunch:
        """What the executor needs to start the step: its data inputs as locations, and its
        outputs kept between steps emptied."""
        literals: dict[str, str] = {}
        data: dict[str, StepData] = {}
        for input_name, value in spec["inputs"].items():
            if value["type"] == "literal":
                literals[input_name] = literal_text(value["value"])
                continue
            if value["type"] == "step_output":
                producer = self._specs[value["step"]]["outputs"][value["output"]]
                location = self._datastores.location(producer["datastore"], producer["path"])
                single = False
            else:
                location = self._datastores.stored_location(value)
                single = value["type"] == "uri_file" or (
                    value["type"] != "uri_folder" and self._is_file(location)
                )
            data[input_name] = StepData(location, single)
        for target in spec["outputs"].values():
            if target.get("pipeline_output") is None:
                # An output kept between steps is the job's own: a rerun (after a takeover, say)
                # starts it afresh.
                own = self._datastores.location(target["datastore"], target["path"])
                local = own.local_path()
                if local is not None:
                    shutil.rmtree(local, ignore_errors=True)
                elif own.exists():
                    own.backend.fs.rm(own.full_path, recursive=True)
        code = None
        if spec.get("code"):
            code = self._datastores.location(spec["code"]["datastore"], spec["code"]["path"])
        return StepLaunch(
            job_name=self.job.name,
            name=str(spec["name"]),
            command=str(spec["command"]),
            literals=literals,
            data=data,
            outputs=tuple(spec["outputs"]),
            code=code,
            environment_variables=dict(spec.get("environment_variables") or {}),
            interpreter=interpreter,
            work_dir=str(work),
            log_dir=str(log_dir),
            environment=built_there,
        )

    def _fetched(self, step: str) -> Path:
        """Where a step's remote inputs are fetched; deleted when the step ends."""
        return self._staging.root / "steps" / step

    def _release(self, step: str) -> None:
        shutil.rmtree(self._fetched(step), ignore_errors=True)
        hold = self._held.pop(step, None)
        if hold is not None:
            hold.close()

    def _is_file(self, location: Location) -> bool:
        try:
            return location.is_file()
        except Exception as exc:
            raise StepFailed(f"{location.uri} could not be read: {describe_error(exc)}") from None

    def _reap(self) -> bool:
        """Record the steps whose processes ended; True when one of them failed."""
        failed = False
        for name, running in list(self._running.items()):
            code = running.run.poll()
            if code is None:
                continue
            del self._running[name]
            self._release(name)
            if code == 0:
                try:
                    check_access(self._access, self.job, f"commit the outputs of step {name!r}")
                except JobAccessRefused as exc:
                    error = {"code": "Forbidden", "message": str(exc)}
                    self._set_step(name, StepStatus.FAILED, exit_code=0, error=error)
                    raise
                try:
                    self._commit(running)
                except StepFailed as exc:
                    message = f"Step {name!r} exited 0, but its outputs were not committed: {exc}"
                    self._set_step(
                        name,
                        StepStatus.FAILED,
                        exit_code=0,
                        error={"code": "UserError", "message": message},
                    )
                    self._log.overview(message)
                    failed = True
                    continue
                self._set_step(name, StepStatus.COMPLETED, exit_code=0)
                self._log.overview(f"Step {name} completed (exit code 0).")
                continue
            failed = True
            tail = stderr_tail(self._logs / "steps" / name / "stderr.txt")
            how = f"was killed by signal {-code}" if code < 0 else f"failed with exit code {code}"
            message = f"Step {name!r} {how}."
            if tail:
                message += f" The end of its stderr:\n{tail}"
            self._set_step(
                name,
                StepStatus.FAILED,
                exit_code=code,
                error={"code": "UserError", "message": message, "stderr_tail": tail},
            )
            self._log.overview(f"Step {name} {how}.")
        return failed

    def _commit(self, running: _Running) -> None:
        """Copy each output folder's files to its datastore path, never overwriting a file."""
        for output_name, folder in running.outputs.items():
            target = running.spec["outputs"][output_name]
            location = self._datastores.location(target["datastore"], target["path"])
            files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
            local = location.local_path()
            if local is not None:
                local.mkdir(parents=True, exist_ok=True)
            for path in files:
                self._lease.keep()
                relative = path.relative_to(folder).as_posix()
                try:
                    location.child(relative).write_stream(_chunks(path, folder), overwrite=False)
                except FileExistsError:
                    raise StepFailed(
                        f"output {output_name!r}: {location.child(relative).uri} already "
                        "exists, and outputs are never overwritten"
                    ) from None
            self._log.overview(
                f"Step {running.name}: output {output_name} committed to {location.uri} "
                f"({len(files)} files)."
            )

    # -- stopping steps ---------------------------------------------------------------------

    def _kill_all(self, status: StepStatus | None, reason: str | None = None) -> None:
        """Stop every running step's process group.

        The steps are recorded as ``status``: ``NotStarted`` to run again later, ``Canceled``;
        None leaves their rows alone (another scheduler owns the job now).
        """
        running = list(self._running.values())
        self._running.clear()
        for step in running:
            step.run.terminate()
        deadline = time.monotonic() + KILL_GRACE_SECONDS
        for step in running:
            step.run.kill(deadline)
            self._release(step.name)
            self._log.overview(f"Step {step.name} stopped ({step.run.where}).")
        if status is None or not running:
            return
        if status is StepStatus.NOT_STARTED:
            self._steps.reset_unfinished(self.job.name)
            return
        why = reason or "the job was canceled"
        for step in running:
            self._set_step(
                step.name, status, error={"code": status.value, "message": f"Stopped: {why}."}
            )

    # -- endings ----------------------------------------------------------------------------

    def _finish(self) -> None:
        steps = self._steps.steps(self.job.name)
        failed = [s for s in steps if s.status is StepStatus.FAILED]
        if not failed:
            self._log.overview("Job completed: every step completed.")
            self._store.set_status(self.job.name, JobStatus.COMPLETED, owner=self._owner)
            return
        first = min(failed, key=lambda s: (s.ended_at is None, s.ended_at, s.index))
        message = str((first.error or {}).get("message") or f"Step {first.name!r} failed.")
        if len(failed) > 1:
            message += f" ({len(failed)} steps failed: {', '.join(s.name for s in failed)}.)"
        details = [
            {
                "step": s.name,
                "exit_code": s.exit_code,
                "message": (s.error or {}).get("message"),
                "stderr_tail": (s.error or {}).get("stderr_tail"),
            }
            for s in failed
        ]
        self._fail("UserError", message, details)

    def _fail(self, code: str, message: str, details: list[dict[str, Any]] | None = None) -> None:
        message = redact_text(message)
        self._log.overview(f"Job failed: {message}")
        self._store.set_status(
            self.job.name,
            JobStatus.FAILED,
            owner=self._owner,
            error={"code": code, "message": message, "details": details or []},
        )

    def _cancel(self) -> None:
        self._kill_all(StepStatus.CANCELED)
        for step in self._steps.steps(self.job.name):
            if step.status is StepStatus.NOT_STARTED:
                self._set_step(
                    step.name,
                    StepStatus.CANCELED,
                    error={"code": "Canceled", "message": "Not run: the job was canceled."},
                )
        if self._store.set_status(self.job.name, JobStatus.CANCELED, owner=self._owner):
            self._log.overview("Job canceled; its running steps were stopped.")

    def _hand_back(self) -> None:
        self._store.release(self.job.name, self._owner)
        self._log.overview(
            "Scheduler stopping: the job is handed back; completed steps are not run again."
        )


def _chunks(path: Path, folder: Path) -> Iterator[bytes]:
    """The bytes of a file a step wrote into ``folder`` (never a link out of it)."""
    try:
        file = open_regular_file(path, within=folder)
    except OSError as exc:
        raise StepFailed(f"{path} cannot be read: {exc.strerror}") from None
    with file as fh:
        while chunk := fh.read(1 << 20):
            yield chunk
