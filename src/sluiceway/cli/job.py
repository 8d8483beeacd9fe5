"""``sluice job``: show, list, stream, cancel and download batch jobs, read their logs and
rerun the files that failed.

``job download -n J --output-name score --download-path DIR`` writes
``DIR/named-outputs/score/<files>``, as ``az ml job download`` does.
"""

from __future__ import annotations

import argparse
import sys

from sluiceway.cli.arguments import Subcommands, add_command, add_group, positive_int
from sluiceway.cli.context import CommandContext
from sluiceway.cli.output import print_error, print_note, resource_json, resources_json


def follow(context: CommandContext, name: str) -> int:
    """Stream a job until it ends; 0 when it completed, 1 (with the job's error) otherwise."""
    from sluiceway.schemas.jobs import JobStatus

    client = context.client
    client.jobs.stream(name)
    job = resource_json(client.jobs.get(name))
    status = job.get("status")
    if status == JobStatus.COMPLETED:
        return 0
    error = job.get("error")
    detail = error.get("message") if isinstance(error, dict) else None
    print_error(f"Job {name} ended {status}" + (f": {detail}" if detail else "."))
    return 1


def show(args: argparse.Namespace, context: CommandContext) -> int:
    job = context.client.jobs.get(args.name)
    if job.studio_url:
        # On stderr, as `job stream` prints it first: stdout stays the job's JSON for jq.
        print_note(f"Web View: {job.studio_url}")
    context.emit(resource_json(job))
    return 0


def list_(args: argparse.Namespace, context: CommandContext) -> int:
    jobs = context.client.jobs.list(
        endpoint_name=args.endpoint_name,
        deployment_name=args.deployment_name,
        status=args.status,
        limit=args.max_results,
    )
    context.emit(resources_json(jobs))
    return 0


def job_status(value: str) -> str:
    """A ``--status`` value in the server's spelling (``failed`` -> ``Failed``)."""
    from sluiceway.schemas.jobs import JobStatus

    for status in JobStatus:
        if status.value.lower() == value.strip().lower():
            return status.value
    raise argparse.ArgumentTypeError(
        f"{value!r} is not a job status; use one of {', '.join(s.value for s in JobStatus)}"
    )


def stream(args: argparse.Namespace, context: CommandContext) -> int:
    return follow(context, args.name)


def cancel(args: argparse.Namespace, context: CommandContext) -> int:
    poller = context.client.jobs.begin_cancel(args.name)
    if args.wait:
        poller.wait()
    context.emit(resource_json(context.client.jobs.get(args.name)))
    return 0


def rerun_failed(args: argparse.Namespace, context: CommandContext) -> int:
    job = context.client.jobs.rerun_failed(args.name)
    print_note(f"Job {job.name} reruns the files that failed in job {args.name}.")
    context.emit(resource_json(job))
    return 0


def logs(args: argparse.Namespace, context: CommandContext) -> int:
    jobs = context.client.jobs
    if args.list:
        context.emit(jobs.list_logs(args.name))
        return 0
    if args.follow:
        for line in jobs.follow_log(args.name, args.path, poll_interval=args.poll_interval):
            print(line, flush=True)
        return 0
    sys.stdout.write(jobs.read_log(args.name, args.path))
    sys.stdout.flush()
    return 0


def download(args: argparse.Namespace, context: CommandContext) -> int:
    context.client.jobs.download(
        args.name, download_path=args.download_path, output_name=args.output_name, all=args.all
    )
    what = f"output {args.output_name!r}" if args.output_name else "the outputs"
    if args.all:
        what += " and logs"
    print_note(f"Downloaded {what} of job {args.name} into {args.download_path}")
    return 0


def register(subcommands: Subcommands, common: argparse.ArgumentParser) -> None:
    """Add the ``job`` group."""
    commands = add_group(subcommands, "job", "Follow batch jobs and download their outputs.")

    parser = add_command(commands, "show", "Show a job as JSON.", show, common)
    parser.add_argument("-n", "--name", required=True)

    parser = add_command(commands, "list", "List jobs, newest first.", list_, common)
    parser.add_argument("-e", "--endpoint-name", help="only this endpoint's jobs")
    parser.add_argument("-d", "--deployment-name", help="only this deployment's jobs")
    parser.add_argument(
        "--status", type=job_status, help="only jobs with this status, e.g. Running or Failed"
    )
    parser.add_argument(
        "-r", "--max-results", type=positive_int, metavar="N", help="at most N jobs (default: 100)"
    )

    parser = add_command(
        commands, "stream", "Follow a job's status and progress until it ends.", stream, common
    )
    parser.add_argument("-n", "--name", required=True)

    parser = add_command(
        commands,
        "cancel",
        "Cancel a job: a queued one at once, a running one once its workers are stopped.",
        cancel,
        common,
    )
    parser.add_argument("-n", "--name", required=True)
    parser.add_argument(
        "--wait", action="store_true", help="wait until the job has ended, then show it"
    )

    parser = add_command(
        commands,
        "rerun-failed",
        "Start a new job over exactly the files that failed in a job.",
        rerun_failed,
        common,
    )
    parser.add_argument("-n", "--name", required=True, help="the job whose failed files to rerun")

    parser = add_command(commands, "logs", "Print a job's log file.", logs, common)
    parser.add_argument("-n", "--name", required=True)
    parser.add_argument(
        "--path",
        default="job_progress_overview.txt",
        help="the log file, relative to the job's logs folder, e.g. user/error.txt or "
        "user/stdout/worker-0.txt (default: job_progress_overview.txt)",
    )
    parser.add_argument(
        "-f", "--follow", action="store_true", help="print new lines until the job ends"
    )
    parser.add_argument("--poll-interval", type=float, default=1.0, help=argparse.SUPPRESS)
    parser.add_argument("--list", action="store_true", help="list the job's log files instead")

    parser = add_command(commands, "download", "Download a job's outputs.", download, common)
    parser.add_argument("-n", "--name", required=True)
    parser.add_argument(
        "--output-name", help="the output to download, e.g. score (default: every output)"
    )
    parser.add_argument(
        "-p", "--download-path", default=".", help="the folder to download into (default: .)"
    )
    parser.add_argument("--all", action="store_true", help="download the job's logs too")
