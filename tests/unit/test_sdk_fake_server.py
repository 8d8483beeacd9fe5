"""An in-memory stand-in for the REST API of docs/rest.md, for the SDK's unit tests.

It answers through ``httpx.MockTransport``, so the SDK runs its real HTTP code path. It keeps
just enough state (files, uploads, assets, endpoints, deployments, jobs) to check what the SDK
sends; the real server is exercised by tests/integration/test_sdk.py.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import httpx

from sluiceway.sdk.client import MLClient
from sluiceway.sdk.connection import Connection

BASE_URL = "http://sluice.test"
ARM = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/sluiceway"
    "/providers/Microsoft.MachineLearningServices/workspaces/default"
)
CONTEXT = {"created_at": "2024-05-01T12:00:00+00:00", "created_by": "owner"}


@dataclass
class Call:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    body: Any


def _error(status: int, code: str, message: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message}})


@dataclass
class FakeServer:
    token: str = "secret-token"
    files: dict[tuple[str, str], bytes] = field(default_factory=dict)
    uploads: dict[str, dict[str, str]] = field(default_factory=dict)
    assets: dict[str, dict[str, list[dict[str, Any]]]] = field(
        default_factory=lambda: {"data": {}, "models": {}}
    )
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    deployments: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    job_files: dict[tuple[str, str], dict[str, bytes]] = field(default_factory=dict)
    job_logs: dict[str, dict[str, bytes]] = field(default_factory=dict)
    job_script: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)

    # -- plumbing ----------------------------------------------------------------------------

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def connection(self) -> Connection:
        return Connection(BASE_URL, self.token, transport=self.transport())

    def client(self) -> MLClient:
        return MLClient(endpoint=BASE_URL, token=self.token, transport=self.transport())

    def calls_to(self, method: str, pattern: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and re.fullmatch(pattern, c.path)]

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = unquote(request.url.path)
        raw = request.read()
        content_type = request.headers.get("content-type", "")
        body: Any = json.loads(raw) if raw and "json" in content_type else raw
        self.calls.append(
            Call(request.method, path, dict(request.url.params), dict(request.headers), body)
        )
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return _error(401, "Unauthorized", "No or wrong token.")
        for method, pattern, handler in self._routes():
            match = re.fullmatch(pattern, path)
            if match and method == request.method:
                return handler(match, request, body)
        return _error(404, "NotFound", f"No route {request.method} {path}")

    def _routes(self) -> list[tuple[str, str, Callable[..., httpx.Response]]]:
        dep = r"/batch-endpoints/(?P<ep>[^/]+)/deployments/(?P<name>[^/]+)"
        out = r"/jobs/(?P<name>[^/]+)/outputs/(?P<out>[^/]+)"
        return [
            ("GET", r"/datastores", self._list_datastores),
            ("GET", r"/datastores/(?P<name>[^/]+)", self._get_datastore),
            ("PUT", r"/datastores/(?P<ds>[^/]+)/files/(?P<path>.+)", self._put_file),
            ("GET", r"/uploads/(?P<md5>[^/]+)", self._get_upload),
            ("PUT", r"/uploads/(?P<md5>[^/]+)", self._put_upload),
            ("POST", r"/(?P<kind>data|models)", self._create_asset),
            ("GET", r"/(?P<kind>data|models)", self._list_assets),
            ("GET", r"/(?P<kind>data|models)/(?P<name>[^/]+)/versions", self._asset_versions),
            ("GET", r"/(?P<kind>data|models)/(?P<name>[^/]+)/versions/(?P<v>[^/]+)", self._asset),
            ("GET", r"/(?P<kind>data|models)/(?P<name>[^/]+)/labels/latest", self._asset),
            ("PUT", r"/batch-endpoints/(?P<name>[^/]+)", self._put_endpoint),
            ("GET", r"/batch-endpoints", self._list_endpoints),
            ("GET", r"/batch-endpoints/(?P<name>[^/]+)", self._get_endpoint),
            ("DELETE", r"/batch-endpoints/(?P<name>[^/]+)", self._delete_endpoint),
            ("GET", r"/batch-endpoints/(?P<ep>[^/]+)/jobs", self._endpoint_jobs),
            ("PUT", dep, self._put_dep),
            ("GET", r"/batch-endpoints/(?P<ep>[^/]+)/deployments", self._list_deps),
            ("GET", dep, self._get_dep),
            ("DELETE", dep, self._del_dep),
            ("GET", dep + "/jobs", self._dep_jobs),
            ("POST", r"/endpoints/(?P<ep>[^/]+)/jobs", self._invoke),
            ("GET", r"/jobs", self._list_jobs),
            ("GET", r"/jobs/(?P<name>[^/]+)", self._get_job),
            ("GET", out, self._output_listing),
            ("GET", out + r"/files/(?P<p>.+)", self._out_file),
            ("GET", r"/jobs/(?P<name>[^/]+)/logs", self._log_listing),
            ("GET", r"/jobs/(?P<name>[^/]+)/logs/(?P<p>.+)", self._log_file),
        ]

    # -- datastores and uploads ------------------------------------------------------------

    def datastore_json(self, name: str) -> dict[str, Any]:
        return {
            "id": f"{ARM}/datastores/{name}",
            "name": name,
            "type": "local",
            "description": None,
            "tags": {},
            "is_default": name == "workspaceblobstore",
            "credentials": {},
        }

    def _list_datastores(self, m: re.Match[str], r: httpx.Request, b: Any) -> httpx.Response:
        return httpx.Response(200, json=[self.datastore_json("workspaceblobstore")])

    def _get_datastore(self, m: re.Match[str], r: httpx.Request, b: Any) -> httpx.Response:
        if m["name"] != "workspaceblobstore":
            return _error(404, "NotFound", f"Datastore {m['name']!r} does not exist.")
        return httpx.Response(200, json=self.datastore_json(m["name"]))

    def _put_file(self, m: re.Match[str], r: httpx.Request, b: Any) -> httpx.Response:
        self.files[(m["ds"], m["path"])] = bytes(b)
        return httpx.Response(200, json={"path": m["path"], "size": len(b)})

    def _get_upload(self, m: re.Match[str], r: httpx.Request, b: Any) -> httpx.Response:
        record = self.uploads.get(m["md5"])
        if record is None:
            return _error(404, "NotFound", f"No finished upload with hash {m['md5']!r}.")
        return httpx.Response(200, json=record)

    def _put_upload(self, m: re.Match[str], r: httpx.Request, b: Any) -> httpx.Response:
        self.uploads[m["md5"]] = dict(b)
        return httpx.Response(200, json=b)

    # -- assets ----------------------------------------------------------------------------

    def _create_asset(self, m: re.Match[str], r: httpx.Request, b: Any) -> httpx.Response:
        kind = m["kind"]
        versions = self.assets[kind].setdefault(b["name"], [])
        version = b.get("version") or str(len(versions) + 1)
        collection = "data" if kind == "data" else "models"
        out = {
            "id": f"{ARM}/{collection}/{b['name']}/versions/{version}",
            "name": b["name"],
            "version": version,
            "type": b.get("type", "uri_folder" if kind == "data" else "custom_model"),
            "path": b["path"],
            "description": b.get("description"),
            "tags": b.get("tags", {}),
            "properties": b.get("properties", {}),
            "creation_context": CONTEXT,
        }
        versions.append(out)
        return httpx.Response(201, json=out)

    def _list_assets(self, m: re.Match[str], r: httpx.Request, b: Any) -> httpx.Response:
        return httpx.Response(200, json=[v[-1] for v in self.assets[m["kind"]].values()])

    def _asset_versions(self, m: re.Match[str], r: httpx.Request, b: Any) -> httpx.Response:
        versions = self.assets[m["kind"]].get(m["name"])
        if not versions:
            return _error(404, "NotFound", f"{m['name']!r} does not exist.")
        return httpx.Response(200, json=list(reversed(versions)))

    def _asset(self, m: re.Match[str], r: httpx.Request, b: Any) -> httpx.Response:
        versions = self.assets[m["kind"]].get(m["name"], [])
        wanted = m.groupdict().get("v")
        found = [v for v in versions if wanted is None or v["version"] == wanted]
        if not found:
            return _error(404, "NotFound", f"{m['name']}:{wanted} does not exist.")
        return httpx.Response(200, json=found[-1])

    # -- endpoints and deployments ---------------------------------------------------------

    def _put_endpoint(self, m: re.Match[str], r: httpx.Request, b: Any) -> httpx.Response:
        name = m["name"]
        created = name not in self.endpoints
        self.endpoints[name] = {
            "id": f"{ARM}/batchEndpoints/{name}",
            "name": name,
            "description": b.get("description"),
            "tags": b.get("tags", {}),
            "auth_mode": b.get("auth_mode", "aad_token"),
            "defaults": b.get("defaults", {"deployment_name": None}),
            "properties": b.get("properties", {}),
            "scoring_uri": f"{BASE_URL}/endpoints/{name}/jobs",
            "openapi_uri": None,
            "provisioning_state": "Succeeded",
            "creation_context": CONTEXT,
        }
        return httpx.Response(201 if created else 200, json=self.endpoints[name])

    def _list_endpoints(self, m: re.Match[str], r: httpx.Request, b: Any) -> httpx.Response:
        return httpx.Response(200, json=list(self.endpoints.values()))

    def _get_endpoint(self, m: re.Match[str], r: httpx.Request, b: Any) -> httpx.Response:
        if m["name"] not in self.endpoints:
            return _error(404, "NotFound", f"Batch endpoint {m['name']!r} does not exist.")
        return httpx.Response(200, json=self.endpoints[m["name"]])

    def _delete_endpoint(self, m: re.Match[str], r: httpx.Request, b: Any) -> httpx.Response:
        self.endpoints.pop(m["name"], None)
        return httpx.Response(204)

    def _put_dep(self, m: re.Match[str], r: httpx.Request, b: Any) -> httpx.Response:
        ep, name = m["ep"], m["name"]
        if ep not in self.endpoints:
            return _error(404, "NotFound", f"Batch endpoint {ep!r} does not exist.")
        settings = {
            "max_concurrency_per_instance": 1,
            "mini_batch_size": 10,
            "output_action": "append_row",
            "output_file_name": None,
            "retry_settings": {"max_retries": 3, "timeout": 30},
            "error_threshold": -1,
            "logging_level": "info",
            "environment_variables": {},
            **b.get("settings", {}),
        }
        out = {
            "id": f"{ARM}/batchEndpoints/{ep}/deployments/{name}",
            **b,
            "resources": b.get("resources", {"instance_count": 1}),
            "settings": settings,
            "provisioning_state": "Succeeded",
            "creation_context": CONTEXT,
        }
        created = (ep, name) not in self.deployments
        self.deployments[(ep, name)] = out
        defaults = self.endpoints[ep]["defaults"]
        if r.url.params.get("set_default") == "true" or not defaults.get("deployment_name"):
            defaults["deployment_name"] = name
        return httpx.Response(201 if created else 200, json=out)

    def _list_deps(self, m: re.Match[str], r: httpx.Request, b: Any) -> httpx.Response:
        return httpx.Response(
            200, json=[d for (ep, _), d in self.deployments.items() if ep == m["ep"]]
        )

    def _get_dep(self, m: re.Match[str], r: httpx.Request, b: Any) -> httpx.Response:
        found = self.deployments.get((m["ep"], m["name"]))
        if found is None:
            return _error(404, "NotFound", f"Deployment {m['name']!r} does not exist.")
        return httpx.Response(200, json=found)

    def _del_dep(self, m: re.Match[str], r: httpx.Request, b: Any) -> httpx.Response:
        self.deployments.pop((m["ep"], m["name"]), None)
        return httpx.Response(204)

    # -- jobs ------------------------------------------------------------------------------

    def job_json(self, name: str, status: str, **extra: Any) -> dict[str, Any]:
        return {
            "id": f"{ARM}/jobs/{name}",
            "name": name,
            "type": "batch",
            "display_name": name,
            "experiment_name": None,
            "status": status,
            "endpoint_name": "heart",
            "deployment_name": "dpl",
            "inputs": {},
            "outputs": {
                "score": {
                    "type": "uri_folder",
                    "path": f"azureml://datastores/workspaceblobstore/paths/azureml/{name}/score/",
                }
            },
            "settings": {},
            "progress": {},
            "error": None,
            "creation_context": CONTEXT,
            "start_time": None,
            "end_time": None,
            "services": {"Studio": {"endpoint": f"{BASE_URL}/ui/jobs/{name}"}},
            "properties": {},
            **extra,
        }

    def _invoke(self, m: re.Match[str], r: httpx.Request, b: Any) -> httpx.Response:
        if m["ep"] not in self.endpoints:
            return _error(404, "NotFound", f"Batch endpoint {m['ep']!r} does not exist.")
        name = b.get("name") or str(uuid.uuid4())
        job = self.job_json(name, "Queued", endpoint_name=m["ep"])
        job["deployment_name"] = r.headers.get("azureml-model-deployment", "dpl")
        self.jobs[name] = job
        return httpx.Response(201, json=job)

    def _list_jobs(self, m: re.Match[str], r: httpx.Request, b: Any) -> httpx.Response:
        return httpx.Response(200, json=list(self.jobs.values()))

    def _endpoint_jobs(self, m: re.Match[str], r: httpx.Request, b: Any) -> httpx.Response:
        return httpx.Response(
            200, json=[j for j in self.jobs.values() if j["endpoint_name"] == m["ep"]]
        )

    def _dep_jobs(self, m: re.Match[str], r: httpx.Request, b: Any) -> httpx.Response:
        return httpx.Response(
            200,
            json=[
                j
                for j in self.jobs.values()
                if j["endpoint_name"] == m["ep"] and j["deployment_name"] == m["name"]
            ],
        )

    def _get_job(self, m: re.Match[str], r: httpx.Request, b: Any) -> httpx.Response:
        script = self.job_script.get(m["name"])
        if script:
            self.jobs[m["name"]] = script.pop(0) if len(script) > 1 else script[0]
        if m["name"] not in self.jobs:
            return _error(404, "NotFound", f"Job {m['name']!r} does not exist.")
        return httpx.Response(200, json=self.jobs[m["name"]])

    def _output_listing(self, m: re.Match[str], r: httpx.Request, b: Any) -> httpx.Response:
        files = self.job_files.get((m["name"], m["out"]))
        if files is None:
            return _error(404, "NotFound", f"Job {m['name']!r} has no output {m['out']!r}.")
        return httpx.Response(
            200,
            json={
                "output_name": m["out"],
                "uri": "azureml://datastores/workspaceblobstore/paths/x/",
                "files": [{"path": p, "size": len(c)} for p, c in files.items()],
            },
        )

    def _out_file(self, m: re.Match[str], r: httpx.Request, b: Any) -> httpx.Response:
        content = self.job_files.get((m["name"], m["out"]), {}).get(m["p"])
        if content is None:
            return _error(404, "NotFound", "no such file")
        return httpx.Response(200, content=content)

    def _log_listing(self, m: re.Match[str], r: httpx.Request, b: Any) -> httpx.Response:
        logs = self.job_logs.get(m["name"], {})
        return httpx.Response(200, json=[{"path": p, "size": len(c)} for p, c in logs.items()])

    def _log_file(self, m: re.Match[str], r: httpx.Request, b: Any) -> httpx.Response:
        content = self.job_logs.get(m["name"], {}).get(m["p"])
        if content is None:
            return _error(404, "NotFound", "no such log")
        return httpx.Response(200, content=content)
