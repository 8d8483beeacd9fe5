"""REST fuzzing: Schemathesis generates requests for every operation of the server's own
``/openapi.json`` (valid ones and invalid ones) and sends them with the owner's token to a real
server; no answer may be a 5xx.

Each operation is fuzzed with generated path parameters (mostly unknown names) and again with
the names of resources that exist (a datastore, an endpoint with a deployment, a queued job, a
data asset and a model), so that requests get past the lookups. The run is bounded (a fixed
number of examples per operation and mode, no shrinking, a fixed seed) so that it stays well
under two minutes on a small machine and fails the same way twice.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.errors import FailureGroup

from tests.integration.conftest import RunningServer, start_server, stop_server
from tests.integration.helpers import (
    create_script_deployment,
    invoke_body,
    upload_folder,
    write_numbered_files,
)

EXAMPLES = 10
ARM_VERSION = "2024-10-01"


@dataclass(frozen=True)
class Known:
    """Resources that exist on the fuzzed server, by the names routes take."""

    endpoint: str
    job: str
    data: str
    model: str
    workspace: dict[str, str]  # the Azure ML dialect's subscription, group and workspace

    def path_parameters(self, path: str) -> dict[str, str]:
        """Path parameters that name existing resources for the route ``path``, if any."""
        names = set(re.findall(r"{(\w+)}", path))
        if not names:
            return {}
        if path.startswith(("/subscriptions/", "/azureml/")):
            return self._azure_parameters(path, names)
        by_collection = {
            "datastores": "workspaceblobstore",
            "batch-endpoints": self.endpoint,
            "jobs": self.job,
            "data": self.data,
            "models": self.model,
        }
        collection = path.strip("/").split("/")[0]
        known = {
            "endpoint": self.endpoint,
            "output": "score",
            "version": "1",
            "label": "latest",
            "path": "readme.txt",
        }
        if collection == "batch-endpoints" and "endpoint" in names:
            known["name"] = "blue"  # /batch-endpoints/{endpoint}/deployments/{name}
        elif collection in by_collection:
            known["name"] = by_collection[collection]
        chosen = {k: v for k, v in known.items() if k in names}
        return chosen if set(chosen) == names else {}

    def _azure_parameters(self, path: str, names: set[str]) -> dict[str, str]:
        rest = path.split("{workspace}", 1)[-1]
        known = {
            **self.workspace,
            "endpoint": self.endpoint,
            "run_id": self.job,
            "job": self.job,
            "path": "job_progress_overview.txt",
            "kind": "data",
            "version": "1",
            "resource": f"batchEndpoints/{self.endpoint}/deployments/blue",
        }
        if rest.startswith("/batchEndpoints/{endpoint}/deployments"):
            known["name"] = "blue"
        elif rest.startswith("/batchEndpoints"):
            known["name"] = self.endpoint
        elif rest.startswith("/datastores"):
            known["name"] = "workspaceblobstore"
        elif rest.startswith("/jobs"):
            known["name"] = self.job
        else:
            known["name"] = self.data
        chosen = {k: v for k, v in known.items() if k in names}
        return chosen if set(chosen) == names else {}


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, Known]]:
    # A server of its own, whose scheduler runs nothing: the fuzzer creates, changes and
    # deletes whatever it can.
    root = tmp_path_factory.mktemp("fuzz")
    running = start_server(root / "home", extra_env={"SLUICEWAY_SCHEDULER_ENABLED": "false"})
    try:
        with running.client() as client:
            create_script_deployment(client, root, "fuzzed", "blue")
            write_numbered_files(root / "data", 2)
            data = upload_folder(client, root / "data", "fuzz/data")
            r = client.post("/data", json={"name": "fuzzdata", "type": "uri_folder", "path": data})
            assert r.status_code == 201, r.text
            r = client.post("/models", json={"name": "fuzzmodel", "path": data})
            assert r.status_code == 201, r.text
            body = invoke_body({"d": {"JobInputType": "UriFolder", "Uri": data}})
            r = client.post("/endpoints/fuzzed/jobs", json=body)
            assert r.status_code in (200, 201, 202), r.text
            ws = client.get("/azureml/discovery").raise_for_status().json()["workspaceId"]
            _, _, subscription, _, group, *_, workspace = ws.split("/")
            coordinates = {"subscription": subscription, "group": group, "workspace": workspace}
            known = Known("fuzzed", r.json()["name"], "fuzzdata", "fuzzmodel", coordinates)
        yield running, known
    finally:
        stop_server(running)


@pytest.mark.slow
def test_no_operation_answers_with_a_server_error(
    fuzz_server: tuple[RunningServer, Known],
) -> None:
    server, known = fuzz_server
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json", timeout=30)
    token = {"authorization": f"Bearer {server.token}"}
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    operations = 0
    # Deletions last, so that the known resources live while the other operations run.
    ordered = sorted(
        (r.ok() for r in schema.get_all_operations()), key=lambda o: o.method == "delete"
    )
    for operation in ordered:
        operations += 1
        runs = [(GenerationMode.POSITIVE, {})]
        # Invalid data needs something that can be invalid: a body or a query parameter.
        if len(operation.body) or len(operation.query):
            runs.append((GenerationMode.NEGATIVE, {}))
        existing = known.path_parameters(operation.path)
        if existing:
            runs.append((GenerationMode.POSITIVE, existing))
        for mode, path_parameters in runs:
            # With existing names, the Azure ML dialect's routes get an api-version they take.
            query = {"api-version": ARM_VERSION} if path_parameters else None
            if not any(p.name == "api-version" for p in operation.query):
                query = None
            strategy = operation.as_strategy(
                generation_mode=mode, headers=token, path_parameters=path_parameters, query=query
            )

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy)
            def call(case: schemathesis.Case) -> None:
                response = case.call_and_validate(
                    base_url=server.url, checks=[not_a_server_error], timeout=30
                )
                statuses[response.status_code] += 1

            try:
                call()
            except Unsatisfiable:
                pass  # nothing in this operation can be made invalid
            except (FailureGroup, Exception) as exc:  # every operation's failures, not the first
                where = f" with {path_parameters}" if path_parameters else ""
                failures.append(f"{operation.label} ({mode.value}{where}): {exc}")
    log = Path(server.home / "server.log").read_text()[-5000:]
    assert not failures, "\n\n".join(failures) + "\n\nserver log:\n" + log
    assert operations > 30, f"only {operations} operations in /openapi.json"
    # The owner's token went with every request; most got past authentication, and some past
    # the lookups to an answer that is not an error.
    assert statuses.total() > operations * EXAMPLES, statuses
    assert statuses[401] + statuses[403] < statuses.total() // 4, statuses
    assert sum(n for status, n in statuses.items() if status < 300) > operations // 2, statuses
