"""The "Consume" panel of an endpoint's page: how to invoke it from the CLI, the SDK and REST,
written as the reference page writes them, filled in with this endpoint."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sluiceway.schemas.endpoints import BatchEndpointOut

_REST_TYPES = {"uri_folder": "UriFolder", "uri_file": "UriFile"}
_ASSET_TYPES = {"uri_folder": "AssetTypes.URI_FOLDER", "uri_file": "AssetTypes.URI_FILE"}


@dataclass(frozen=True)
class ConsumeInput:
    """An input the snippets give: a data input (``uri_folder``, ``uri_file``) with a path, or
    a literal with a value."""

    name: str
    type: str
    value: Any


@dataclass(frozen=True)
class Snippets:
    cli: str
    sdk: str
    rest: str
    curl: str


def _is_data(item: ConsumeInput) -> bool:
    return item.type in _REST_TYPES


def snippets(
    endpoint: BatchEndpointOut, inputs: list[ConsumeInput], *, model_deployment: bool
) -> Snippets:
    """The CLI, SDK and REST snippets that invoke ``endpoint`` with ``inputs``."""
    name = endpoint.name
    sets = []
    for item in inputs:
        if _is_data(item):
            sets.append(f"inputs.{item.name}.type {item.type} inputs.{item.name}.path {item.value}")
        else:
            sets.append(
                f"inputs.{item.name}.type {item.type} inputs.{item.name}.default {item.value}"
            )
    cli = [f"ENDPOINT_NAME={name}", ""]
    if sets:
        cli.append("sluice batch-endpoint invoke --name $ENDPOINT_NAME \\")
        cli.append("    --set " + " \\\n          ".join(sets))
    else:
        cli.append("sluice batch-endpoint invoke --name $ENDPOINT_NAME")
    data = [i for i in inputs if _is_data(i)]
    if model_deployment and len(data) == 1:
        cli += [
            "",
            "# A model deployment also takes the short form, with its one input:",
            f"sluice batch-endpoint invoke --name $ENDPOINT_NAME --input {data[0].value}",
        ]
    cli += ["", "sluice job stream -n <job name>"]

    sdk = [
        "from sluiceway import MLClient, Input",
        "from sluiceway.constants import AssetTypes",
        "",
        "ml_client = MLClient.from_config()",
        "",
        "job = ml_client.batch_endpoints.invoke(",
        f'    endpoint_name="{name}",',
        "    inputs={",
    ]
    for item in inputs:
        if _is_data(item):
            kind = _ASSET_TYPES[item.type]
            sdk.append(f'        "{item.name}": Input(type={kind}, path="{item.value}"),')
        else:
            sdk.append(f'        "{item.name}": Input(type="{item.type}", default={item.value!r}),')
    sdk += ["    },", ")", "ml_client.jobs.stream(job.name)"]

    body_inputs: dict[str, Any] = {}
    for item in inputs:
        if _is_data(item):
            body_inputs[item.name] = {"JobInputType": _REST_TYPES[item.type], "Uri": item.value}
        else:
            body_inputs[item.name] = {"JobInputType": "Literal", "Value": item.value}
    body = json.dumps({"properties": {"InputData": body_inputs}}, indent=4)
    uri = endpoint.scoring_uri
    host, _, _ = uri.partition("/endpoints/")
    rest = "\n".join(
        [
            f"POST {uri.removeprefix(host)} HTTP/1.1",
            f"Host: {host.split('://', 1)[-1]}",
            "Authorization: Bearer <TOKEN>",
            "Content-Type: application/json",
            "",
            body,
        ]
    )
    curl = "\n".join(
        [
            f'SCORING_URI="{uri}"',
            'curl -X POST "$SCORING_URI" -H "Authorization: Bearer $TOKEN" \\',
            '     -H "Content-Type: application/json" \\',
            f"     -d '{json.dumps({'properties': {'InputData': body_inputs}})}'",
        ]
    )
    return Snippets("\n".join(cli), "\n".join(sdk), rest, curl)
