"""Run one claimed pipeline job: its steps, in dependency order, as local processes.

The job's spec holds every step (see ``services/pipeline_invoke.py``): its command, code folder,
inputs resolved to locations, literal values or other steps' outputs, and where each output
goes. The runner plans the steps into the database once, then starts each step whose inputs are
ready, up to ``max_concurrent_steps`` at a time, so independent steps run side by side.

A step runs in a fresh work folder: its code folder is copied there, each output is a fresh,
empty folder, and its data inputs are local paths (:func:`stage_input`). Data in a local
datastore is read in place. Data in a remote datastore (Azure Blob, ADLS Gen2, S3, a storage
URL) is fetched when the step starts, only the files the input names, into
``<staging_dir>/<job>/steps/<step>/<input>/`` (``scheduler/staging.py``), and deleted when the
step ends; a remote code folder is fetched once per job. The job's logs are written to its
folder, or, when that is remote, to a local mirror uploaded when the runner ends. The command
is turned
into an argument list (``runtime/command.py``) and started without a shell, in a process group
of its own. Its stdout and stderr go to ``logs/steps/<step>/`` in the job's folder. When it
exits 0, each output folder is committed, file by file and never overwriting, to its datastore
path, in any datastore (a pipeline output's folder, or the job's ``steps/<step>/<output>/`` for
one that only feeds later steps, which then read it from there). When it fails, the job fails
with its exit code and the end of its stderr, and the steps that need it are skipped; other
running steps are stopped unless ``continue_on_step_failure`` lets the independent ones go on.

The runner reads the job's status about twice a second: a cancel request kills every running
step's process group and ends the job ``Canceled``; a lost lease stops it without touching the
job. A graceful stop kills the running steps and hands the job back; steps that completed keep
their committed outputs and are not run again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

from sluiceway.clock import utcnow
from sluiceway.environments.cache import BuildFailed, BuildState, JobEnvironments
from sluiceway.executors.base import Interpreter
from sluiceway.executors.isolation import WorkerIsolation
from sluiceway.runtime.command import CommandError, literal_text, parse_command, with_interpreter
from sluiceway.scheduler.access import JobAccess, JobAccessRefused, check_access
from sluiceway.scheduler.lease import JobCanceled, JobLease, LeaseLost
from sluiceway.scheduler.runner import JobAborted
from sluiceway.scheduler.staging import (
    JobStaging,
    RegisteredFilesChanged,
    StagingError,
    download,
)
from sluiceway.schemas.jobs import JobStatus, StepStatus
from sluiceway.storage.locations import Location, Locations
from sluiceway.storage.paths import open_regular_file
from sluiceway.storage.redaction import describe_error, redact_text
from sluiceway.store.jobs import JobRecord, JobStore
from sluiceway.store.steps import StepStore

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


class StepFailed(Exception):
    """A step could not start or could not commit its outputs; the message says why."""


def stage_input(
    location: Location, target: Path, *, single: bool, on_file: Callable[[], None] = lambda: None
) -> Path:
    """A local path a step reads an input from.

    This is the one place that decides how a step's data reaches it. Data in a local
    datastore is read in place. Data elsewhere is fetched into ``target``: a file (``single``)
    to ``target/<its name>``, whose path is returned, or a folder's files below ``target``.
    ``on_file`` is called before each file is fetched (the runner keeps its lease).

    Raises:
        StepFailed: the data could not be listed or fetched; the message names it.
    """
    local = location.local_path()
    if local is not None:
        return local
    shutil.rmtree(target, ignore_errors=True)
    try:
        if single:
            path = target / location.path.rsplit("/", 1)[-1]
            on_file()
            download(location, path)
            return path
        entries = location.list_files()
        target.mkdir(parents=True, exist_ok=True)
        for entry in entries:
            on_file()
            download(location.child(entry.path), target / entry.path)
    except StagingError as exc:
        raise StepFailed(str(exc)) from None
    except (LeaseLost, JobCanceled):
        raise
    except Exception as exc:
        raise StepFailed(f"{location.uri} could not be listed: {describe_error(exc)}") from None
    return target


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
    """A step whose process runs."""

    spec: dict[str, Any]
    process: subprocess.Popen[bytes]
    outputs: dict[str, Path]
    logs: list[IO[bytes]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    def close_logs(self) -> None:
        for fh in self.logs:
            with contextlib.suppress(OSError):
                fh.close()


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
        python: str | None = None,
        access: JobAccess | None = None,
        isolation: WorkerIsolation | None = None,
        environments: JobEnvironments | None = None,
    ) -> None:
        self.job = job
        self._access = access
        self._environments = environments
        self._held: dict[str, contextlib.ExitStack] = {}  # each running step's environment
        self._building: dict[str, Future[BuildState]] = {}  # steps' environments being built
        # Steps run as workers do: their own user, environment and view.
        self._isolation = isolation or WorkerIsolation()
        self._store = store
        self._steps = steps
        self._datastores = datastores
        self._owner = owner
        self._stop = stop
        self._python = python or self._isolation.python
        self._specs: dict[str, dict[str, Any]] = {s["name"]: s for s in job.spec["steps"]}
        settings = job.spec.get("settings") or {}
        self._parallel = max(1, int(settings.get("max_concurrent_steps") or 1))
        self._continue = bool(settings.get("continue_on_step_failure"))
        self._running: dict[str, _Running] = {}
        self._status: dict[str, StepStatus] = {}
        self._lease = JobLease(store, job.name, owner, lease)
        self._work: Path | None = None
        self._staging = JobStaging(datastores, job.name)
        folder = job.spec["job_folder"]
        self._job_folder = datastores.location(folder["datastore"], folder["path"])
        # The logs folder itself in a local datastore, else a local mirror uploaded when the
        # runner ends (``JobStaging.close``).
        self._log_dir = self._staging.work_dir(self._job_folder.child("logs"))
        self._log = _Log(job.name, self._log_dir)

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
            self._isolation.open_to_workers(self._work)
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
            interpreter = self._environment(name, spec)
            python = self._python if interpreter is None else interpreter.executable
            argv, cwd, outputs, reads = self._prepare(spec, work, python)
            (log_dir / "command.txt").write_text(
                json.dumps({"argv": argv, "cwd": str(cwd)}, indent=2) + "\n", encoding="utf-8"
            )
            # Closed when the step ends (_Running.close_logs).
            stdout = open(log_dir / "stdout.txt", "wb")
            stderr = open(log_dir / "stderr.txt", "wb")
            home = work / "home"
            self._isolation.give(work, recursive=True)  # its code, outputs and HOME
            self._isolation.give(home)
            variables = {**spec.get("environment_variables", {}), "PYTHONUNBUFFERED": "1"}
            env = self._isolation.environment(home, variables)
            needs: list[str | Path] = [work, *reads]
            if interpreter is not None:
                env = interpreter.activate(env)  # its python and commands come first
                needs += interpreter.paths
            try:
                process = subprocess.Popen(
                    self._isolation.command(argv, self._isolation.view(needs)),
                    cwd=cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=stdout,
                    stderr=stderr,
                    env=env,
                    start_new_session=True,  # its own process group, killed as a whole
                )
            except OSError as exc:
                stdout.close()
                stderr.close()
                raise StepFailed(f"its program {argv[0]!r} could not be started: {exc}") from None
        except StepFailed as exc:
            self._release(name)
            message = f"Step {name!r} could not start: {exc}"
            self._set_step(name, StepStatus.FAILED, error={"code": "UserError", "message": message})
            self._log.overview(message)
            return False
        self._running[name] = _Running(spec, process, outputs, [stdout, stderr])
        self._log.overview(f"Step {name} started (process {process.pid}).")
        return True

    def _environment_built(self, name: str, spec: dict[str, Any]) -> bool:
        """Whether the step can start as far as its environment goes: it has none, or its
        build ended (failed builds too: the step's start says why). Starts the build, on a
        thread of its own, the first time."""
        content = spec.get("environment")
        if not content or self._environments is None:
            return True
        building = self._building.get(name)
        if building is None:
            self._log.overview(
                f"Step {name}: waiting for the build of environment {content['hash']}."
            )
            building = self._building[name] = self._environments.start(content)
        return building.done()

    def _environment(self, name: str, spec: dict[str, Any]) -> Interpreter | None:
        """The interpreter of the step's environment, built first if it is not, held until
        the step ends; None for the server's own."""
        note = spec.get("environment_note")
        if note:
            self._log.overview(f"Step {name}: {note}")
        content = spec.get("environment")
        if not content:
            return None
        if self._environments is None:
            raise StepFailed("its component names an environment, and this scheduler builds none")
        self._log.overview(f"Step {name}: getting the build of environment {content['hash']}.")
        hold = contextlib.ExitStack()
        try:
            interpreter = hold.enter_context(self._environments.use(content))
        except BuildFailed as exc:
            raise StepFailed(f"its environment could not be built:\n{exc.tail}") from None
        self._held[name] = hold
        return interpreter

    def _prepare(
        self, spec: dict[str, Any], work: Path, python: str
    ) -> tuple[list[str], Path, dict[str, Path], list[Path]]:
        """The step's argument list, working folder, fresh output folders and the paths of
        its data inputs."""
        values: dict[str, str | None] = {}
        reads: list[Path] = []
        fetched = self._fetched(str(spec["name"]))
        for input_name, value in spec["inputs"].items():
            if value["type"] == "literal":
                values[input_name] = literal_text(value["value"])
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
            path = stage_input(
                location, fetched / input_name, single=single, on_file=self._lease.keep
            )
            values[input_name] = str(path)
            reads.append(path)
        outputs = {}
        for output_name, target in spec["outputs"].items():
            folder = work / "outputs" / output_name
            folder.mkdir(parents=True)
            outputs[output_name] = folder
            if target.get("pipeline_output") is None:
                # An output kept between steps is the job's own: a rerun (after a takeover, say)
                # starts it afresh.
                own = self._datastores.location(target["datastore"], target["path"])
                local = own.local_path()
                if local is not None:
                    shutil.rmtree(local, ignore_errors=True)
                elif own.exists():
                    own.backend.fs.rm(own.full_path, recursive=True)
        cwd = work / "code"
        if spec.get("code"):
            code = self._datastores.location(spec["code"]["datastore"], spec["code"]["path"])
            try:
                folder = self._staging.folder(code)  # fetched once per job when remote
            except RegisteredFilesChanged as exc:
                raise StepFailed(str(exc)) from None
            except StagingError as exc:
                raise StepFailed(f"its code folder could not be fetched: {exc}") from None
            except Exception as exc:
                raise StepFailed(
                    f"its code folder {code.uri} could not be read: {describe_error(exc)}"
                ) from None
            shutil.copytree(folder, cwd, symlinks=True)
        else:
            cwd.mkdir(parents=True)
        try:
            template = parse_command(str(spec["command"]))
            argv = template.render(values, {k: str(v) for k, v in outputs.items()})
        except CommandError as exc:
            raise StepFailed(f"its command cannot be run: {exc}") from None
        return with_interpreter(argv, python), cwd, outputs, reads

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
            code = running.process.poll()
            if code is None:
                continue
            running.close_logs()
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
            _signal_group(step.process, signal.SIGTERM)
        deadline = time.monotonic() + KILL_GRACE_SECONDS
        for step in running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                step.process.wait(max(deadline - time.monotonic(), 0.0))
            _signal_group(step.process, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                step.process.wait(5.0)
            step.close_logs()
            self._release(step.name)
            self._log.overview(f"Step {step.name} stopped (process {step.process.pid}).")
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


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def _chunks(path: Path, folder: Path) -> Iterator[bytes]:
    """The bytes of a file a step wrote into ``folder`` (never a link out of it)."""
    try:
        file = open_regular_file(path, within=folder)
    except OSError as exc:
        raise StepFailed(f"{path} cannot be read: {exc.strerror}") from None
    with file as fh:
        while chunk := fh.read(1 << 20):
            yield chunk
