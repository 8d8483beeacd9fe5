"""Pipeline component deployments over REST against a real server: components, wiring,
literal inputs, parallel steps, failures, cancel and commands run without a shell."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import RunningServer, start_server, stop_server
from tests.integration.helpers import DS, invoke_body, unique, upload_folder, wait_for_job

STEPS_SCRIPT = r"""
import json, os, pathlib, sys, time

def write(folder, name, text):
    pathlib.Path(folder, name).write_text(text)

command, args = sys.argv[1], sys.argv[2:]
if command == "split":  # split <data> <greeting> <out>
    data, greeting, out = args
    names = sorted(p.name for p in pathlib.Path(data).rglob("*") if p.is_file())
    write(out, "files.txt", "\n".join(names) + "\n")
    write(out, "greeting.txt", greeting)
elif command == "branch":  # branch <me> <other> <rendezvous> <source> <out>
    me, other, rendezvous, source, out = args
    folder = pathlib.Path(rendezvous)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / me).touch()
    deadline = time.monotonic() + 60
    while not (folder / other).exists():
        if time.monotonic() > deadline:
            sys.exit(f"{other} never started while {me} ran: the steps did not run side by side")
        time.sleep(0.05)
    write(out, me + ".txt", me + ": " + pathlib.Path(source, "files.txt").read_text())
elif command == "join":  # join <left> <right> <out>
    left, right, out = args
    text = pathlib.Path(left, "left.txt").read_text() + pathlib.Path(right, "right.txt").read_text()
    write(out, "combined.txt", text)
elif command == "argv":  # argv <out> <anything...>
    write(args[0], "argv.json", json.dumps(args[1:]))
elif command == "fail":  # fail <code>
    print("reading the input", flush=True)
    print("Traceback (most recent call last):\nValueError: boom, the input is bad", file=sys.stderr)
    sys.exit(int(args[0]))
elif command == "sleep":  # sleep <pid file> <seconds>
    pathlib.Path(args[0]).write_text(str(os.getpid()))
    time.sleep(float(args[1]))
elif command == "touch":  # touch <out>
    write(args[0], "done.txt", "done")
elif command == "count":  # count <file> <out>: one line in <file> per run
    with open(args[0], "a") as fh:
        fh.write("ran\n")
    write(args[1], "done.txt", "done")
elif command == "waitfor":  # waitfor <file> <source> <out>
    deadline = time.monotonic() + 120
    while not pathlib.Path(args[0]).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    write(args[2], "seen.txt", pathlib.Path(args[1], "done.txt").read_text())
"""


@pytest.fixture(scope="module")
def code(server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The steps' code folder, uploaded once."""
    folder = tmp_path_factory.mktemp("steps-code")
    (folder / "steps.py").write_text(STEPS_SCRIPT)
    with server.client() as client:
        return upload_folder(client, folder, f"code/{unique('steps')}")


@pytest.fixture(scope="module")
def data(server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("pipeline-data")
    for i in range(3):
        (folder / f"part-{i}.txt").write_text(f"{i}\n")
    with server.client() as client:
        return upload_folder(client, folder, f"data/{unique('parts')}")


@pytest.fixture
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def command(
    code: str,
    line: str,
    inputs: dict[str, Any] | None = None,
    outputs: tuple[str, ...] = (),
    **extra: Any,
) -> dict[str, Any]:
    """An inline command component running ``python steps.py <line>``."""
    return {
        "type": "command",
        "code": code,
        "command": f"python steps.py {line}",
        "inputs": inputs or {},
        "outputs": {name: {"type": "uri_folder"} for name in outputs},
        **extra,
    }


def deploy(client: httpx.Client, pipeline: Any, settings: dict[str, Any] | None = None) -> str:
    """An endpoint whose default deployment runs ``pipeline``; the endpoint's name."""
    endpoint = unique("pl")
    r = client.put(f"/batch-endpoints/{endpoint}", json={"name": endpoint})
    assert r.status_code == 201, r.text
    body = {
        "name": "pipe",
        "endpoint_name": endpoint,
        "type": "pipeline",
        "component": pipeline,
        "settings": settings or {},
    }
    r = client.put(f"/batch-endpoints/{endpoint}/deployments/pipe", json=body)
    assert r.status_code == 201, r.text
    return endpoint


def invoke(
    client: httpx.Client, endpoint: str, inputs: dict[str, Any], **kw: Any
) -> httpx.Response:
    return client.post(f"/endpoints/{endpoint}/jobs", json=invoke_body(inputs, **kw))


def literal(value: Any) -> dict[str, Any]:
    return {"JobInputType": "Literal", "Value": value}


def diamond(code: str) -> dict[str, Any]:
    """Two inputs (a folder and a literal), four steps in a diamond, two outputs."""
    branch_inputs = {
        "source": {"type": "uri_folder"},
        "me": {"type": "string"},
        "other": {"type": "string"},
        "rendezvous": {"type": "string"},
    }
    branch = command(
        code,
        "branch ${{inputs.me}} ${{inputs.other}} ${{inputs.rendezvous}} ${{inputs.source}} "
        "${{outputs.out}}",
        branch_inputs,
        ("out",),
    )
    return {
        "name": unique("diamond"),
        "type": "pipeline",
        "inputs": {"data": {"type": "uri_folder"}, "rendezvous": {"type": "string"}},
        "outputs": {"left": {"type": "uri_folder"}, "combined": {"type": "uri_folder"}},
        "jobs": {
            "split": {
                "component": command(
                    code,
                    "split ${{inputs.data}} hello ${{outputs.parts}}",
                    {"data": {"type": "uri_folder"}},
                    ("parts",),
                ),
                "inputs": {"data": "${{parent.inputs.data}}"},
            },
            "left": {
                "component": branch,
                "inputs": {
                    "source": "${{parent.jobs.split.outputs.parts}}",
                    "me": "left",
                    "other": "right",
                    "rendezvous": "${{parent.inputs.rendezvous}}",
                },
                "outputs": {"out": "${{parent.outputs.left}}"},
            },
            "right": {
                "component": branch,
                "inputs": {
                    "source": "${{parent.jobs.split.outputs.parts}}",
                    "me": "right",
                    "other": "left",
                    "rendezvous": "${{parent.inputs.rendezvous}}",
                },
            },
            "join": {
                "component": command(
                    code,
                    "join ${{inputs.left}} ${{inputs.right}} ${{outputs.out}}",
                    {"left": {"type": "uri_folder"}, "right": {"type": "uri_folder"}},
                    ("out",),
                ),
                "inputs": {
                    "left": "${{parent.jobs.left.outputs.out}}",
                    "right": "${{parent.jobs.right.outputs.out}}",
                },
                "outputs": {"out": "${{parent.outputs.combined}}"},
            },
        },
    }


def test_diamond_runs_its_middle_steps_at_the_same_time(
    client: httpx.Client, server: RunningServer, code: str, data: str
) -> None:
    endpoint = deploy(client, diamond(code), {"continue_on_step_failure": False})
    out = f"{DS}/{unique('diamond-out')}/left/"
    rendezvous = str(server.shared_folder())
    r = invoke(
        client,
        endpoint,
        {"data": {"JobInputType": "UriFolder", "Uri": data}, "rendezvous": literal(rendezvous)},
        outputs={"left": {"JobOutputType": "UriFolder", "Uri": out}},
    )
    assert r.status_code == 201, r.text
    job = wait_for_job(client, r.json()["name"])
    assert job["status"] == "Completed", job["error"]

    steps = {s["name"]: s for s in job["steps"]}
    assert [s["name"] for s in job["steps"]] == ["split", "left", "right", "join"]
    assert all(s["status"] == "Completed" and s["exit_code"] == 0 for s in steps.values())
    start = {n: datetime.fromisoformat(s["start_time"]) for n, s in steps.items()}
    end = {n: datetime.fromisoformat(s["end_time"]) for n, s in steps.items()}
    assert start["left"] < end["right"] and start["right"] < end["left"]  # side by side
    assert end["split"] <= min(start["left"], start["right"])
    assert start["join"] >= max(end["left"], end["right"])

    # The left branch's output went to the overridden path, the joined one to its default.
    assert job["outputs"]["left"]["path"] == out
    assert job["outputs"]["combined"]["path"].endswith(f"/azureml/{job['name']}/combined/")
    files = "part-0.txt\npart-1.txt\npart-2.txt\n"
    listing = client.get(f"/jobs/{job['name']}/outputs/left").json()
    assert [f["path"] for f in listing["files"]] == ["left.txt"]
    combined = client.get(f"/jobs/{job['name']}/outputs/combined/files/combined.txt").text
    assert combined == f"left: {files}right: {files}"
    log = client.get(f"/jobs/{job['name']}/logs/{steps['split']['logs']['command']}").json()
    assert log["argv"][1:3] == ["steps.py", "split"]


def test_a_literal_reaches_the_program_as_one_argument(
    client: httpx.Client, code: str, tmp_path: Path
) -> None:
    canary = tmp_path / "canary"
    pipeline = {
        "name": unique("argv"),
        "type": "pipeline",
        "inputs": {"text": {"type": "string"}, "count": {"type": "integer", "optional": True}},
        "outputs": {"seen": {"type": "uri_folder"}},
        "jobs": {
            "echo": {
                "component": command(
                    code,
                    "argv ${{outputs.seen}} '${{inputs.text}}' $[[--count ${{inputs.count}}]] end",
                    {"text": {"type": "string"}, "count": {"type": "integer", "optional": True}},
                    ("seen",),
                ),
                "inputs": {"text": "${{parent.inputs.text}}", "count": "${{parent.inputs.count}}"},
                "outputs": {"seen": "${{parent.outputs.seen}}"},
            }
        },
    }
    endpoint = deploy(client, pipeline)
    dangerous = f'x; touch {canary} && echo "$(id)" `id` > {canary} | cat'
    seen = []
    for inputs in ({"text": literal(dangerous)}, {"text": literal("a b"), "count": literal("7")}):
        r = invoke(client, endpoint, inputs)
        assert r.status_code == 201, r.text
        job = wait_for_job(client, r.json()["name"])
        assert job["status"] == "Completed", job["error"]
        text = client.get(f"/jobs/{job['name']}/outputs/seen/files/argv.json").text
        seen.append(json.loads(text))
    assert seen == [[dangerous, "end"], ["a b", "--count", "7", "end"]]
    assert not canary.exists()


def test_a_failing_step_fails_the_job_with_its_exit_code_and_stderr(
    client: httpx.Client, code: str
) -> None:
    pipeline = {
        "name": unique("failing"),
        "type": "pipeline",
        "outputs": {"after": {"type": "uri_folder"}, "other": {"type": "uri_folder"}},
        "jobs": {
            "broken": {"component": command(code, "fail 3", outputs=("out",))},
            "after": {
                "component": command(
                    code, "touch ${{outputs.out}}", {"x": {"type": "uri_folder"}}, ("out",)
                ),
                "inputs": {"x": "${{parent.jobs.broken.outputs.out}}"},
                "outputs": {"out": "${{parent.outputs.after}}"},
            },
            "independent": {
                "component": command(code, "touch ${{outputs.out}}", outputs=("out",)),
                "outputs": {"out": "${{parent.outputs.other}}"},
            },
        },
    }
    for keep_going in (False, True):
        endpoint = deploy(client, pipeline, {"continue_on_step_failure": keep_going})
        r = invoke(client, endpoint, {})
        assert r.status_code == 201, r.text
        job = wait_for_job(client, r.json()["name"])
        assert job["status"] == "Failed"
        error = job["error"]
        assert "Step 'broken' failed with exit code 3" in error["message"]
        assert "ValueError: boom, the input is bad" in error["message"]
        assert error["details"][0]["exit_code"] == 3
        steps = {s["name"]: s for s in job["steps"]}
        assert (steps["broken"]["status"], steps["broken"]["exit_code"]) == ("Failed", 3)
        assert steps["after"]["status"] == "Skipped"
        stdout = client.get(f"/jobs/{job['name']}/logs/steps/broken/stdout.txt").text
        assert stdout == "reading the input\n"
        if keep_going:
            assert steps["independent"]["status"] == "Completed"
            files = client.get(f"/jobs/{job['name']}/outputs/other").json()["files"]
            assert [f["path"] for f in files] == ["done.txt"]
        else:
            assert steps["independent"]["status"] in ("Completed", "Canceled", "Skipped")


def test_cancel_stops_the_running_steps(
    client: httpx.Client, server: RunningServer, code: str
) -> None:
    pid_file = server.shared_folder() / "pid"
    pipeline = {
        "name": unique("sleepy"),
        "type": "pipeline",
        "inputs": {"pid_file": {"type": "string"}},
        "jobs": {
            "sleep": {
                "component": command(
                    code, "sleep ${{inputs.pid}} 120", {"pid": {"type": "string"}}
                ),
                "inputs": {"pid": "${{parent.inputs.pid_file}}"},
            },
            "later": {
                "component": command(code, "touch ${{outputs.out}}", outputs=("out",)),
            },
        },
    }
    endpoint = deploy(client, pipeline, {"max_concurrent_steps": 1})
    r = invoke(client, endpoint, {"pid_file": literal(str(pid_file))})
    assert r.status_code == 201, r.text
    name = r.json()["name"]
    deadline = time.monotonic() + 60
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    pid = int(pid_file.read_text())
    r = client.post(f"/jobs/{name}/cancel")
    assert r.status_code == 202, r.text
    job = wait_for_job(client, name, timeout=60)
    assert job["status"] == "Canceled"
    steps = {s["name"]: s["status"] for s in job["steps"]}
    assert steps == {"sleep": "Canceled", "later": "Canceled"}
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_invocations_are_checked_against_the_component(
    client: httpx.Client, code: str, data: str
) -> None:
    pipeline = {
        "name": unique("checked"),
        "type": "pipeline",
        "inputs": {
            "data": {"type": "uri_folder"},
            "count": {"type": "integer", "min": 1, "max": 10},
            "ratio": {"type": "number", "optional": True, "default": 0.5, "max": 1},
            "mode": {"type": "string", "default": "append", "enum": ["append", "replace"]},
            "flag": {"type": "boolean", "optional": True},
        },
        "outputs": {"out": {"type": "uri_folder"}},
        "jobs": {
            "echo": {
                "component": command(
                    code,
                    "argv ${{outputs.out}} ${{inputs.count}} ${{inputs.ratio}} ${{inputs.mode}} "
                    "$[[${{inputs.flag}}]]",
                    {
                        "data": {"type": "uri_folder"},
                        "count": {"type": "integer"},
                        "ratio": {"type": "number"},
                        "mode": {"type": "string"},
                        "flag": {"type": "boolean", "optional": True},
                    },
                    ("out",),
                ),
                "inputs": {k: f"${{{{parent.inputs.{k}}}}}" for k in ("data", "count", "ratio")}
                | {"mode": "${{parent.inputs.mode}}", "flag": "${{parent.inputs.flag}}"},
                "outputs": {"out": "${{parent.outputs.out}}"},
            }
        },
    }
    endpoint = deploy(client, pipeline)
    folder = {"JobInputType": "UriFolder", "Uri": data}

    def jobs() -> int:
        return len(client.get(f"/endpoints/{endpoint}/jobs").json())

    bad: list[tuple[dict[str, Any], dict[str, Any], str]] = [
        ({"data": folder, "count": literal("abc")}, {}, "'abc' is not an integer"),
        ({"data": folder, "count": literal(2.5)}, {}, "2.5 is not an integer"),
        ({"data": folder, "count": literal(True)}, {}, "True is not an integer"),
        ({"data": folder, "count": literal(50)}, {}, "50 is out of range; accepted: an integer "),
        ({"data": folder, "count": literal(1), "ratio": literal("1.5")}, {}, "out of range"),
        ({"data": folder, "count": literal(1), "mode": literal("x")}, {}, "append, replace"),
        ({"data": folder, "count": literal(1), "flag": literal("maybe")}, {}, "true or false"),
        ({"count": literal(1)}, {}, "Input 'data' is required"),
        ({"data": folder, "count": literal(1), "extra": literal(1)}, {}, "'extra' is not an input"),
        ({"data": literal("x"), "count": literal(1)}, {}, "is uri_folder data"),
        ({"data": folder, "count": folder}, {}, "is a literal (integer)"),
        (
            {"data": folder, "count": literal(1)},
            {"OutputData": {"nope": {}}},
            "'nope' is not an output",
        ),
        ({"data": folder, "count": literal(1)}, {"MiniBatchSize": 3}, "MiniBatchSize is a setting"),
    ]
    before = jobs()
    for inputs, extra, message in bad:
        props: dict[str, Any] = {"InputData": inputs, **extra}
        r = client.post(f"/endpoints/{endpoint}/jobs", json={"properties": props})
        assert r.status_code == 400, (inputs, r.text)
        error = r.json()["error"]
        assert message in error["message"], error
        assert error["target"].startswith(("InputData", "OutputData", "properties")), error
    assert jobs() == before  # nothing was created

    # Text is converted to the declared type, and defaults fill the rest.
    r = invoke(client, endpoint, {"data": folder, "count": literal("5"), "flag": literal("true")})
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["inputs"]["count"] == {"type": "literal", "path": None, "value": 5, "mode": None}
    assert created["properties"]["InputData"]["count"] == literal(5)
    job = wait_for_job(client, created["name"])
    assert job["status"] == "Completed", job["error"]
    argv = json.loads(client.get(f"/jobs/{job['name']}/outputs/out/files/argv.json").text)
    assert argv == ["5", "0.5", "append", "True"]


def test_components_are_versioned_and_referenced(client: httpx.Client, code: str) -> None:
    name = unique("touch")
    body = command(code, "touch ${{outputs.out}}", outputs=("out",)) | {"name": name}
    r = client.post("/components", json=body)
    assert r.status_code == 201, r.text
    first = r.json()
    assert (first["name"], first["version"], first["type"]) == (name, "1", "command")
    assert first["id"].endswith(f"/components/{name}/versions/1")
    # the code is copied where no caller can change it
    assert first["code"].startswith(f"{DS}/azureml-registry/sha256/"), first["code"]
    assert first["code"].endswith("/" + code.rstrip("/").rsplit("/", 1)[-1] + "/")
    r = client.post("/components", json=body)
    assert (r.status_code, r.json()["version"]) == (200, "1")  # nothing changed
    changed = body | {"description": "now described"}
    r = client.post("/components", json=changed)
    assert (r.status_code, r.json()["version"]) == (201, "2")
    r = client.post("/components", json=changed | {"version": "1"})
    assert r.status_code == 409, r.text
    assert [c["version"] for c in client.get(f"/components/{name}/versions").json()] == ["2", "1"]
    assert client.get(f"/components/{name}/labels/latest").json()["version"] == "2"
    assert client.get(f"/components/{name}/versions/1").json()["description"] is None
    assert name in [c["name"] for c in client.get("/components").json()]
    assert client.get(f"/components/{name}/versions/9").status_code == 404

    pipeline_name = unique("refs")
    pipeline = {
        "name": pipeline_name,
        "type": "pipeline",
        "outputs": {"a": {"type": "uri_folder"}, "b": {"type": "uri_folder"}},
        "jobs": {
            "pinned": {
                "component": f"azureml:{name}:1",
                "outputs": {"out": "${{parent.outputs.a}}"},
            },
            "latest": {
                "component": f"azureml:{name}@latest",
                "outputs": {"out": {"path": "${{parent.outputs.b}}", "mode": "upload"}},
            },
        },
    }
    r = client.post("/components", json=pipeline)
    assert r.status_code == 201, r.text
    registered = r.json()
    assert registered["jobs"]["pinned"]["component"] == f"azureml:{name}:1"
    assert registered["jobs"]["latest"]["component"] == f"azureml:{name}:2"  # pinned now
    endpoint = deploy(client, f"azureml:{pipeline_name}@latest")
    deployment = client.get(f"/batch-endpoints/{endpoint}/deployments/pipe").json()
    assert deployment["component"] == f"azureml:{pipeline_name}:1"
    assert deployment["settings"]["continue_on_step_failure"] is False
    r = invoke(client, endpoint, {})
    assert r.status_code == 201, r.text
    job = wait_for_job(client, r.json()["name"])
    assert job["status"] == "Completed", job["error"]
    assert [s["component"] for s in job["steps"]] == [f"azureml:{name}:1", f"azureml:{name}:2"]


@pytest.mark.parametrize(
    ("change", "target", "message"),
    [
        pytest.param(
            lambda p: p["jobs"]["b"]["inputs"].update(nope="x"),
            "component.jobs.b.inputs.nope",
            "has no input 'nope'",
            id="unknown-step-input",
        ),
        pytest.param(
            lambda p: p["jobs"]["b"]["inputs"].pop("src"),
            "component.jobs.b.inputs.src",
            "needs input 'src'",
            id="missing-required-input",
        ),
        pytest.param(
            lambda p: p["jobs"]["a"]["inputs"].update(src="${{parent.jobs.b.outputs.out}}"),
            "component.jobs",
            "cycle",
            id="cycle",
        ),
        pytest.param(
            lambda p: p["outputs"].update(unused={"type": "uri_folder"}),
            "component.outputs.unused",
            "no step writes it",
            id="unwritten-output",
        ),
        pytest.param(
            lambda p: p["jobs"]["a"]["component"].update(command="python x.py ${{inputs.typo}}"),
            "component.jobs.a.component",
            "names no declared input",
            id="unknown-placeholder",
        ),
        pytest.param(
            lambda p: p["jobs"]["a"]["component"].update(
                inputs={"src": {"type": "uri_folder"}, "opt": {"type": "string", "optional": True}},
                command="python x.py ${{inputs.src}} ${{inputs.opt}} ${{outputs.out}}",
            ),
            "component.jobs.a.component",
            "must be wrapped in $[[...]]",
            id="optional-outside-block",
        ),
        pytest.param(
            lambda p: p["jobs"]["b"]["inputs"].update(src="${{parent.inputs.missing}}"),
            "component.jobs.b.inputs.src",
            "no input 'missing'",
            id="unknown-parent-input",
        ),
        pytest.param(
            lambda p: p["jobs"]["b"]["outputs"].update(out="azureml://datastores/x/paths/y"),
            "component.jobs.b.outputs.out",
            "is not accepted",
            id="fixed-output-path",
        ),
        pytest.param(
            lambda p: p["jobs"]["a"].update(type="pipeline"),
            "component.jobs.a.type",
            "not supported",
            id="nested-pipeline-step",
        ),
        pytest.param(
            lambda p: p["inputs"].update(n={"type": "integer", "min": 5, "default": 1}),
            "component.inputs.n",
            "out of range",
            id="default-out-of-range",
        ),
        pytest.param(
            lambda p: p["jobs"]["a"]["component"].update(code="./local/folder"),
            "component.jobs.a.component.code",
            "is a local folder",
            id="local-code-folder",
        ),
    ],
)
def test_a_pipeline_with_broken_wiring_is_refused(
    client: httpx.Client, code: str, change: Any, target: str, message: str
) -> None:
    name = unique("broken")
    pipeline: dict[str, Any] = {
        "name": name,
        "type": "pipeline",
        "inputs": {"data": {"type": "uri_folder"}},
        "outputs": {"out": {"type": "uri_folder"}},
        "jobs": {
            "a": {
                "component": command(
                    code,
                    "split ${{inputs.src}} x ${{outputs.out}}",
                    {"src": {"type": "uri_folder"}},
                    ("out",),
                ),
                "inputs": {"src": "${{parent.inputs.data}}"},
            },
            "b": {
                "component": command(
                    code, "touch ${{outputs.out}}", {"src": {"type": "uri_folder"}}, ("out",)
                ),
                "inputs": {"src": "${{parent.jobs.a.outputs.out}}"},
                "outputs": {"out": "${{parent.outputs.out}}"},
            },
        },
    }
    assert client.post("/components", json=pipeline).status_code == 201  # as it is, it is fine
    pipeline["name"] = name + "-changed"
    change(pipeline)
    r = client.post("/components", json=pipeline)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert message in error["message"], error
    assert error["target"].startswith(target), error
    assert client.get(f"/components/{name}-changed/versions").status_code == 404


def test_a_restarted_server_resumes_without_running_completed_steps_again(
    tmp_path: Path,
) -> None:
    pipeline = {
        "name": unique("resumed"),
        "type": "pipeline",
        "inputs": {"runs": {"type": "string"}, "go": {"type": "string"}},
        "outputs": {"seen": {"type": "uri_folder"}},
        "jobs": {
            "first": {
                "component": None,
                "inputs": {"runs": "${{parent.inputs.runs}}"},
            },
            "second": {
                "component": None,
                "inputs": {
                    "go": "${{parent.inputs.go}}",
                    "source": "${{parent.jobs.first.outputs.out}}",
                },
                "outputs": {"out": "${{parent.outputs.seen}}"},
            },
        },
    }
    home = tmp_path / "home"
    server = start_server(home)
    shared = server.shared_folder()  # kept in the home, where the next server finds it
    runs, go = shared / "runs.txt", shared / "go"
    try:
        (tmp_path / "code").mkdir()
        (tmp_path / "code" / "steps.py").write_text(STEPS_SCRIPT)
        with server.client() as client:
            code = upload_folder(client, tmp_path / "code", "code/steps")
            pipeline["jobs"]["first"]["component"] = command(
                code,
                "count ${{inputs.runs}} ${{outputs.out}}",
                {"runs": {"type": "string"}},
                ("out",),
            )
            pipeline["jobs"]["second"]["component"] = command(
                code,
                "waitfor ${{inputs.go}} ${{inputs.source}} ${{outputs.out}}",
                {"go": {"type": "string"}, "source": {"type": "uri_folder"}},
                ("out",),
            )
            endpoint = deploy(client, pipeline)
            r = invoke(client, endpoint, {"runs": literal(str(runs)), "go": literal(str(go))})
            assert r.status_code == 201, r.text
            name = r.json()["name"]
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                steps = {
                    s["name"]: s["status"] for s in client.get(f"/jobs/{name}").json()["steps"]
                }
                if steps == {"first": "Completed", "second": "Running"}:
                    break
                time.sleep(0.1)
            assert steps == {"first": "Completed", "second": "Running"}
    finally:
        stop_server(server)
    server = start_server(home)  # the same workspace: the job is taken up again
    try:
        go.touch()
        with server.client() as client:
            job = wait_for_job(client, name)
        assert job["status"] == "Completed", job["error"]
        assert [s["status"] for s in job["steps"]] == ["Completed", "Completed"]
        assert runs.read_text() == "ran\n"  # the completed step did not run again
    finally:
        stop_server(server)
