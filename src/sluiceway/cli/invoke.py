"""``sluice batch-endpoint invoke``: start a batch job, as ``az ml batch-endpoint invoke`` does.

:mod:`sluiceway.cli.invocation` reads ``--input``, ``--set`` and ``--file`` into plain specs;
this module adds the overrides (``--mini-batch-size``, ``--instance-count``, ``--output-path``,
``--output-file-name``), turns the specs into SDK ``Input`` and ``Output`` objects and calls
``ml_client.batch_endpoints.invoke``. It prints the job's JSON, and with ``--stream`` follows
the job until it ends.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sluiceway.cli.arguments import Subcommands, add_command, parse_set_tokens, positive_int
from sluiceway.cli.context import CommandContext
from sluiceway.cli.output import resource_json
from sluiceway.errors import ValidationError

if TYPE_CHECKING:
    from sluiceway import Input, Output
    from sluiceway.cli.invocation import InputSpec, Invocation, OutputSpec

_OUTPUT_PATH = re.compile(r"(?:azureml:)?.*?/?datastores/(?P<name>[^/]+)/paths/(?P<path>.*)")


def read_invocation(args: argparse.Namespace) -> Invocation:
    """The invocation the arguments describe, without the override flags."""
    from sluiceway.cli.invocation import parse_invocation, read_invocation_file

    content = None
    base = None
    if args.file is not None:
        path = Path(args.file).expanduser()
        content = read_invocation_file(path)
        base = path.parent
    return parse_invocation(
        endpoint_name=args.name,
        deployment_name=args.deployment_name,
        input_path=args.input,
        input_type=args.input_type,
        set_values=parse_set_tokens(args.set or []),
        file_content=content,
        file_base=base,
    )


def output_override(output_path: str) -> list[dict[str, Any]]:
    """Azure's ``params_override`` entries for ``--output-path azureml://datastores/D/paths/P``.

    Raises:
        ValidationError: the path is not a datastore path.
    """
    match = _OUTPUT_PATH.fullmatch(output_path.strip())
    if match is None or not output_path.startswith(("azureml:", "/subscriptions/")):
        raise ValidationError(
            f"--output-path {output_path!r} is not accepted; use "
            "azureml://datastores/<datastore>/paths/<path> or <datastore id>/paths/<path>",
            target="output_path",
        )
    return [
        {"output_dataset.datastore_id": f"azureml:{match['name']}"},
        {"output_dataset.path": match["path"]},
    ]


def sdk_input(spec: InputSpec) -> Input:
    """The SDK ``Input`` for one input spec; no type takes a data asset's own type."""
    from sluiceway import Input

    if spec.is_literal:
        return Input(type=spec.type, default=spec.default, min=spec.min, max=spec.max)
    return Input(type=spec.type, path=spec.path, mode=spec.mode)


def sdk_output(spec: OutputSpec) -> Output:
    """The SDK ``Output`` for one output spec; no path means the server's default location."""
    from sluiceway import Output

    return Output(type=spec.type or "uri_folder", path=spec.path, mode=spec.mode)


def params_override(invocation: Invocation, args: argparse.Namespace) -> list[dict[str, Any]]:
    """``--set`` overrides first, then the flags, so a flag wins over a ``--set`` value."""
    overrides = list(invocation.params_override)
    if args.mini_batch_size is not None:
        overrides.append({"mini_batch_size": args.mini_batch_size})
    if args.instance_count is not None:
        overrides.append({"compute.instance_count": args.instance_count})
    if args.output_file_name is not None:
        overrides.append({"output_file_name": args.output_file_name})
    if args.output_path is not None:
        overrides.extend(output_override(args.output_path))
    return overrides


def invoke(args: argparse.Namespace, context: CommandContext) -> int:
    invocation = read_invocation(args)
    if invocation.endpoint_name is None:
        raise ValidationError(
            "batch-endpoint invoke needs --name ENDPOINT (or 'endpoint' in --file)", target="name"
        )
    inputs = {name: sdk_input(spec) for name, spec in invocation.inputs.items()}
    outputs = {name: sdk_output(spec) for name, spec in invocation.outputs.items()}
    overrides = params_override(invocation, args)
    job = context.client.batch_endpoints.invoke(
        endpoint_name=invocation.endpoint_name,
        deployment_name=invocation.deployment_name,
        inputs=inputs or None,
        input=None if invocation.input is None else sdk_input(invocation.input),
        outputs=outputs or None,
        job_name=args.job_name,
        experiment_name=args.experiment_name,
        params_override=overrides or None,
    )
    shown = resource_json(job)
    context.emit(shown)
    if not args.stream:
        return 0
    from sluiceway.cli.job import follow

    # The job's JSON alone stays on stdout, for `| jq -r .name`; the progress goes to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        return follow(context, str(shown["name"]))


def register(commands: Subcommands, common: argparse.ArgumentParser) -> None:
    """Add ``invoke`` to the ``batch-endpoint`` group."""
    parser = add_command(
        commands, "invoke", "Invoke a batch endpoint: start a batch job.", invoke, common
    )
    parser.add_argument("-n", "--name", help="the endpoint")
    parser.add_argument(
        "-d", "--deployment-name", help="the deployment; default: the endpoint's default"
    )
    data = parser.add_argument_group("inputs and outputs")
    data.add_argument(
        "--input",
        metavar="PATH",
        help="the one data input of a model deployment: a local file or folder (uploaded), "
        "a datastore path, a data asset, or a URL",
    )
    data.add_argument(
        "--input-type",
        choices=("uri_folder", "uri_file"),
        help="the type of --input (default: the data asset's type, else uri_folder)",
    )
    data.add_argument(
        "--set",
        nargs="+",
        action="append",
        metavar="KEY=VALUE",
        help="inputs.<name>.<type|path|mode|default>, outputs.<name>.<type|path|mode>, or a "
        "setting (mini_batch_size, output_file_name, ...); 'KEY VALUE' pairs work too",
    )
    data.add_argument(
        "-f", "--file", help="a YAML file with inputs, outputs, endpoint and deployment"
    )
    data.add_argument(
        "--output-path",
        metavar="URI",
        help="where the output goes: azureml://datastores/<datastore>/paths/<path>",
    )
    data.add_argument(
        "--output-file-name",
        help="the file the output rows go to (default: predictions.csv, or predictions.parquet "
        "or predictions.jsonl after the deployment's output_format)",
    )
    job = parser.add_argument_group("job")
    job.add_argument("-m", "--mini-batch-size", type=positive_int, metavar="N")
    job.add_argument("-c", "--instance-count", type=positive_int, metavar="N")
    job.add_argument("--job-name", help="the job's name; default: a new UUID")
    job.add_argument("--experiment-name")
    job.add_argument(
        "--stream", action="store_true", help="follow the job until it ends, showing progress"
    )
