"""Operations endpoints of every server role: /healthz, /readyz, /metrics, and log lines that
name the process and its role."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import RunningServer, start_server, stop_server
from tests.integration.storage_services import S3_KEY, S3_SECRET, s3_url, unique_name


def test_an_api_and_scheduler_process_reports_health_readiness_and_metrics(
    server: RunningServer,
) -> None:
    assert httpx.get(f"{server.url}/healthz").status_code == 200
    ready = httpx.get(f"{server.url}/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {
        "status": "ready",
        "role": "all",
        "database": "ok",
        "default_datastore": "ok",
    }
    assert httpx.get(f"{server.url}/metrics").status_code == 401
    with server.client() as client:
        assert client.get("/jobs/no-such-job").status_code == 404
        response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    body = response.text
    assert re.search(r'^sluiceway_jobs\{status="Queued"\} \d', body, re.M)
    assert re.search(r"^sluiceway_queue_depth \d", body, re.M)
    # Requests are counted by route template, never by the path sent.
    assert 'route="/jobs/{name}",status="404"' in body
    assert "no-such-job" not in body
    assert "sluiceway_claim_duration_seconds_count" in body


def test_a_scheduler_process_serves_no_api(tmp_path: Path) -> None:
    scheduler = start_server(tmp_path / "home", role="scheduler")
    try:
        assert httpx.get(f"{scheduler.url}/readyz").json()["role"] == "scheduler"
        with scheduler.client() as client:
            assert client.get("/batch-endpoints").status_code == 404
            assert client.get("/metrics").status_code == 200
        assert httpx.get(f"{scheduler.url}/metrics").status_code == 401
    finally:
        stop_server(scheduler)
    log = (tmp_path / "home" / "server.log").read_text()
    pid = scheduler.process.pid
    assert re.search(rf" INFO sluiceway\.scheduler pid={pid} role=scheduler scheduler ", log), log


def test_readiness_fails_when_the_default_datastore_does_not_answer(tmp_path: Path) -> None:
    missing = {
        "type": "s3",
        "bucket": unique_name("missing"),
        "endpoint_url": s3_url(),
        "credentials": {"access_key_id": S3_KEY, "secret_access_key": S3_SECRET},
    }
    env = {
        "SLUICEWAY_DEFAULT_DATASTORE": json.dumps(missing),
        "SLUICEWAY_ALLOW_PRIVATE_NETWORK": "127.0.0.1",
    }
    process = start_server(tmp_path / "home", extra_env=env, role="api")
    try:
        ready = httpx.get(f"{process.url}/readyz")
        assert ready.status_code == 503
        body = ready.json()
        assert body["database"] == "ok" and body["default_datastore"] != "ok", body
    finally:
        stop_server(process)


@pytest.mark.parametrize("value", ["yaml"])
def test_an_unknown_log_format_is_refused(tmp_path: Path, value: str) -> None:
    with pytest.raises(RuntimeError, match="log_format"):
        start_server(tmp_path / "home", extra_env={"SLUICEWAY_LOG_FORMAT": value})
